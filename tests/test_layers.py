"""Layers point one way: every module's imports (function-level ones included) against a table of rules.

Read from the source with ast, so a lazy `from cerebro.compiler import build` inside a function counts
as much as one at the top. The folders map to packages as setup.py maps them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = {"cerebro": "cerebro", "compiler": "cerebro.compiler", "frontends": "cerebro.frontends",
                 "loaders": "cerebro.loaders"}

# (importing package, packages it must not import, why)
RULES = [
    ("cerebro.compiler.codegen", ("cerebro.compiler.passes",), "passes rewrite the IR; codegen only reads it"),
    ("cerebro.compiler.passes", ("cerebro.compiler.codegen",), "tile sizes are target facts (targets.py)"),
    ("cerebro.compiler", ("cerebro.loaders", "cerebro.frontends", "cerebro.api", "cerebro.runtime"),
     "the compiler knows IR, targets and the .cbx format, nothing above or beside it"),
    ("cerebro.frontends", ("cerebro.compiler.codegen", "cerebro.compiler.passes", "cerebro.compiler.driver",
                           "cerebro.compiler.cbx.writer", "cerebro.cache"),
     "frontends build IR and stop; compiling is the API layer's job"),
    ("cerebro.loaders", ("cerebro.compiler", "cerebro.frontends"), "loaders read packages, not models"),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for top, package in PACKAGE_ROOTS.items():
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT / top).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module a file imports; `from a import b` counts as a.b when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(source: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{module} imports {name}" for module, path in MODULES.items() if _within(module, source)
            for name in sorted(_imports(path)) if any(_within(name, banned) for banned in forbidden)]


@pytest.mark.parametrize(("source", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_layer_rule(source: str, forbidden: tuple[str, ...], why: str) -> None:
    assert not _violations(source, forbidden), why


def test_the_scan_sees_function_level_imports() -> None:
    """The scan finds a lazy import, so a rule cannot pass by not looking (cerebro.api compiles lazily)."""
    assert "cerebro.cache" in _imports(MODULES["cerebro.api"])
    assert all(_within(m, "cerebro") for m in MODULES) and "cerebro.compiler.codegen.module" in MODULES


def test_elf_machines_are_numbered_in_one_place() -> None:
    """EM_* constants are assigned only in cerebro/elf.py, the one table of ELF machines."""
    owners = {module for module, path in MODULES.items() for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.Assign) for target in node.targets for name in ast.walk(target)
              if isinstance(name, ast.Name) and name.id.startswith("EM_")}
    assert owners == {"cerebro.elf"}
