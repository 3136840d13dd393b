"""The layout holds: no import cycle between files or between packages, and each package
keeps to the "never imports" column of docs/architecture.md.

The import graph is built by grimp (import-linter's graph library) from the source, with
imports under ``if TYPE_CHECKING:`` left out (they never run).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

import grimp
import pytest

ROOTS = ("bot", "handlers", "storage", "providers")

PACKAGES = (
    "bot.app",
    "bot.conversation",
    "bot.reply",
    "bot.render",
    "bot.scheduler",
    "bot.ops",
    "bot.settings",
    "bot.texts",
    "bot.__main__",
    "bot",
    "handlers",
    "storage",
    "providers",
)
"""The units of the package-level graph, most specific first (``bot`` is its __init__)."""


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The import graph of the four packages and the external packages they import."""
    return grimp.build_graph(
        *ROOTS, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


def _ours(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m.split(".")[0] in ROOTS)


def _cycle(edges: dict[str, set[str]]) -> tuple[str, ...] | None:
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        return tuple(exc.args[1])
    return None


def _package_of(module: str) -> str:
    return next(p for p in PACKAGES if module == p or module.startswith(p + "."))


def _imported_by(graph: grimp.ImportGraph, modules: Iterable[str]) -> set[str]:
    return {i for m in modules for i in graph.find_modules_directly_imported_by(m)}


def test_no_import_cycle_between_files(graph: grimp.ImportGraph) -> None:
    """No module of ours imports, directly or through others, a module that imports it."""
    ours = _ours(graph)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in ours} for m in ours}
    assert _cycle(edges) is None


def test_no_import_cycle_between_packages(graph: grimp.ImportGraph) -> None:
    """Collapsed to packages (bot's subpackages each one), the imports form no cycle."""
    edges: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module in _ours(graph):
        source = _package_of(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.split(".")[0] in ROOTS and _package_of(imported) != source:
                edges[source].add(_package_of(imported))
    assert _cycle(edges) is None, edges


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("providers", {"telegram", "redis", "storage", "handlers", "bot"}),
        ("storage", {"telegram", "httpx", "providers", "handlers", "bot"}),
        ("handlers", {"httpx", "redis", "bot.app", "bot.ops"}),
        ("bot.scheduler", {"telegram", "httpx", "redis", "handlers", "storage", "providers"}),
        ("bot.render", {"httpx", "redis", "handlers", "storage", "providers", "asyncio"}),
        ("bot.conversation", {"handlers", "bot.app", "bot.reply", "bot.ops"}),
        ("bot.reply", {"handlers", "bot.app", "bot.ops", "storage"}),
    ],
)
def test_package_never_imports(graph: grimp.ImportGraph, package: str, forbidden: set[str]) -> None:
    """Each package keeps to its "never imports" column."""
    modules = {package} | graph.find_descendants(package) if package in graph.modules else set()
    imported = _imported_by(graph, modules)
    hits = {i for i in imported for f in forbidden if i == f or i.startswith(f + ".")}
    assert not hits


def test_only_bot_app_imports_handlers(graph: grimp.ImportGraph) -> None:
    """Of bot/, only the wiring package imports handlers/ (handlers import bot, not back)."""
    importers = {
        m
        for m in _ours(graph)
        if m.startswith("bot")
        and any(i.split(".")[0] == "handlers" for i in graph.find_modules_directly_imported_by(m))
    }
    assert importers
    assert all(m.startswith("bot.app.") for m in importers), importers
