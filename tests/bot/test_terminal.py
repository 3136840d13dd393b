"""Tests of ``python -m bot chat``: the terminal sink and the chat loop over the real turn."""

from __future__ import annotations

import io

import pytest
from fake_providers import (
    API_KEY,
    Failure,
    FakeChatService,
    Reply,
    clean_environment,
    make_settings,
)

from bot.conversation.turn import Outcome, StreamState
from bot.ops.chat import DIM, RESET, TerminalSink, run_chat, terminal_scope
from providers.errors import RateLimitError


class TtyStringIO(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        """Always True."""
        return True


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's environment out of Settings."""
    clean_environment(monkeypatch)


def chat(service: FakeChatService, lines: str, **values: object) -> tuple[int, str]:
    """Run the terminal chat on ``lines`` against ``service``; return exit status and output."""
    out = io.StringIO()
    settings = make_settings(**values)
    status = run_chat(settings, transport=service.transport, stdin=io.StringIO(lines), out=out)
    return status, out.getvalue()


def roles_and_contents(body: dict[str, object]) -> list[tuple[str, str]]:
    """The ``messages`` of a request body as (role, content) pairs."""
    messages = body["messages"]
    assert isinstance(messages, list)
    return [(m["role"], m["content"]) for m in messages]


@pytest.mark.timeout(20)
def test_conversation_model_switch_and_reset() -> None:
    """Answers are printed, /model 2 switches to m2 with the history kept, /reset clears it."""
    service = FakeChatService()
    lines = "hello\n/model\n/model 2\nsecond\n/reset\nthird\n/quit\nnever sent\n"
    status, output = chat(service, lines)
    assert status == 0
    assert "> hello\nEcho: hello\n" in output  # piped input is echoed for a readable transcript
    assert "Echo: second" in output
    assert "*  1. m1 (openai:m1)" in output  # the listing marks the current model
    assert "   2. m2 (openai:m2)" in output
    assert "Model set to m2 (openai:m2)." in output
    first, second, third = service.bodies()
    assert first["model"] == "m1"
    assert roles_and_contents(first) == [("system", "be brief"), ("user", "hello")]
    assert second["model"] == "m2"
    assert roles_and_contents(second) == [
        ("system", "be brief"),
        ("user", "hello"),
        ("assistant", "Echo: hello"),
        ("user", "second"),
    ]
    assert roles_and_contents(third) == [("system", "be brief"), ("user", "third")]
    assert "never sent" not in output


@pytest.mark.timeout(20)
def test_end_of_input_ends_the_chat() -> None:
    """End of input without /quit ends the chat with exit status 0."""
    service = FakeChatService()
    status, output = chat(service, "only line")
    assert status == 0
    assert "Echo: only line" in output
    assert len(service.requests) == 1


@pytest.mark.timeout(20)
def test_reasoning_is_shown_plain_when_not_a_terminal() -> None:
    """Reasoning text is printed before the answer, without ANSI codes on a non-terminal."""
    service = FakeChatService(script=[Reply("The answer.", reasoning="Let me think.")])
    status, output = chat(service, "why?\n")
    assert status == 0
    assert "Let me think.\n\nThe answer.\n" in output
    assert "\x1b" not in output


@pytest.mark.timeout(20)
def test_provider_error_is_explained_and_the_chat_goes_on() -> None:
    """A rejected key prints the user-facing explanation, never the key, and the next turn works."""
    service = FakeChatService(script=[Failure(401, f"bad key {API_KEY}", "invalid_api_key")])
    status, output = chat(service, "first\nagain\n")
    assert status == 0
    assert "This model's service rejected the API key" in output
    assert "Echo: again" in output
    assert API_KEY not in output
    assert len(service.requests) == 2


@pytest.mark.timeout(20)
def test_broken_stream_is_retried_with_a_notice() -> None:
    """A stream cut after text was shown prints the retry notice, then the whole new answer."""
    service = FakeChatService(script=[Reply("partial answ", truncated=True), Reply("full answer")])
    status, output = chat(service, "go\n")
    assert status == 0
    assert "partial answ\n[connection lost, retrying]\nfull answer\n" in output


@pytest.mark.timeout(20)
def test_model_command_rejects_bad_choices() -> None:
    """/model with an out-of-range number or an unknown key explains, and keeps the model."""
    service = FakeChatService()
    status, output = chat(service, "/model 9\n/model nope\nhi\n")
    assert status == 0
    assert "There is no model 9: choose 1–2." in output
    assert "unknown model 'nope'" in output
    assert service.bodies()[0]["model"] == "m1"


@pytest.mark.timeout(20)
def test_model_command_accepts_a_key() -> None:
    """/model openai:m2 chooses that model for the next turn."""
    service = FakeChatService()
    status, _output = chat(service, "/model openai:m2\nhi\n")
    assert status == 0
    assert service.bodies()[0]["model"] == "m2"


@pytest.mark.timeout(20)
def test_configuration_error_exits_2() -> None:
    """An invalid configuration prints one line and exits 2 before reading any input."""
    service = FakeChatService()
    status, output = chat(service, "hello\n", openai_models=[])
    assert status == 2
    assert output.startswith("configuration error: OPENAI_BASE_URL is set but OPENAI_MODELS")
    assert output.count("\n") == 1
    assert service.requests == []


async def test_sink_writes_only_new_text_and_dims_reasoning_on_a_terminal() -> None:
    """On a terminal, reasoning is wrapped in faint ANSI codes; each update adds only new text."""
    out = TtyStringIO()
    sink = TerminalSink(out)
    state = StreamState()
    await sink.begin()
    state.reasoning = "hmm"
    sink.update(state)
    state.reasoning = "hmm, ok"
    sink.update(state)
    state.answer = "Ans"
    sink.update(state)
    state.answer = "Answer"
    sink.update(state)
    await sink.finish(state, Outcome.COMPLETED)
    assert out.getvalue() == f"{DIM}hmm, ok{RESET}\n\nAnswer\n"


async def test_sink_marks_stopped_and_interrupted_answers_and_the_notice() -> None:
    """A stopped answer ends in [stopped]; an interrupted one in [interrupted] and the notice."""
    out = io.StringIO()
    sink = TerminalSink(out)
    await sink.begin()
    await sink.finish(StreamState(answer="part"), Outcome.STOPPED)
    await sink.begin()
    state = StreamState(answer="half", notice="older_dropped")
    await sink.finish(state, Outcome.INTERRUPTED)
    assert out.getvalue() == (
        "part\n[stopped]\n"
        "half\n[interrupted]\n[Older messages were left out to fit the model's context.]\n"
    )


async def test_sink_restart_is_silent_when_nothing_was_shown() -> None:
    """A restart before any text (context-too-long retry) prints nothing; after text it says so."""
    out = io.StringIO()
    sink = TerminalSink(out)
    await sink.begin()
    await sink.restart(StreamState())
    assert out.getvalue() == ""
    state = StreamState(answer="abc")
    sink.update(state)
    await sink.restart(state)
    state = StreamState(answer="xyz")
    sink.update(state)
    error = RateLimitError("slow down", status=429, retry_after=7)
    await sink.fail(state, error)
    assert out.getvalue() == (
        "abc\n[connection lost, retrying]\nxyz\nThe model is busy; try again in 7 s.\n"
    )


def test_terminal_scope_has_no_braces() -> None:
    """The terminal scope is ``t:<user>`` and never contains a Redis hash-tag brace."""
    scope = terminal_scope()
    assert scope.startswith("t:")
    assert len(scope) > 2
    assert "{" not in scope and "}" not in scope


def test_standard_streams_are_read_at_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``stdin``/``out``, the chat uses ``sys.stdin``/``sys.stdout`` as they are when
    it is called, not as they were when the module was imported."""
    service = FakeChatService()
    stdin, out = io.StringIO("hello\n/quit\n"), io.StringIO()
    monkeypatch.setattr("sys.stdin", stdin)
    monkeypatch.setattr("sys.stdout", out)
    assert run_chat(make_settings(), transport=service.transport) == 0
    assert "Echo: hello" in out.getvalue()
