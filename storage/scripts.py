"""Load the Lua scripts shipped beside this module (package data ``storage/*.lua``)."""

from __future__ import annotations

from importlib import resources

__all__ = ["lua_source"]


def lua_source(filename: str) -> str:
    """Return the text of ``storage/<filename>``; raises ``FileNotFoundError`` if absent."""
    return resources.files("storage").joinpath(filename).read_text(encoding="utf-8")
