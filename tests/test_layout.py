"""The package layout: no import cycle anywhere under genclf/, lower layers never import higher ones,
no streamlit in genclf/, no module much over 400 lines. Read from the source with `ast` (every import,
also those inside functions; only `if TYPE_CHECKING:` blocks are skipped)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "genclf"
LOW = ("genclf.data", "genclf.backbones", "genclf.cache", "genclf.features", "genclf.heads", "genclf.atomic", "genclf.errors")
HIGH = ("genclf.experiments", "genclf.explore", "genclf.app", "genclf.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return skip


def imports_of(path: Path, known: set[str]) -> set[str]:
    """genclf modules imported by `path`: `from genclf.x import y` counts y when y is a module, else x."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("genclf")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("genclf"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != me}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) for m, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_under_genclf():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("low", LOW)
def test_lower_layers_never_import_higher_ones(low):
    bad = [
        (m, n)
        for m, deps in graph().items()
        if m == low or m.startswith(low + ".")
        for n in deps
        if any(n == h or n.startswith(h + ".") for h in HIGH)
    ]
    assert not bad, bad


def test_genclf_never_imports_streamlit():
    for p in ROOT.rglob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), p


def test_every_package_says_what_it_holds_and_modules_stay_small():
    for p in ROOT.rglob("*.py"):
        tree = ast.parse(p.read_text())
        if p.name == "__init__.py":
            assert ast.get_docstring(tree), f"{p} needs a docstring saying what the package holds"
        assert len(p.read_text().splitlines()) <= 420, f"{p} is over ~400 lines: split it by job"
