"""Key names, hash tags, token estimates and the JSON form of a stored message."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from storage import IMAGE_TOKENS, StoredMessage, estimate_tokens, key
from storage.keys import SCOPE_TTL_NAMES, provider_session_key, update_key, user_usage_key


@pytest.mark.parametrize("scope", ["u:42", "c:-100123:u:42", "c:-100123:t:7:u:42"])
def test_keys_of_one_scope_share_one_hash_slot(scope: str) -> None:
    """Every key of one conversation hashes to the same Redis Cluster slot via its hash tag."""
    names = [*SCOPE_TTL_NAMES, "lock"]
    keys = [key(scope, name) for name in names]
    assert keys[0] == f"cb:{{{scope}}}:history"
    assert {key_slot(k.encode()) for k in keys} == {key_slot(scope.encode())}


@pytest.mark.parametrize("scope", ["", "u:{1}", "c:}", "{"])
def test_key_rejects_empty_scope_or_braces(scope: str) -> None:
    """A scope that is empty or holds a brace (which would move the hash tag) is refused."""
    with pytest.raises(ValueError, match="scope"):
        key(scope, "history")


def test_global_keys_are_distinct() -> None:
    """Global keys name their kind and id and carry no conversation hash tag."""
    assert update_key(7) == "cb:update:7"
    assert provider_session_key("ustb") == "cb:provider:ustb:session"
    assert user_usage_key(42, day="2025-01-02") == "cb:usage:u:42:2025-01-02"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("你好世界", 4),
        ("你好 abcd", 4),
        ("\u1100\u11ff", 2),  # both ends of a range count
        ("\u10ff\u1200", 1),  # just outside it: two "other" characters
        ("한국어 カナ ，", 7),  # Hangul, katakana, a full-width comma = 6; two spaces = 1
        ("\U00020000🙂", 2),  # an astral CJK character counts 1; the emoji 1/4
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    """CJK characters count one token each; other characters one per four, rounded up."""
    assert estimate_tokens(text) == tokens


def test_json_round_trip_keeps_images_and_interrupted() -> None:
    """to_json/from_json preserve content, image file_ids and the interrupted flag."""
    message = StoredMessage("assistant", "答案 **bold**", ("fid1", "fid2"), interrupted=True)
    assert StoredMessage.from_json(message.to_json()) == message
    assert StoredMessage.from_json(message.to_json().encode()) == message
    assert message.tokens == estimate_tokens("答案 **bold**") + 2 * IMAGE_TOKENS


def test_json_form_carries_token_estimate() -> None:
    """The JSON form holds the token estimate the Lua trim script sums."""
    assert '"tokens":3' in StoredMessage("user", "你好吗").to_json()


@pytest.mark.parametrize(
    "data",
    ['["user"]', '{"role": "system", "content": "x"}', '{"role": "user", "images": "x"}', "{"],
)
def test_from_json_rejects_other_shapes(data: str) -> None:
    """Anything but a stored-message object raises ValueError."""
    with pytest.raises(ValueError):
        StoredMessage.from_json(data)
