"""Moving a group's conversations to its new id (a group that became a supergroup)."""

from __future__ import annotations

import pytest

from storage import ConversationStore, key
from storage.keys import chat_key_patterns, moved_key
from storage.messages import StoredMessage

pytestmark = pytest.mark.timeout(10)

OLD, NEW = -5, -1000000000005
QUESTION = StoredMessage("user", "what is a monad?")
ANSWER = StoredMessage("assistant", "a monoid in the category of endofunctors")


async def test_every_scope_of_the_group_moves_and_nothing_else(store: ConversationStore) -> None:
    """Members' histories, topic scopes, the group's settings move with their TTLs;
    another group (-55), a private chat and a streaming reply's lock stay."""
    await store.append_exchange(f"c:{OLD}:u:1", QUESTION, ANSWER)
    await store.set_model(f"c:{OLD}:t:7:u:2", "glm-4.5")
    await store.set_setting(f"c:{OLD}", "shared", "1")
    await store.append_exchange(f"c:{OLD}5:u:1", QUESTION, ANSWER)  # chat -55
    await store.append_exchange("u:1", QUESTION, ANSWER)
    await store.redis.set(key(f"c:{OLD}:u:1", "lock"), "holder", ex=60)

    moved = await store.move_chat(OLD, NEW)

    assert moved == 3
    assert await store.load_history(f"c:{NEW}:u:1") == [QUESTION, ANSWER]
    assert await store.get_model(f"c:{NEW}:t:7:u:2") == "glm-4.5"
    assert await store.get_settings(f"c:{NEW}") == {"shared": "1"}
    assert 0 < await store.redis.ttl(key(f"c:{NEW}:u:1", "history")) <= store.ttl_seconds
    assert await store.load_history(f"c:{OLD}:u:1") == []
    assert await store.get_model(f"c:{OLD}:t:7:u:2") is None
    assert await store.get_settings(f"c:{OLD}") == {}
    assert await store.load_history(f"c:{OLD}5:u:1") == [QUESTION, ANSWER]
    assert await store.load_history("u:1") == [QUESTION, ANSWER]
    assert await store.redis.get(key(f"c:{OLD}:u:1", "lock")) == "holder"
    assert await store.redis.exists(key(f"c:{NEW}:u:1", "lock")) == 0
    assert await store.move_chat(OLD, NEW) == 0, "a second call finds nothing to move"


async def test_state_already_under_the_new_id_wins(store: ConversationStore) -> None:
    """A key the new chat already has is kept; the old one is dropped, not merged."""
    await store.set_model(f"c:{OLD}:u:1", "old-model")
    await store.set_model(f"c:{NEW}:u:1", "new-model")
    assert await store.move_chat(OLD, NEW) == 0
    assert await store.get_model(f"c:{NEW}:u:1") == "new-model"
    assert await store.get_model(f"c:{OLD}:u:1") is None


def test_patterns_and_renaming_are_exact() -> None:
    """The patterns name the group's two scope shapes; a foreign key is refused."""
    assert chat_key_patterns(OLD) == ("cb:{c:-5}:*", "cb:{c:-5:*")
    assert moved_key("cb:{c:-5:t:7:u:2}:model", old_chat_id=OLD, new_chat_id=NEW) == (
        "cb:{c:-1000000000005:t:7:u:2}:model"
    )
    assert moved_key("cb:{c:-5}:settings", old_chat_id=OLD, new_chat_id=NEW) == (
        "cb:{c:-1000000000005}:settings"
    )
    for foreign in ("cb:{c:-55:u:1}:history", "cb:{u:1}:history", "cb:update:5"):
        with pytest.raises(ValueError, match="is not a key of chat"):
            moved_key(foreign, old_chat_id=OLD, new_chat_id=NEW)
