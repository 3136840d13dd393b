"""The benchmark stands alone: nothing under ``bench/`` imports the test suite."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def imported_modules(path: Path) -> set[str]:
    """The absolute module names ``path`` imports (``import a.b`` and ``from a.b import c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_bench_module_imports_tests() -> None:
    """No module under bench/ imports ``tests`` or anything below it."""
    offenders = {
        path.name: sorted(n for n in imported_modules(path) if n.split(".")[0] == "tests")
        for path in sorted(BENCH.glob("*.py"))
    }
    assert len(offenders) >= 10  # the walk found the package
    assert {name: found for name, found in offenders.items() if found} == {}
