"""The operator-facing docs name only settings and commands that exist.

Scans README.md and docs/operator-guide*.md: every UPPER_CASE name with an underscore must
be a field of :class:`bot.settings.Settings` (or a variable of ``.env.example``); every
``/command`` must be one the bot registers (:data:`bot.app.wiring.COMMANDS`), one of
@BotFather's (:data:`BOTFATHER_COMMANDS`), or an HTTP path the bot serves
(:func:`bot.app.health.health_routes`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr

from bot.app.health import health_routes
from bot.app.wiring import COMMANDS, build_application
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ("docs/operator-guide.md", "docs/operator-guide.zh.md")

BOTFATHER_COMMANDS = frozenset(
    {"newbot", "setprivacy", "setjoingroups", "setcommands", "revoke", "mybots"}
)
"""Commands sent to @BotFather, not to this bot
(https://core.telegram.org/bots/features#botfather)."""

SETTING_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
"""``TELEGRAM_BOT_TOKEN``-shaped names; fragments such as ``LIMIT_*`` and
``_IDLE_TIMEOUT`` do not match."""
COMMAND = re.compile(r"(?<![\w/.:~<>-])/([a-z][a-z0-9_]*)(?![\w/-]|\.\w)")
"""``/name`` not inside a path or URL (``docs/x.md``, ``/data/``, ``t.me/bot``), nor a file."""
FENCE = re.compile(r"^```(\w*)\n.*?^```", re.MULTILINE | re.DOTALL)


def _docs() -> dict[str, str]:
    """Each scanned file's path (relative to the repository) → its text."""
    paths = ["README.md", *GUIDES]
    return {path: (ROOT / path).read_text(encoding="utf-8") for path in paths}


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks other than ``text`` ones (shell lines hold
    paths such as ``/data/``, not bot commands)."""
    return FENCE.sub(lambda m: m.group(0) if m.group(1) == "text" else "", text)


def _known_settings() -> set[str]:
    names = {name.upper() for name in Settings.model_fields}
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    names |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    return names


def _http_paths() -> set[str]:
    settings = Settings(_env_file=None, telegram_bot_token=SecretStr("1:x"))  # type: ignore[call-arg]
    app = build_application(settings)
    return {route.path.lstrip("/") for route in health_routes(app)}


def unknown_settings(text: str, known: Iterable[str]) -> set[str]:
    """The setting-shaped names in ``text`` that are not in ``known``."""
    return set(SETTING_NAME.findall(text)) - set(known)


def unknown_commands(text: str, known: Iterable[str]) -> set[str]:
    """The ``/commands`` in ``text`` (fenced shell blocks left out) not in ``known``."""
    return set(COMMAND.findall(_prose(text))) - set(known)


def test_guides_exist() -> None:
    """The English and Chinese operator guides are there to be checked."""
    for path, text in _docs().items():
        assert text.strip(), path


def test_every_setting_named_exists() -> None:
    """Every UPPER_CASE setting name in the docs is a Settings field or in .env.example."""
    known = _known_settings()
    found = {path: unknown_settings(text, known) for path, text in _docs().items()}
    assert found == {path: set() for path in found}


def test_every_command_named_exists() -> None:
    """Every /command in the docs is the bot's, @BotFather's, or a health/metrics path."""
    known = set(COMMANDS) | BOTFATHER_COMMANDS | _http_paths()
    found = {path: unknown_commands(text, known) for path, text in _docs().items()}
    assert found == {path: set() for path in found}


def test_the_scan_finds_what_it_checks() -> None:
    """The scanners see the guides' settings and commands and report made-up ones."""
    guide = _docs()["docs/operator-guide.md"]
    assert {"TELEGRAM_BOT_TOKEN", "ALLOWED_CHAT_IDS", "QUOTA_TIMEZONE"} <= set(
        SETTING_NAME.findall(guide)
    )
    assert {"system", "triggers", "stats", "newbot", "healthz"} <= set(
        COMMAND.findall(_prose(guide))
    )
    made_up = "Set `CLASS_SIZE_LIMIT`, then send `/homework@bot` and /grade.\n"
    assert unknown_settings(made_up, _known_settings()) == {"CLASS_SIZE_LIMIT"}
    assert unknown_commands(made_up, COMMANDS) == {"homework", "grade"}
    shell = "```sh\ncp /backup.rdb /data/dump.rdb\n```\nsee docs/x.md and t.me/bot\n"
    assert unknown_commands(shell, COMMANDS) == set()
