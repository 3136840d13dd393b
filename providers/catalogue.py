"""The model catalogue: which models each platform offers, and how a name picks one.

A model's **key** is ``"<platform>:<model>"`` (``"zhipu:glm-4-flash"``); ``model`` is the
wire id sent in ``ChatRequest.model``. Keys are unique across platforms even when two
platforms serve the same wire id (``glm-4.5`` is on both Zhipu and Z.ai).

The platforms are :mod:`providers.registry`'s rows plus the endpoints an operator
configures. The built-in entries live in ``providers/models.toml`` (packaged data),
written in the same format an operator uses to extend or trim them::

    [[models]]
    platform = "zju"
    model = "deepseek-v3-671b"
    display_name = "DeepSeek V3"      # optional, default: the model id
    vision = false                    # optional, default false (or the existing value)
    reasoning = false                 # optional, default false (or the existing value)
    context_window = 65536            # optional, tokens, default 32768
    max_tokens = 8192                 # optional, tokens the model may generate per answer;
                                      # default: MAX_TOKENS; 0 sends no cap

    [[models]]
    platform = "zju"
    model = "QwQ-32B"
    remove = true                     # hide a built-in model

An entry for an existing key changes only the fields it names; an entry for a new
key adds a model at the end of its platform's list.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from providers import registry

__all__ = [
    "BUILTIN_PLATFORMS",
    "DEFAULT_CONTEXT_WINDOW",
    "Catalogue",
    "CatalogueEntry",
    "CatalogueError",
    "ModelInfo",
    "PlatformInfo",
    "UnknownModelError",
    "builtin_entries",
    "load_catalogue_file",
    "parse_catalogue",
]

DEFAULT_CONTEXT_WINDOW = 32768
"""Tokens assumed for a model whose context window nobody stated."""


class CatalogueError(ValueError):
    """A catalogue file or entry is invalid; ``str(err)`` is one line naming the file and entry."""


class UnknownModelError(ValueError):
    """A model name does not pick exactly one enabled model.

    ``name`` is the name asked for; ``reason`` is ``"unknown"`` (no such model),
    ``"ambiguous"`` (a bare id served by several enabled platforms) or ``"disabled"``
    (the model exists but its platform is not enabled); ``candidates`` holds the
    keys worth suggesting (close matches, the ambiguous keys, or the disabled keys).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        reason: Literal["unknown", "ambiguous", "disabled"],
        candidates: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason
        self.candidates = candidates


@dataclass(frozen=True)
class ModelInfo:
    """One chat model of one platform.

    ``key`` is ``"<platform>:<model>"``; ``model`` the wire id; ``context_window`` in
    tokens; ``max_tokens`` the cap on the tokens one answer may take (the request's
    ``max_tokens``; ``None``: the bot's ``MAX_TOKENS`` setting; 0: no cap sent). Raises
    ``ValueError`` when ``key`` does not match platform and model.
    """

    key: str
    platform: str
    model: str
    display_name: str
    vision: bool = False
    reasoning: bool = False
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.key != f"{self.platform}:{self.model}":
            raise ValueError(f"model key {self.key!r} is not '<platform>:<model>'")


@dataclass(frozen=True)
class PlatformInfo:
    """One platform: its name (the key prefix), a display name, its wire protocol, its URL."""

    name: str
    display_name: str
    kind: Literal["openai", "ustb"]
    base_url: str


BUILTIN_PLATFORMS: Mapping[str, PlatformInfo] = {
    spec.name: PlatformInfo(spec.name, spec.display_name, spec.kind, spec.default_base_url)
    for spec in registry.BUILTIN_PLATFORMS
}
"""The built-in platforms in display order, with their default base URLs, from
:data:`providers.registry.BUILTIN_PLATFORMS`."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One ``[[models]]`` table: add, change (only the fields given) or ``remove`` a model.

    ``where`` names the entry in error messages (``"models.toml: [[models]] #3"``).
    """

    platform: str
    model: str
    where: str
    remove: bool = False
    display_name: str | None = None
    vision: bool | None = None
    reasoning: bool | None = None
    context_window: int | None = None
    max_tokens: int | None = None

    @property
    def key(self) -> str:
        """The catalogue key this entry is about."""
        return f"{self.platform}:{self.model}"

    def merged(self, base: ModelInfo | None) -> ModelInfo:
        """The model this entry describes, on top of ``base`` (the existing model, if any)."""
        if base is None:
            base = ModelInfo(self.key, self.platform, self.model, self.model)
        changes: dict[str, Any] = {
            name: value
            for name in ("display_name", "vision", "reasoning", "context_window", "max_tokens")
            if (value := getattr(self, name)) is not None
        }
        return replace(base, **changes)


_FIELD_TYPES: dict[str, type] = {
    "platform": str,
    "model": str,
    "display_name": str,
    "vision": bool,
    "reasoning": bool,
    "context_window": int,
    "max_tokens": int,
    "remove": bool,
}


