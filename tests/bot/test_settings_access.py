"""The access settings: ALLOWED_USER_IDS, ADMIN_USER_IDS and ALLOWED_CHAT_IDS take numeric
Telegram ids only (a clear one-line error otherwise), UNLISTED_CHAT_ACTION is ignore or
leave, and the verdicts and start-up warnings they give (handlers.access)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.__main__ import main
from bot.settings import ConfigError, Settings, load_settings
from handlers.access import Verdict, open_access_warnings, verdict

_ACCESS_ENV = ("ALLOWED_USER_IDS", "ADMIN_USER_IDS", "ALLOWED_CHAT_IDS", "UNLISTED_CHAT_ACTION")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """A token, none of the access variables, and no .env of the developer's."""
    for name in _ACCESS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token-value")
    monkeypatch.chdir(str(tmp_path))


@pytest.fixture
def keep_root_logger() -> Iterator[None]:
    """main() may install its log handler; take it out afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ALLOWED_USER_IDS",
            "11,@alice",
            "ALLOWED_USER_IDS is invalid: '@alice' is not a numeric Telegram user id "
            "(a user outside ALLOWED_USER_IDS who sends /start to the bot is told theirs)",
        ),
        (
            "ADMIN_USER_IDS",
            "alice",
            "ADMIN_USER_IDS is invalid: 'alice' is not a numeric Telegram user id "
            "(a user outside ALLOWED_USER_IDS who sends /start to the bot is told theirs)",
        ),
        (
            "ALLOWED_USER_IDS",
            "12.5",
            "ALLOWED_USER_IDS is invalid: '12.5' is not a numeric Telegram user id "
            "(a user outside ALLOWED_USER_IDS who sends /start to the bot is told theirs)",
        ),
        (
            "ALLOWED_USER_IDS",
            "11,-1001234567890",
            "ALLOWED_USER_IDS is invalid: '-1001234567890' is a group's or channel's id, "
            "not a user's (put chats in ALLOWED_CHAT_IDS)",
        ),
        (
            "ADMIN_USER_IDS",
            "0",
            "ADMIN_USER_IDS is invalid: '0' is not a numeric Telegram user id "
            "(a user outside ALLOWED_USER_IDS who sends /start to the bot is told theirs)",
        ),
        (
            "ALLOWED_CHAT_IDS",
            "@myclass",
            "ALLOWED_CHAT_IDS is invalid: '@myclass' is not a numeric Telegram chat id (group "
            "and channel ids are negative, e.g. -1001234567890; the bot logs the id of each "
            "group it does not serve)",
        ),
        (
            "ALLOWED_CHAT_IDS",
            "-100123,456",
            "ALLOWED_CHAT_IDS is invalid: '456' is a user's id: group and channel ids are "
            "negative (put users in ALLOWED_USER_IDS)",
        ),
    ],
)
def test_a_value_that_is_not_an_id_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Each bad id stops loading with a ConfigError naming the variable, the value and the fix."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value) == message
    assert "secret-token-value" not in str(caught.value)


def test_the_entry_exits_2_with_that_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    keep_root_logger: None,
) -> None:
    """``python -m bot`` with ALLOWED_USER_IDS=@alice prints one line naming it and exits 2."""
    monkeypatch.setenv("ALLOWED_USER_IDS", "@alice")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "ALLOWED_USER_IDS is invalid: '@alice' is not a numeric Telegram user id" in err


def test_good_ids_are_parsed_to_ints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated ids with spaces and an empty item become lists of ints."""
    monkeypatch.setenv("ALLOWED_USER_IDS", " 11, 22 ,,")
    monkeypatch.setenv("ADMIN_USER_IDS", "33")
    monkeypatch.setenv("ALLOWED_CHAT_IDS", "-1001234567890, -42")
    monkeypatch.setenv("UNLISTED_CHAT_ACTION", " Leave ")
    settings = load_settings(_env_file=None)
    assert settings.allowed_user_ids == [11, 22]
    assert settings.admin_user_ids == [33]
    assert settings.allowed_chat_ids == [-1001234567890, -42]
    assert settings.unlisted_chat_action == "leave"


