"""No import cycles in the package: imports flow one way (faces -> running turns -> building/view/state ->
wire). Read from the source alone, so a cycle that only a lazy import inside a function closes is caught
too; imports under ``if TYPE_CHECKING:`` never run and do not count.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "or_magic"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (a package's ``__init__`` is its name)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _under_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imported(node: ast.AST, here: str, known: dict[str, Path]) -> set[str]:
    """The package's modules an import statement loads; ``here`` is the package the module sits in."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
        origin = ".".join([*base, node.module] if node.module else base)
        names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
    else:
        return set()
    return {hit for hit in map(lambda n: _nearest_module(n, known), names) if hit}


def _nearest_module(name: str, known: dict[str, Path]) -> str | None:
    """``name`` or the closest package above it that is one of ours."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def dependencies(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``module`` imports, at any depth of its code (not under TYPE_CHECKING)."""
    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
    deps: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"), str(path))]
    while todo:
        node = todo.pop()
        if _under_type_checking(node):
            todo.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        deps |= _imported(node, here, known)
        todo.extend(ast.iter_child_nodes(node))
    return deps - {module}


def import_cycle(package: Path) -> list[str] | None:
    """One import cycle among ``package``'s modules (as ``[a, b, …, a]``), or None."""
    known = module_files(package)
    graph = {name: dependencies(name, path, known) for name, path in known.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = import_cycle(PACKAGE)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(("b_source", "cyclic"), [
    ("def later():\n    from . import a\n", True),  # a lazy import still closes the cycle
    ("from .a import thing\n", True),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n", False),
    ("import json\n", False),
])
def test_the_check_finds_cycles_lazy_ones_included(tmp_path: Path, b_source: str, cyclic: bool) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\nthing = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text(b_source.replace("from . ", "from .. ").replace("from .a", "from ..a"))
    found = import_cycle(pkg)
    assert (found is not None) == cyclic, found
    if cyclic:
        assert set(found or []) == {"pkg.a", "pkg.sub.b"}
