"""Imports flow one way: tui -> tracer -> reactor (DESIGN.md, "Layout")."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_top_level_names(path: Path, module_level_only: bool) -> set[str]:
    """Top-level packages imported by the file; optionally only imports at
    module level (the CLI may import tui lazily inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "package, forbidden, module_level_only",
    [
        ("reactor", {"tracer", "tui", "orjson", "textual"}, False),
        ("tracer", {"tui", "textual"}, True),
    ],
)
def test_imports_flow_one_way(package: str, forbidden: set[str], module_level_only: bool) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_top_level_names(f, module_level_only) & forbidden)
        for f in files
    }
    assert {f: names for f, names in offenders.items() if names} == {}
