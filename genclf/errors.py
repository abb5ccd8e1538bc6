"""User-facing errors.

A `GenclfError` carries one line that says what was wrong and what to do instead. The CLI
prints it and exits with code 2; the dashboard shows it with `st.error`. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class GenclfError(Exception):
    """Bad input or missing resource; the message is the remedy, on one line."""


def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun: strategy -> strategies, split -> splits."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    return noun + "s"


def unknown(what: str, name: str, valid: Iterable[str]) -> GenclfError:
    """An 'unknown X' error that lists the valid choices."""
    return GenclfError(f"unknown {what} {name!r}; valid {plural(what)}: {', '.join(sorted(valid))}")
