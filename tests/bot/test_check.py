"""Tests of ``python -m bot check``: configuration check, platform probes, table, exit status."""

from __future__ import annotations

import io
import re

import pytest
from fake_providers import (
    API_KEY,
    FAKE_BASE_URL,
    Failure,
    FakeChatService,
    Stall,
    Unreachable,
    clean_environment,
    make_settings,
)

from bot.ops.check import run_check

OTHER_URL = "http://other.fake/v1"
OTHER_KEY = "sk-otherkey-987654321"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment out of Settings."""
    clean_environment(monkeypatch)


def other_platform() -> list[dict[str, object]]:
    """A CUSTOM_PROVIDERS value: a second platform ``other`` at another fake host."""
    return [{"name": "other", "base_url": OTHER_URL, "api_key": OTHER_KEY, "models": ["o1"]}]


def row_of(output: str, platform: str) -> str:
    """The table row of ``platform`` in the check's output."""
    rows = [line for line in output.splitlines() if line.split(" ", 1)[0] == platform]
    assert len(rows) == 1, output
    return rows[0]


def check(service: FakeChatService, **values: object) -> tuple[int, str]:
    """Run the check against ``service``; return the exit status and the output."""
    out = io.StringIO()
    status = run_check(make_settings(**values), transport=service.transport, out=out, timeout=5)
    return status, out.getvalue()


@pytest.mark.timeout(20)
def test_healthy_platform_shows_auth_and_latency() -> None:
    """A platform that streams an answer gets auth "yes", a latency in ms, and exit status 0."""
    service = FakeChatService()
    status, output = check(service)
    assert status == 0
    row = row_of(output, "openai")
    assert FAKE_BASE_URL in row
    assert "openai:m1" in row
    assert re.search(r"\byes\b", row)
    assert re.search(r"\b\d+ ms\b", row)
    assert "storage: OK" in output
    [body] = service.bodies()
    assert body["model"] == "m1"
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "ping"}]


@pytest.mark.timeout(20)
def test_probe_uses_the_default_model_on_its_platform() -> None:
    """The default model's platform is probed with DEFAULT_MODEL, not its first model."""
    service = FakeChatService()
    status, output = check(service, default_model="openai:m2")
    assert status == 0
    assert service.bodies()[0]["model"] == "m2"
    assert "openai:m2" in row_of(output, "openai")


@pytest.mark.timeout(20)
def test_rejected_key_on_default_platform_fails_without_leaking_the_key() -> None:
    """A 401 on the default model's platform shows auth "no", exits 1, and never prints the key."""
    service = FakeChatService(
        script=[Failure(401, f"Incorrect API key provided: {API_KEY}", "invalid_api_key")]
    )
    status, output = check(service)
    assert status == 1
    row = row_of(output, "openai")
    assert re.search(r"\bno\b", row)
    assert "AuthenticationError" in row
    assert "FAILED" in output
    assert API_KEY not in output
    assert API_KEY[:12] not in output


@pytest.mark.timeout(20)
def test_other_platform_failure_is_shown_but_exit_is_zero() -> None:
    """A second platform answering 500 is shown with its error while the default works: exit 0."""
    service = FakeChatService(
        host_steps={"other.fake": Failure(500, f"upstream exploded for {OTHER_KEY}")}
    )
    status, output = check(service, custom_providers=other_platform())
    assert status == 0
    assert re.search(r"\byes\b", row_of(output, "openai"))
    other = row_of(output, "other")
    assert OTHER_URL in other
    assert "ServerError" in other
    assert re.search(r"\byes\b", other)  # the server answered: the key was not refused
    assert OTHER_KEY not in output
    assert len(service.requests) == 2  # no provider-level retries for a probe


@pytest.mark.timeout(20)
def test_unreachable_platform_shows_question_mark() -> None:
    """A platform that cannot be reached gets auth "?" and its connection error."""
    service = FakeChatService(host_steps={"other.fake": Unreachable()})
    status, output = check(service, custom_providers=other_platform())
    assert status == 0
    other = row_of(output, "other")
    assert re.search(r"\s\?\s", other)
    assert "ProviderConnectionError" in other


@pytest.mark.timeout(20)
def test_probes_share_one_bounded_deadline() -> None:
    """A platform that never answers is cut off at the check's deadline while the others finish."""
    service = FakeChatService(host_steps={"other.fake": Stall(30)})
    out = io.StringIO()
    settings = make_settings(custom_providers=other_platform())
    status = run_check(settings, transport=service.transport, out=out, timeout=0.5)
    output = out.getvalue()
    assert status == 0
    assert "no answer within 0.5 s" in row_of(output, "other")
    assert re.search(r"\b\d+ ms\b", row_of(output, "openai"))


@pytest.mark.timeout(20)
def test_invalid_configuration_exits_2_with_one_line() -> None:
    """An unknown DEFAULT_MODEL is reported as one configuration line and exit status 2."""
    service = FakeChatService()
    status, output = check(service, default_model="openai:nope")
    assert status == 2
    assert output.count("\n") == 1
    assert output.startswith("configuration error: DEFAULT_MODEL is invalid")
    assert service.requests == []


@pytest.mark.timeout(20)
def test_unreachable_store_fails_the_check() -> None:
    """A REDIS_URL that does not answer makes the check exit 1 with a storage line."""
    service = FakeChatService()
    status, output = check(service, redis_url="redis://:hunter2pass@127.0.0.1:1/0")
    assert status == 1
    assert "storage: unavailable" in output
    assert "hunter2pass" not in output