def _parse_entry(raw: dict[str, Any], *, where: str) -> CatalogueEntry:
    """Check one ``[[models]]`` table; raise :class:`CatalogueError` naming ``where``."""
    platform, model = raw.get("platform"), raw.get("model")
    if isinstance(platform, str) and isinstance(model, str):
        where = f"{where} ({platform}:{model})"
    unknown = sorted(set(raw) - set(_FIELD_TYPES))
    if unknown:
        allowed = ", ".join(_FIELD_TYPES)
        raise CatalogueError(f"{where}: unknown field {unknown[0]!r} (allowed: {allowed})")
    for name in ("platform", "model"):
        if name not in raw:
            raise CatalogueError(f"{where}: {name!r} is missing")
    for name, value in raw.items():
        wanted = _FIELD_TYPES[name]
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise CatalogueError(f"{where}: {name!r} must be a {wanted.__name__}")
    for name in ("platform", "model", "display_name"):
        if name in raw and (not raw[name].strip() or raw[name] != raw[name].strip()):
            raise CatalogueError(f"{where}: {name!r} must be non-empty, without outer spaces")
    if ":" in raw["platform"]:
        raise CatalogueError(f"{where}: 'platform' must not contain ':'")
    if raw.get("context_window", 1) <= 0:
        raise CatalogueError(f"{where}: 'context_window' must be a positive number of tokens")
    if raw.get("max_tokens", 0) < 0:
        raise CatalogueError(f"{where}: 'max_tokens' must be a number of tokens, or 0 for no cap")
    if raw.get("remove") and set(raw) - {"platform", "model", "remove"}:
        raise CatalogueError(f"{where}: an entry with remove = true takes no other fields")
    return CatalogueEntry(where=where, **raw)


def parse_catalogue(text: str, *, source: str) -> list[CatalogueEntry]:
    """Parse catalogue TOML ``text``; ``source`` (a file name) prefixes every error.

    Returns the ``[[models]]`` entries in file order. Raises :class:`CatalogueError`
    for invalid TOML, unknown keys, or a field of the wrong type.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: invalid TOML: {exc}") from None
    extra = sorted(set(data) - {"models"})
    if extra:
        raise CatalogueError(f"{source}: unknown top-level key {extra[0]!r} (only [[models]])")
    tables = data.get("models", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise CatalogueError(f"{source}: 'models' must be an array of tables ([[models]])")
    return [_parse_entry(t, where=f"{source}: [[models]] #{i}") for i, t in enumerate(tables, 1)]


def load_catalogue_file(path: str | os.PathLike[str]) -> list[CatalogueEntry]:
    """Read a catalogue TOML file (UTF-8) and return its entries, see :func:`parse_catalogue`.

    Raises :class:`CatalogueError` naming the file when it cannot be read or is invalid.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{file}: cannot read the models file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CatalogueError(f"{file}: the models file is not UTF-8 text") from None
    return parse_catalogue(text, source=str(file))


def builtin_entries() -> list[CatalogueEntry]:
    """The built-in model entries (``providers/models.toml``, shipped as package data).

    Read next to this module's file rather than through ``importlib.resources``:
    a ``tests/providers`` folder on ``sys.path`` would shadow the package name.
    """
    text = Path(__file__).with_name("models.toml").read_text(encoding="utf-8")
    return parse_catalogue(text, source="providers/models.toml")