def test_defaults_are_open_and_ignore() -> None:
    """Unset, the lists are empty and an unlisted chat is ignored."""
    settings = load_settings(_env_file=None)
    assert (settings.allowed_user_ids, settings.admin_user_ids, settings.allowed_chat_ids) == (
        [],
        [],
        [],
    )
    assert settings.unlisted_chat_action == "ignore"


def test_an_unknown_unlisted_chat_action_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """UNLISTED_CHAT_ACTION other than ignore or leave names the variable."""
    monkeypatch.setenv("UNLISTED_CHAT_ACTION", "kick")
    with pytest.raises(ConfigError, match=r"^UNLISTED_CHAT_ACTION is invalid: .*'ignore'"):
        load_settings(_env_file=None)


OPERATOR, MEMBER, STRANGER = 1, 2, 3
LISTED, UNLISTED = -100, -200


def _settings(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("values", "user", "chat", "group", "expected"),
    [
        # private chats: ALLOWED_USER_IDS, operators always
        ({}, STRANGER, STRANGER, False, Verdict.ALLOWED),
        ({"allowed_user_ids": [MEMBER]}, MEMBER, MEMBER, False, Verdict.ALLOWED),
        ({"allowed_user_ids": [MEMBER]}, STRANGER, STRANGER, False, Verdict.STRANGER),
        (
            {"allowed_user_ids": [MEMBER], "admin_user_ids": [OPERATOR]},
            OPERATOR,
            OPERATOR,
            False,
            Verdict.ALLOWED,
        ),
        ({"allowed_chat_ids": [LISTED]}, STRANGER, STRANGER, False, Verdict.ALLOWED),
        # groups without ALLOWED_CHAT_IDS: who may ask
        ({"allowed_user_ids": [MEMBER]}, STRANGER, UNLISTED, True, Verdict.STRANGER),
        (
            {"allowed_user_ids": [MEMBER], "admin_user_ids": [OPERATOR]},
            OPERATOR,
            UNLISTED,
            True,
            Verdict.ALLOWED,
        ),
        # groups with ALLOWED_CHAT_IDS: the chat decides, for everyone in it
        (
            {"allowed_chat_ids": [LISTED], "allowed_user_ids": [MEMBER]},
            STRANGER,
            LISTED,
            True,
            Verdict.ALLOWED,
        ),
        (
            {"allowed_chat_ids": [LISTED], "admin_user_ids": [OPERATOR]},
            OPERATOR,
            UNLISTED,
            True,
            Verdict.UNLISTED_CHAT,
        ),
        ({"allowed_chat_ids": [LISTED]}, None, UNLISTED, True, Verdict.UNLISTED_CHAT),
        # an update without a user (a channel post) where users are listed
        ({"allowed_user_ids": [MEMBER]}, None, UNLISTED, True, Verdict.STRANGER),
    ],
)
def test_verdicts(
    values: dict[str, object], user: int | None, chat: int, group: bool, expected: Verdict
) -> None:
    """Each combination of lists, user and chat gets the documented verdict."""
    assert verdict(_settings(**values), user, chat, group=group) is expected


def test_a_listed_groups_supergroup_is_served_when_carried_over() -> None:
    """An unlisted supergroup a listed group became is allowed while carried over."""
    settings = _settings(allowed_chat_ids=[LISTED])
    assert verdict(settings, MEMBER, UNLISTED, group=True, carried_over=True) is Verdict.ALLOWED


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({}, ["ALLOWED_USER_IDS", "ALLOWED_CHAT_IDS"]),
        ({"admin_user_ids": [OPERATOR]}, ["ALLOWED_USER_IDS", "ALLOWED_CHAT_IDS"]),
        ({"allowed_chat_ids": [LISTED]}, ["ALLOWED_USER_IDS"]),
        ({"allowed_user_ids": [MEMBER]}, []),
        ({"allowed_user_ids": [MEMBER], "allowed_chat_ids": [LISTED]}, []),
    ],
)
def test_open_access_warnings_name_the_settings(
    values: dict[str, object], names: list[str]
) -> None:
    """Open settings give one warning naming what to set; restricted ones give none."""
    warnings = open_access_warnings(_settings(**values))
    assert len(warnings) == (1 if names else 0)
    for name in names:
        assert name in warnings[0]
