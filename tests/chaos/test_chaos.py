"""Chaos: the real bot serving many conversations at once while everything around it fails.

Thirty users ask 3–5 questions each in private chats and six of them also in each of two
groups, one question after the other, while two strangers keep writing; meanwhile the
fake provider fails requests by seed (5xx, 429 with ``Retry-After``, streams closed or
stalled mid-answer, stalled before the first token), the fake Bot API answers a bounded
share of calls 429 (with ``retry_after``), 5xx or late, and Redis restarts mid-run
(in-process), or the ``python -m bot`` process gets SIGTERM mid-run and is started again.
Every question must end exactly once (an answer, or a clear message), no answer twice,
each stored history exactly the exchanges the users saw end with an answer, no stranger
answered, no unhandled error, and the bot still answering at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.fake_openai import FakeOpenAI
from bench.fake_telegram import FakeTelegram
from bench.loopback import TOKEN, running_bot, serve_all
from bot.texts import t
from storage import open_store
from tests.chaos.harness import (
    PROVIDER_FAULTS,
    ROWS,
    Asked,
    Conversation,
    ProviderChaos,
    Question,
    Run,
    TelegramChaos,
    bot_process,
    explain,
    history_problems,
    judge,
    kind_of,
    messages_of,
    plan,
    process_env,
    row_of,
    table,
)
from tests.conftest import RedisProcess
from tests.e2e.conftest import World

USERS = tuple(range(1001, 1031))
GROUPS = {-1002001: USERS[:6], -1002002: USERS[6:12]}
STRANGERS = (9001, 9002)
SEED_IN_PROCESS = 1
SEED_SIGTERM = 2022
FIRST_TOKEN_TIMEOUT = 1.0
NOT_ALLOWED = {user: t("not_allowed", "en", user_id=user) for user in STRANGERS}

SETTINGS: dict[str, Any] = {
    "allowed_user_ids": list(USERS),
    "provider_connect_timeout": 1.0,
    "provider_first_token_timeout": FIRST_TOKEN_TIMEOUT,
    "provider_idle_timeout": 0.6,
    "history_max_turns": 100,
    "history_max_tokens": 100_000,
    "private_edit_interval": 0.1,
    "group_edit_interval": 0.2,
    "draft_interval": 0.1,
    # Telegram's limits, but groups and the whole bot sped up so twelve conversations in
    # a group and ~170 questions fit in seconds (the faults, not the pace, are the test).
    "limit_per_chat_per_second": 5.0,
    "limit_per_group_per_minute": 600,
    "limit_group_burst": 20,
    "limit_global_per_second": 100,
    "limit_global_burst": 20,
    "limit_max_in_flight": 50,
}
"""Short provider timeouts (the provider's retry waits are its own: 0.5–1.5 s, or the
``Retry-After``), fast edits, room for many conversations."""


@contextlib.asynccontextmanager
async def fakes(
    seed: int, conversations: Sequence[Conversation], redis_url: str
) -> AsyncIterator[tuple[World, ProviderChaos, TelegramChaos]]:
    """The fake Bot API and provider, failing by ``seed``, served on loopback."""
    provider = ProviderChaos(
        seed, (q for c in conversations for q in c.questions), stall_seconds=4 * FIRST_TOKEN_TIMEOUT
    )
    chaos = TelegramChaos(seed)
    telegram, openai = FakeTelegram(chaos=chaos), FakeOpenAI(plan=provider)
    async with serve_all(telegram.app, openai.app) as (tg_port, ai_port):
        try:
            yield World(telegram, openai, tg_port, ai_port, redis_url), provider, chaos
        finally:
            telegram.close()


async def last_question(run: Run, provider: ProviderChaos, chaos: TelegramChaos) -> Asked:
    """With the faults off, one more question; it must get its full answer within 10 s."""
    provider.faulty, chaos.on = False, False
    question = Question(
        "p1001last",
        USERS[0],
        USERS[0],
        False,
        "Q:p1001last still there?",
        "A:p1001last yes, still serving.",
    )
    provider.add(question)
    asked = run.ask(question)
    assert await run.wait_end(asked, within=10), "the bot no longer answers"
    kinds = [kind_of(m.text, question) for m in messages_of(run.telegram, asked)]
    assert kinds == ["answer"], kinds
    return asked


async def verify(
    scenario: str,
    run: Run,
    world: World,
    provider: ProviderChaos,
    chaos: TelegramChaos,
    seconds: float,
) -> None:
    """Judge the run, add its table row, and assert the invariants (module docstring)."""
    await asyncio.gather(*(run.wait_end(a, within=10) for a in run.asked))
    await asyncio.sleep(0.5)  # the last saves and edits
    verdict = judge(world.telegram, run.asked, STRANGERS)
    row = row_of(scenario, verdict, run, provider, chaos, seconds)
    ROWS.append(row)
    print(table([row]))
    store, _ = await open_store(
        world.redis_url, max_turns=100, max_tokens=100_000, ttl_seconds=3600
    )
    try:
        for _ in range(25):  # a save may still be retrying after a Redis restart
            problems = await history_problems(store, run.asked, verdict)
            if not problems:
                break
            await asyncio.sleep(0.2)
    finally:
        await store.aclose()
    story = explain(world.telegram, run.asked, verdict.lost + verdict.doubled + verdict.duplicates)
    assert not verdict.lost, f"lost: {verdict.lost}\n{story}"
    assert not verdict.doubled, f"{[(k, verdict.ends[k]) for k in verdict.doubled]}\n{story}"
    assert not verdict.duplicates, f"{verdict.duplicates}\n{story}"
    assert not verdict.foreign, verdict.foreign
    assert not verdict.unowned, verdict.unowned
    assert not problems, "\n".join(problems)
    assert set(provider.served) == {kind for kind, _ in PROVIDER_FAULTS}, provider.served
    assert set(chaos.counts) == {"429", "5xx", "slow"}, chaos.counts
    stranger_words = [c for c in provider.unplanned if c.startswith("S:")]
    assert not stranger_words, stranger_words
    assert not provider.unplanned, provider.unplanned
    for user in STRANGERS:  # told their id, never answered
        texts = {m.text for m in world.telegram.bot_messages(user)}
        assert texts <= {NOT_ALLOWED[user]}, texts
    for group in GROUPS:
        replies = {m.reply_to for m in world.telegram.bot_messages(group)}
        strangers = {m for chat, m in run.stranger_messages if chat == group}
        assert not replies & strangers, "a stranger was answered in a group"


async def restart_redis(run: Run, redis: RedisProcess, total: int, seed: int) -> float:
    """Once 30–50 % of the ``total`` questions were asked, stop Redis (saving its data) for
    1–2 s, then start it again; returns the seconds it was down."""
    rng = random.Random(f"redis:{seed}")
    at, down = int(total * rng.uniform(0.3, 0.5)), rng.uniform(1.0, 2.0)
    while len(run.asked) < at:  # noqa: ASYNC110 (waits on the users' progress, no one event)
        await asyncio.sleep(0.05)
    await asyncio.to_thread(redis.stop, keep_data=True)
    started = time.monotonic()
    await asyncio.sleep(down)
    await asyncio.to_thread(redis.start)
    return time.monotonic() - started


def loud_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """ERROR records, and records with a traceback, of the bot (the fakes' servers aside)."""
    return [
        r
        for r in caplog.records
        if (r.levelno >= logging.ERROR or r.exc_info) and not r.name.startswith("uvicorn")
    ]


@pytest.mark.timeout(100)
async def test_chaos_in_process(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """The real Application, polling, under provider, Telegram and Redis faults at once:
    every question ends once, no answer twice, histories exact, strangers never answered,
    nothing unhandled logged, and the bot answers after it all."""
    caplog.set_level(logging.WARNING)
    seed = SEED_IN_PROCESS
    conversations = plan(seed, private_users=USERS, groups=GROUPS)
    total = sum(len(c.questions) for c in conversations)
    async with fakes(seed, conversations, redis_process.url) as (world, provider, chaos):
        run = Run(world.telegram, seed)
        started = time.monotonic()
        async with running_bot(world.settings(**SETTINGS, use_drafts=True)):
            stop = asyncio.Event()
            strangers = asyncio.create_task(run.strangers(STRANGERS, next(iter(GROUPS)), stop))
            redis = asyncio.create_task(restart_redis(run, redis_process, total, seed))
            await asyncio.gather(*(run.converse(c) for c in conversations))
            stop.set()
            await strangers
            down = await redis
            await last_question(run, provider, chaos)
            await verify(
                f"in-process: provider + Telegram faults, Redis down {down:.1f} s",
                run,
                world,
                provider,
                chaos,
                time.monotonic() - started,
            )
    loud = loud_records(caplog)
    assert not [r for r in loud if "unhandled error" in r.getMessage()], "unhandled error logged"
    assert not loud, [r.getMessage() for r in loud]


@pytest.mark.timeout(110)
async def test_chaos_sigterm_and_restart(redis_url: str, tmp_path: Path) -> None:
    """``python -m bot`` under provider and Telegram faults gets SIGTERM mid-run and exits
    0 within its grace; started again, it serves the rest: every question ends once (a
    reply cut by the restart ends under its mark, or with the restart notice), no answer
    twice, histories exact, no traceback, and the bot answers at the end."""
    seed = SEED_SIGTERM
    conversations = plan(
        seed, private_users=USERS[:20], groups=dict([next(iter(GROUPS.items()))]), questions=(3, 4)
    )
    total = sum(len(c.questions) for c in conversations)
    grace = 1.0
    async with fakes(seed, conversations, redis_url) as (world, provider, chaos):
        settings = {**SETTINGS, "use_drafts": False, "shutdown_grace_seconds": grace}
        env = process_env(world, tmp_path, settings)
        run = Run(world.telegram, seed, timeout=25)
        stop = asyncio.Event()
        logs = (tmp_path / "first.log", tmp_path / "second.log")
        started = time.monotonic()
        async with bot_process(world, env, logs[0]) as first:
            strangers = asyncio.create_task(run.strangers(STRANGERS, next(iter(GROUPS)), stop))
            users = asyncio.gather(*(run.converse(c) for c in conversations))
            at = int(total * random.Random(f"sigterm:{seed}").uniform(0.3, 0.5))
            while len(run.asked) < at:  # noqa: ASYNC110 (the users' progress)
                await asyncio.sleep(0.05)
            took = await first.stop(signal.SIGTERM, within=grace + 10)
        assert first.process.returncode == 0, first.output
        assert took < grace + 5, took
        async with bot_process(world, env, logs[1]) as second:
            await users
            stop.set()
            await strangers
            await last_question(run, provider, chaos)
            await verify(
                f"python -m bot: SIGTERM after {at} questions, restart",
                run,
                world,
                provider,
                chaos,
                time.monotonic() - started,
            )
            await second.stop(signal.SIGTERM, within=grace + 10)
        assert second.process.returncode == 0, second.output
    for process in (first, second):
        output = process.output
        assert "Traceback" not in output and "unhandled error" not in output, output
        assert " ERROR " not in output, [line for line in output.splitlines() if " ERROR " in line]
        assert TOKEN not in output
