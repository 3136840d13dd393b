"""``python -m bot chat``: a conversation in the terminal, through the bot's own turn.

The terminal chat uses the same :class:`~bot.conversation.turn.ConversationService`, provider
clients and store as the bot, so it exercises the real path (history, retries,
model choice) without Telegram. The conversation scope is ``t:<os user name>``.

Lines typed are turns; commands: ``/model`` lists the enabled models, ``/model <n or
key>`` switches, ``/reset`` clears the history, ``/help``, ``/quit`` (or end of input)
leaves. On a terminal, Ctrl-C stops the answer being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Literal, TextIO

import httpx

from bot.app.platforms import build_catalogue, build_clients, check_default_model
from bot.app.services import open_configured_store, restore_sessions
from bot.conversation.failures import describe_failure
from bot.conversation.scope import local_scope
from bot.conversation.turn import ConversationService, Outcome, StreamState, TurnInput
from bot.settings import ConfigError, Settings
from bot.texts import t
from providers.catalogue import Catalogue, ModelInfo, UnknownModelError
from providers.errors import ProviderError
from storage import StorageUnavailable

__all__ = ["TerminalChat", "TerminalSink", "model_lines", "run_chat", "terminal_scope"]

DIM = "\x1b[2m"
"""ANSI SGR 2 (faint): reasoning text on a terminal."""
RESET = "\x1b[0m"
"""ANSI SGR 0: back to normal text."""
HELP = (
    "Commands: /model [n or key] – list or choose the model, /reset – new conversation, "
    "/quit – leave. Anything else is sent to the model."
)

_Mode = Literal["", "reasoning", "answer"]


def terminal_scope() -> str:
    """The conversation scope of the terminal chat: ``t:<os user name>`` (no braces)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        user = "operator"
    return local_scope(user.replace("{", "").replace("}", "") or "operator")


class TerminalSink:
    """A :class:`~bot.conversation.turn.ReplySink` writing the answer to a text stream as it grows.

    Only the new suffix of the answer is written per update; reasoning is shown
    faint (ANSI ``ESC[2m``) when ``out`` is a terminal, plain otherwise, and ends
    with a blank line before the answer starts.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._color = out.isatty()
        self._mode: _Mode = ""
        self._answer_shown = 0
        self._reasoning_shown = 0

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _enter(self, mode: _Mode) -> None:
        """Switch between reasoning and answer text, closing the previous one."""
        if self._mode == mode:
            return
        if self._mode == "reasoning" and self._color:
            self._write(RESET)
        if self._mode:
            self._write("\n\n")
        if mode == "reasoning" and self._color:
            self._write(DIM)
        self._mode = mode

    def _end_line(self) -> None:
        """Close faint text and end the current line, if anything was written."""
        if self._mode == "reasoning" and self._color:
            self._write(RESET)
        if self._mode:
            self._write("\n")
        self._mode = ""

    def _forget(self) -> None:
        self._mode = ""
        self._answer_shown = 0
        self._reasoning_shown = 0

    async def begin(self) -> None:
        """Start a new answer (nothing to show until the first chunk)."""
        self._forget()

    def update(self, state: StreamState) -> None:
        """Write the reasoning and answer text that arrived since the last call."""
        if len(state.reasoning) > self._reasoning_shown:
            self._enter("reasoning")
            self._write(state.reasoning[self._reasoning_shown :])
            self._reasoning_shown = len(state.reasoning)
        if len(state.answer) > self._answer_shown:
            self._enter("answer")
            self._write(state.answer[self._answer_shown :])
            self._answer_shown = len(state.answer)

    async def restart(self, state: StreamState) -> None:
        """Say that the connection was lost (when text was shown) and start over."""
        if self._mode:
            self._end_line()
            self._write("[connection lost, retrying]\n")
        self._forget()

    async def finish(self, state: StreamState, outcome: Outcome) -> None:
        """End the answer's line; mark a stopped or interrupted answer and any notice."""
        self.update(state)
        if not self._mode and outcome is Outcome.COMPLETED:
            self._write("[empty answer]")
            self._mode = "answer"
        self._end_line()
        if outcome is Outcome.STOPPED:
            self._write("[stopped]\n")
        elif outcome is Outcome.INTERRUPTED:
            self._write("[interrupted]\n")
        if state.notice:
            self._write(f"[{t(state.notice, 'en')}]\n")

    async def fail(self, state: StreamState, error: ProviderError) -> None:
        """End any partial text and print the user-facing description of ``error``."""
        self._end_line()
        self._write(describe_failure(error, "en") + "\n")

    async def abandon(self) -> None:
        """End any partial line; the chat loop reports the error."""
        self._end_line()


