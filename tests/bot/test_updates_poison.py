"""Skipped ("poison") updates: which raw updates parse, and how their log lines are bounded."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.app.updates import PoisonLog, parse_update, skipping_bot

GOOD: dict[str, Any] = {
    "update_id": 7,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "text": "hi",
        "chat": {"id": 3, "type": "private", "first_name": "A"},
    },
}


class Clock:
    """A settable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(**fields: Any) -> dict[str, Any]:
    """A message update (id 7) with ``fields`` replacing the good message's."""
    return {"update_id": 7, "message": {**GOOD["message"], **fields}}


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages ``bot.app.updates`` logged."""
    return [r.getMessage() for r in caplog.records if r.name == "bot.app.updates"]


@pytest.mark.parametrize(
    ("data", "exc"),
    [
        (message(chat={"type": "private"}), "TypeError"),  # chat without an id
        (message(chat="private"), "TypeError"),  # chat not an object
        (message(date=10**20), "OverflowError"),  # date past any time_t
        ({"update_id": "7", "message": GOOD["message"]}, "TypeError"),  # PTB would take a str id
        ([GOOD], "TypeError"),
    ],
)
def test_unparsable_updates_are_none_and_logged_with_the_exception_class(
    data: Any, exc: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Shapes PTB 22.8 raises on (or, for a string update_id, would pass on to wedge the
    Updater's offset arithmetic) give None and one line naming the exception class."""
    caplog.set_level(logging.WARNING)
    bot = skipping_bot("1:x", base_url="http://127.0.0.1:9/bot", base_file_url="http://x/")
    assert parse_update(data, bot, PoisonLog()) is None
    (line,) = lines(caplog)
    assert exc in line and "private" not in line


def test_a_good_update_parses() -> None:
    """A well-formed update comes back as an Update with its id and chat."""
    bot = skipping_bot("1:x", base_url="http://127.0.0.1:9/bot", base_file_url="http://x/")
    update = parse_update(GOOD, bot, PoisonLog())
    assert update is not None and update.update_id == 7 and update.effective_chat is not None
    assert update.effective_chat.id == 3


def test_each_update_id_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """The same poison update seen again (a redelivery, a re-poll) adds no line."""
    caplog.set_level(logging.WARNING)
    poison = PoisonLog(clock=Clock())
    for _ in range(3):
        poison.skipped(message(chat=None), TypeError())
    assert lines(caplog) == ["skipped update 7 that PTB cannot parse (TypeError; type: message)"]


def test_lines_a_minute_are_capped_and_the_rest_counted(caplog: pytest.LogCaptureFixture) -> None:
    """Past ``per_minute`` lines the rest of the minute is silent; the first skip after the
    minute logs how many went unlogged, then its own line."""
    caplog.set_level(logging.WARNING)
    clock = Clock()
    poison = PoisonLog(per_minute=3, clock=clock)
    for update_id in range(10):
        poison.skipped({"update_id": update_id, "callback_query": {}}, KeyError())
    assert len(lines(caplog)) == 3
    clock.now += 59.0
    poison.skipped({"update_id": 100}, KeyError())
    assert len(lines(caplog)) == 3
    clock.now += 1.0
    poison.skipped({"update_id": 101}, ValueError())
    assert lines(caplog)[3:] == [
        "8 more unparsable updates skipped in the last minute, unlogged",
        "skipped update 101 that PTB cannot parse (ValueError; type: ?)",
    ]


def test_only_update_type_names_reach_the_line(caplog: pytest.LogCaptureFixture) -> None:
    """Keys that are not Bot API update types (anything a sender made up) are not logged."""
    caplog.set_level(logging.WARNING)
    PoisonLog().skipped({"update_id": 9, "secret-ish key": 1, "edited_message": {}}, TypeError())
    (line,) = lines(caplog)
    assert "edited_message" in line and "secret-ish" not in line
