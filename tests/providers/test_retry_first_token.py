"""The first-token budget of provider retries: a model that sends nothing is retried at most
once, and the whole wait stays within 1.5 first-token timeouts (providers.retry)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import aclosing

import httpx
import pytest
import stamina

from providers.errors import FirstTokenTimeout, ServerError
from providers.openai_compat import OpenAICompatClient
from providers.retry import FIRST_TOKEN_BUDGET, first_token_timeout_of, stream_with_retries
from providers.types import AnswerDelta, ChatMessage, ChatRequest, Chunk, Finish

pytestmark = pytest.mark.timeout(10)

REQUEST = ChatRequest(model="m", messages=(ChatMessage("user", "hi"),))
TIMEOUT = 0.3  # the client's first-token timeout, seconds
SLACK = 0.15  # scheduling and loopback slack on a loaded machine, seconds
GOOD = (
    b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class Platform:
    """A fake platform: each request takes the next step (``"stall"``: never answer,
    ``"ok"``: a good answer, an int: that error status); the last step repeats.
    ``starts`` records when each request arrived (``time.monotonic``)."""

    def __init__(self, *steps: str | int) -> None:
        self.steps = list(steps)
        self.starts: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(len(self.starts), len(self.steps) - 1)]
        self.starts.append(time.monotonic())
        if step == "stall":
            await asyncio.sleep(3600)
        if isinstance(step, int):
            return httpx.Response(step, json={"error": {"message": f"status {step}"}})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=GOOD)


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """stamina's waits off, our attempt count kept (cap)."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


async def run(
    platform: Platform, *, attempts: int = 3, first_token_timeout: float | None = None
) -> list[Chunk]:
    """Stream REQUEST with retries through a client with a TIMEOUT-second first-token timeout."""
    client = OpenAICompatClient(
        "fake",
        base_url="https://x.test/v1",
        api_key="sk-k-0123456789",
        first_token_timeout=TIMEOUT,
        transport=httpx.MockTransport(platform),
    )
    try:
        async with aclosing(
            stream_with_retries(
                client, REQUEST, attempts=attempts, first_token_timeout=first_token_timeout
            )
        ) as chunks:
            return [chunk async for chunk in chunks]
    finally:
        await client.aclose()


async def test_silent_model_is_tried_twice_within_the_budget() -> None:
    """A model that never sends a first token gets two requests, and the error comes
    1.5 timeouts after the start: the retry waited only the rest of the budget."""
    platform = Platform("stall")
    started = time.monotonic()
    with pytest.raises(FirstTokenTimeout):
        await run(platform)
    elapsed = time.monotonic() - started
    assert len(platform.starts) == 2
    assert platform.starts[1] - started >= TIMEOUT, "the retry came after the first timeout"
    assert FIRST_TOKEN_BUDGET * TIMEOUT - 0.02 <= elapsed <= FIRST_TOKEN_BUDGET * TIMEOUT + SLACK


async def test_retry_after_a_first_token_timeout_can_still_answer() -> None:
    """When the retry answers within the rest of the budget, its answer streams."""
    platform = Platform("stall", "ok")
    assert await run(platform) == [AnswerDelta("ok"), Finish("stop")]
    assert len(platform.starts) == 2


async def test_first_token_timeout_after_an_error_is_not_retried_past_the_budget() -> None:
    """A 500, then a silent model: the silent attempt is retried once with what is left,
    and the whole wait still ends within the budget (three requests, not more)."""
    platform = Platform(500, "stall")
    started = time.monotonic()
    with pytest.raises(FirstTokenTimeout):
        await run(platform, attempts=5)
    elapsed = time.monotonic() - started
    assert len(platform.starts) == 3
    assert elapsed <= FIRST_TOKEN_BUDGET * TIMEOUT + SLACK


async def test_a_second_first_token_timeout_is_not_retried() -> None:
    """Two first-token timeouts end the retries even with attempts and budget to spare."""
    platform = Platform("stall")
    started = time.monotonic()
    with pytest.raises(FirstTokenTimeout):
        # a long budget: the second timeout comes from the client's own 0.3 s
        await run(platform, attempts=5, first_token_timeout=10)
    assert len(platform.starts) == 2
    assert time.monotonic() - started <= 2 * TIMEOUT + SLACK


async def test_other_errors_keep_their_retries() -> None:
    """Errors that are not first-token timeouts are retried as before: three requests."""
    platform = Platform(500, 502, 503)
    with pytest.raises(ServerError):
        await run(platform)
    assert len(platform.starts) == 3


async def test_no_retry_whose_backoff_would_end_past_the_budget() -> None:
    """Outside stamina's testing mode, a retry whose longest backoff (0.5 s + 0.5 s jitter)
    would end past the budget (0.45 s) is not made: the first error is raised at once."""
    platform = Platform(500, "ok")
    with stamina.set_testing(False), pytest.raises(ServerError):
        await run(platform)
    assert len(platform.starts) == 1


async def test_first_token_timeout_of_reads_the_client() -> None:
    """The budget's base is the client's public ``first_token_timeout``; none without one."""
    client = OpenAICompatClient(
        "fake", base_url="https://x.test/v1", api_key="k", first_token_timeout=7.0
    )
    try:
        assert first_token_timeout_of(client) == 7.0
    finally:
        await client.aclose()
    assert first_token_timeout_of(object()) is None  # type: ignore[arg-type]