class TerminalChat:
    """The read–answer loop of the terminal chat over one :class:`ConversationService`."""

    def __init__(
        self, service: ConversationService, *, scope: str, stdin: TextIO, out: TextIO
    ) -> None:
        self.service = service
        self.scope = scope
        self._stdin = stdin
        self._out = out
        self._interactive = stdin.isatty()

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def _read_line(self) -> str | None:
        """The next input line without its newline; ``None`` at end of input."""
        if self._interactive:
            self._out.write("> ")
            self._out.flush()
        line = await asyncio.to_thread(self._stdin.readline)
        if not line:
            return None
        line = line.rstrip("\r\n")
        if not self._interactive and line.strip():
            self._print(f"> {line}")  # piped input: keep the transcript readable
        return line

    async def run(self) -> None:
        """Read lines and answer them until ``/quit`` or end of input."""
        model = await self.service.current_model(self.scope)
        self._print(f"Chatting with {model.display_name} ({model.key}). {HELP}")
        with self._sigint_stops_answer():
            while (line := await self._read_line()) is not None:
                if not await self.handle(line.strip()):
                    break

    async def handle(self, line: str) -> bool:
        """Run one command or turn; returns False when the chat should end."""
        command, _, argument = line.partition(" ")
        if not line:
            return True
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self._print(HELP)
        elif command == "/reset":
            await self.service.reset(self.scope)
            self._print(t("reset_done", "en"))
        elif command == "/model":
            await self._model_command(argument.strip())
        elif command.startswith("/") and command[1:].isalpha():
            self._print(f"Unknown command {command}. {HELP}")
        else:
            turn = TurnInput(scope=self.scope, user_id=0, text=line)
            await self.service.run_turn(turn, TerminalSink(self._out))
        return True

    async def _model_command(self, argument: str) -> None:
        """List the enabled models, or choose one by number or key."""
        catalogue = self.service.catalogue
        if not argument:
            current = await self.service.current_model(self.scope)
            for text in model_lines(catalogue, current=current):
                self._print(text)
            return
        models = catalogue.enabled_models()
        if argument.isdigit():
            number = int(argument)
            if not 1 <= number <= len(models):
                self._print(f"There is no model {number}: choose 1–{len(models)}.")
                return
            chosen = models[number - 1]
        else:
            try:
                chosen = catalogue.resolve(argument)
            except UnknownModelError as exc:
                self._print(str(exc))
                return
        info = await self.service.set_model(self.scope, chosen.key)
        if info is None:
            self._print(t("model_unknown", "en"))
        else:
            self._print(t("model_set", "en", model=f"{info.display_name} ({info.key})"))

    @contextlib.contextmanager
    def _sigint_stops_answer(self) -> Iterator[None]:
        """On an interactive terminal, Ctrl-C stops the answer instead of killing the chat."""
        loop = asyncio.get_running_loop()
        if not self._interactive or threading.current_thread() is not threading.main_thread():
            yield
            return
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (NotImplementedError, RuntimeError):  # no signal support (Windows)
            yield
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    def _on_sigint(self) -> None:
        if not self.service.stop(self.scope):
            self._out.write("\n(/quit or Ctrl-D to leave)\n> ")
            self._out.flush()


def model_lines(catalogue: Catalogue, *, current: ModelInfo) -> list[str]:
    """The ``/model`` listing: enabled models numbered, grouped by platform, current marked.

    Numbers follow :meth:`Catalogue.enabled_models` order, which ``/model <n>`` uses.
    """
    lines = []
    number = 0
    for platform, models in catalogue.by_platform().items():
        info = catalogue.platform(platform)
        lines.append(info.display_name if info is not None else platform)
        for model in models:
            number += 1
            mark = "*" if model.key == current.key else " "
            badges = ("👁" if model.vision else "") + ("🧠" if model.reasoning else "")
            line = f"{mark} {number:>2}. {model.display_name} ({model.key}) {badges}"
            lines.append(line.rstrip())
    lines.append(f"* current · {t('model_legend', 'en')}")
    return lines


async def _chat(
    settings: Settings,
    catalogue: Catalogue,
    default: ModelInfo,
    *,
    transport: httpx.AsyncBaseTransport | None,
    stdin: TextIO,
    out: TextIO,
) -> int:
    """Open the store and clients, run the chat loop, close everything; the exit status."""
    try:
        store, _embedded = await open_configured_store(settings)
    except StorageUnavailable as exc:
        print(f"storage error: {exc}", file=out)
        return 2
    clients = build_clients(settings, transport=transport)
    service = ConversationService(
        store=store,
        clients=clients,
        catalogue=catalogue,
        default_model=default,
        system_prompt=settings.system_prompt,
    )
    try:
        await restore_sessions(store, service.clients)
        await TerminalChat(service, scope=terminal_scope(), stdin=stdin, out=out).run()
    finally:
        for client in clients.values():
            await client.aclose()
        await store.aclose()
    return 0


def run_chat(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Chat with the configured models in the terminal until ``/quit`` or end of input;
    ``stdin`` and ``out`` default to ``sys.stdin`` and ``sys.stdout`` as they are at the
    call (as :func:`bot.ops.check.run_check` does).

    Returns the exit status: 0 at the end, 2 (after one line) for a configuration
    error or a store that cannot be opened. ``transport`` (tests) replaces the
    network for every provider client.
    """
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    try:
        catalogue = build_catalogue(settings)
        default = check_default_model(settings, catalogue)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=out)
        return 2
    return asyncio.run(
        _chat(settings, catalogue, default, transport=transport, stdin=stdin, out=out)
    )
