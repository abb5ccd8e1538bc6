"""Shared CLI pieces: the one-line-error parser, list arguments, tqdm progress, backbone names."""

from __future__ import annotations

import argparse
import sys


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        sys.stderr.write(f"genclf: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _int_list(s: str) -> list[int]:
    try:
        out = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    return _once(out, s)


def _str_list(s: str) -> list[str]:
    return _once([v.strip() for v in s.split(",") if v.strip()], s)


def _once(values: list, s: str) -> list:
    """A list option names each value once: a repeat would only run the same work again (and count it twice).
    argparse prefixes the message with the option's name."""
    seen: set = set()
    for v in values:
        if v in seen:
            raise argparse.ArgumentTypeError(f"{v} is repeated in {s!r}; list each value once")
        seen.add(v)
    return values


_OPEN_BARS: set = set()  # bars still drawn; `run_verb` closes them before an error line is written


def _tqdm_progress(desc: str, unit: str = "it"):
    from tqdm import tqdm

    bar = {"b": None}

    def cb(done: int, total: int, info: dict) -> None:
        if bar["b"] is None:
            bar["b"] = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, initial=done - 1)
            _OPEN_BARS.add(bar["b"])
        b = bar["b"]
        b.update(done - b.n)
        if info:
            b.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()}, refresh=False)
        if done >= total:
            b.close()
            _OPEN_BARS.discard(b)
            bar["b"] = None  # a later phase (sweep, then runs) opens a fresh bar

    return cb


def run_verb(fn, args) -> int:
    """Run a verb; whatever ends it, close the bars it left open first, so that an error line is the last line
    (an open bar was otherwise drawn again after it, at exit, and the line began mid-bar)."""
    try:
        return fn(args) or 0
    finally:
        for b in list(_OPEN_BARS):
            b.close()
        _OPEN_BARS.clear()


# kept here so `genclf --help` and bad-input errors answer without importing torch;
# tests/test_backbones.py checks it matches the registry
BACKBONE_NAMES = ("ddpm", "vae", "vqvae", "gan", "simclr", "pixels")


def names() -> list[str]:
    return list(BACKBONE_NAMES)