class Catalogue:
    """Models grouped by platform, in a stable order, and the set of enabled platforms.

    Platforms keep the order given; models keep their order within a platform
    (new models from :meth:`apply` go last). Models of platforms that are not
    enabled stay known, so that an error can say "not enabled" instead of "unknown".
    """

    def __init__(
        self,
        platforms: Iterable[PlatformInfo],
        models: Iterable[ModelInfo] = (),
        *,
        enabled: Iterable[str] = (),
    ) -> None:
        self._platforms = {p.name: p for p in platforms}
        self._enabled = frozenset(enabled) & self._platforms.keys()
        self._models: dict[str, ModelInfo] = {}
        for info in models:
            if info.platform not in self._platforms:
                raise CatalogueError(f"model {info.key}: unknown platform {info.platform!r}")
            self._models[info.key] = info

    def apply(self, entries: Iterable[CatalogueEntry]) -> Catalogue:
        """Return a new catalogue with ``entries`` added, changed or removed, in order.

        Raises :class:`CatalogueError` (naming the entry) for an unknown platform or
        for removing a model that is not there.
        """
        models = dict(self._models)
        for entry in entries:
            if entry.platform not in self._platforms:
                known = ", ".join(self._platforms)
                raise CatalogueError(
                    f"{entry.where}: unknown platform {entry.platform!r} (known: {known})"
                )
            if entry.remove:
                if models.pop(entry.key, None) is None:
                    raise CatalogueError(f"{entry.where}: cannot remove, no such model")
            else:
                models[entry.key] = entry.merged(models.get(entry.key))
        return Catalogue(self._platforms.values(), models.values(), enabled=self._enabled)

    def with_default_max_tokens(self, max_tokens: int) -> Catalogue:
        """A new catalogue where every model without a ``max_tokens`` of its own gets
        ``max_tokens`` (the bot's ``MAX_TOKENS``; 0: no cap). Raises ``ValueError`` when
        ``max_tokens`` is negative."""
        if max_tokens < 0:
            raise ValueError("max_tokens must be 0 (no cap) or a number of tokens")
        models = [
            m if m.max_tokens is not None else replace(m, max_tokens=max_tokens)
            for m in self._models.values()
        ]
        return Catalogue(self._platforms.values(), models, enabled=self._enabled)

    def platforms(self) -> list[PlatformInfo]:
        """Every known platform, enabled or not, in order."""
        return list(self._platforms.values())

    def platform(self, name: str) -> PlatformInfo | None:
        """The platform called ``name``, or ``None``."""
        return self._platforms.get(name)

    def is_enabled(self, platform: str) -> bool:
        """Whether ``platform`` is enabled (has credentials and a client)."""
        return platform in self._enabled

    def all_models(self) -> list[ModelInfo]:
        """Every known model, enabled or not, grouped by platform in order."""
        order = {name: i for i, name in enumerate(self._platforms)}
        return sorted(self._models.values(), key=lambda m: order[m.platform])

    def enabled_models(self) -> list[ModelInfo]:
        """The models of enabled platforms, grouped by platform in order."""
        return [m for m in self.all_models() if m.platform in self._enabled]

    def by_platform(self) -> dict[str, list[ModelInfo]]:
        """Enabled platform name → its models, in order; platforms without models are left out."""
        groups: dict[str, list[ModelInfo]] = {}
        for info in self.enabled_models():
            groups.setdefault(info.platform, []).append(info)
        return groups

    def get(self, key: str) -> ModelInfo | None:
        """The enabled model with exactly this key, or ``None`` (unknown or not enabled)."""
        info = self._models.get(key)
        return info if info is not None and info.platform in self._enabled else None

    def resolve(self, name: str) -> ModelInfo:
        """The enabled model that ``name`` picks: a key, or a bare model id unique among enabled.

        Exact matches win over case-insensitive ones. Raises :class:`UnknownModelError`
        (reason ``unknown``, ``ambiguous`` or ``disabled``) with a one-line message that
        lists close matches or the keys to choose from.
        """
        name = name.strip()
        for matches in self._matches(name):
            enabled = [m for m in matches if m.platform in self._enabled]
            if len(enabled) == 1:
                return enabled[0]
            if len(enabled) > 1:
                keys = tuple(m.key for m in enabled)
                raise UnknownModelError(
                    f"model {name!r} is offered by several platforms; use one of: "
                    + ", ".join(keys),
                    name=name,
                    reason="ambiguous",
                    candidates=keys,
                )
            if matches:
                raise self._disabled_error(name, matches)
        raise self._unknown_error(name)

    def _matches(self, name: str) -> Iterable[list[ModelInfo]]:
        """Candidate lists, most exact first: key, key ignoring case, id, id ignoring case."""
        folded = name.casefold()
        models = self.all_models()
        yield [m for m in models if m.key == name]
        yield [m for m in models if m.key.casefold() == folded]
        yield [m for m in models if m.model == name]
        yield [m for m in models if m.model.casefold() == folded]

    def _disabled_error(self, name: str, matches: list[ModelInfo]) -> UnknownModelError:
        platforms = ", ".join(dict.fromkeys(m.platform for m in matches))
        return UnknownModelError(
            f"model {name!r} belongs to a platform that is not enabled ({platforms})",
            name=name,
            reason="disabled",
            candidates=tuple(m.key for m in matches),
        )

    def _unknown_error(self, name: str) -> UnknownModelError:
        enabled = self.enabled_models()
        if not enabled:
            return UnknownModelError(
                f"unknown model {name!r}: no model is enabled", name=name, reason="unknown"
            )
        close = self._close_matches(name, enabled)
        if close:
            hint = "close matches: " + ", ".join(close)
        else:
            keys = [m.key for m in enabled]
            more = f", … ({len(keys) - 8} more)" if len(keys) > 8 else ""
            hint = "enabled models: " + ", ".join(keys[:8]) + more
        return UnknownModelError(
            f"unknown model {name!r}; {hint}", name=name, reason="unknown", candidates=close
        )

    @staticmethod
    def _close_matches(name: str, enabled: list[ModelInfo]) -> tuple[str, ...]:
        """Keys of enabled models whose key or id contains ``name`` or looks like it (difflib)."""
        folded = name.casefold()
        found = [m.key for m in enabled if folded and folded in m.key.casefold()]
        by_word: dict[str, str] = {}
        for info in enabled:
            by_word.setdefault(info.key.casefold(), info.key)
            by_word.setdefault(info.model.casefold(), info.key)
        for word in difflib.get_close_matches(folded, list(by_word), n=5, cutoff=0.6):
            found.append(by_word[word])
        return tuple(dict.fromkeys(found))[:5]
