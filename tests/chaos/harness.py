"""The chaos suite's harness: planned conversations, seeded fault choosers for the fake
servers, simulated users, and the per-question verdict read from the fake Bot API.

Every random choice comes from a ``random.Random`` seeded from the run's seed and a
stable name (the question, the request number of that question, the call number), so
a seed gives the same plan and the same faults per request on every run; only which
Telegram call draws which fault depends on timing.

How a question's end is read from the fake Bot API (:func:`judge`): each bot message in
the chat is given to one question, by the message it replies to (a reply's first
message replies to the question; the restart notice to the cut answer), else, in a
private chat (one conversation, one question at a time), to the latest question
before it (message ids only grow). Each message is then an answer (the full final
text), a partial answer kept under a mark (stored, interrupted), a clear message (an
error notice, "temporarily unavailable", the restart mark or notice), or a frame left
behind (not an end). A question ends once when exactly one of its messages is an end.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fake_openai import Answer, Failure
from bench.fake_telegram import BOT_USERNAME, Call, FakeTelegram, Fault, StoredMessage
from bot.conversation.restart import RESTART_PLACEHOLDER
from bot.conversation.scope import chat_scope, user_scope
from bot.render.markdown import ReplyStrings, compose_reply
from bot.texts import t
from storage import ConversationStore
from storage.keys import MEMBER_PART
from tests.e2e.conftest import World

MENTION = f"@{BOT_USERNAME}"
WORDS = ("alpha", "beta", "gamma", "delta", "answer", "stream", "model", "redis", "class")
STRINGS = ReplyStrings(thinking=t("thinking", "en"), thought_for=t("thought_for", "en"))

RESTART_MARK = t("mark_restart", "en")
RESTART_NOTICE = t("restart_notice", "en")
INTERRUPTED = t("mark_interrupted", "en")
UNAVAILABLE = t("storage_unavailable", "en")
ERROR_KEYS = (
    "error_generic",
    "error_connection",
    "error_timeout",
    "error_stream",
    "error_server",
    "error_rate_limited",
    "error_bad_request",
)
ERROR_HEADS = tuple(t(key, "en", seconds=0).split(" 0 s")[0] for key in ERROR_KEYS)
"""The start of each provider-failure notice a user may get (the rate limit's names its
seconds: only the words before them)."""


def final_text(markdown: str) -> str:
    """The text of the finished reply to ``markdown`` (one message)."""
    return compose_reply(markdown, partial=False, strings=STRINGS).text


# ----- the plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One question of a conversation: ``content`` is what the model is asked (and what
    the history stores), ``answer`` the model's full answer (plain text)."""

    key: str
    chat_id: int
    user_id: int
    group: bool
    content: str
    answer: str

    @property
    def text(self) -> str:
        """The message the user sends (in a group, mentioning the bot)."""
        return f"{MENTION} {self.content}" if self.group else self.content

    @property
    def scope(self) -> str:
        """The conversation scope the bot keeps the history under."""
        return conversation_scope(self.chat_id, self.user_id, group=self.group)


def conversation_scope(chat_id: int, user_id: int, *, group: bool) -> str:
    """``u:<user>`` in a private chat, ``c:<chat>:u:<user>`` in a group (one conversation
    per member: :func:`bot.conversation.scope.scope_of`)."""
    if not group:
        return user_scope(user_id)
    return chat_scope(chat_id) + MEMBER_PART.format(user_id=user_id)


@dataclass(frozen=True)
class Conversation:
    """A user's questions in one chat, asked one after the other."""

    chat_id: int
    user_id: int
    group: bool
    questions: tuple[Question, ...]

    @property
    def scope(self) -> str:
        """The conversation scope."""
        return conversation_scope(self.chat_id, self.user_id, group=self.group)


def plan(
    seed: int,
    *,
    private_users: Sequence[int],
    groups: Mapping[int, Sequence[int]],
    questions: tuple[int, int] = (3, 5),
) -> list[Conversation]:
    """One conversation per private user and per group member, each of
    ``questions[0]``–``questions[1]`` questions with their answers (20–45 words)."""
    rng = random.Random(f"plan:{seed}")
    places = [(uid, uid, False) for uid in private_users]
    places += [(gid, uid, True) for gid, members in groups.items() for uid in members]
    conversations = []
    for chat_id, user_id, group in places:
        tag = f"g{abs(chat_id)}u{user_id}" if group else f"p{user_id}"
        asked = []
        for n in range(rng.randint(*questions)):
            key = f"{tag}q{n}"
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 45)))
            asked.append(
                Question(key, chat_id, user_id, group, f"Q:{key} {words}?", f"A:{key} {answer}.")
            )
        conversations.append(Conversation(chat_id, user_id, group, tuple(asked)))
    return conversations


# ----- the fault choosers -----------------------------------------------------------------


PROVIDER_FAULTS = (
    ("ok", 0.64),
    ("5xx", 0.07),
    ("429", 0.07),
    ("drop", 0.09),
    ("stall before the first token", 0.04),
    ("stall mid-answer", 0.09),
)
"""The reply kinds of the fake provider and their shares of the requests."""


class ProviderChaos:
    """The fake OpenAI server's ``plan``: each request for a planned question gets that
    question's answer, streamed, or a fault, drawn by ``Random(seed, question, n)`` for
    the question's ``n``-th request (5xx, 429 with ``Retry-After: 1``, a stream closed
    mid-answer, a stream that stalls before its first token or mid-answer). A request
    for anything else is answered plainly and noted in :attr:`unplanned`."""

    def __init__(self, seed: int, questions: Iterable[Question], *, stall_seconds: float) -> None:
        """``stall_seconds``: how long a stall before the first token lasts (longer than
        the bot's first-token timeout); a stall mid-answer lasts until the bot leaves."""
        self.seed = seed
        self.answers = {q.content: q.answer for q in questions}
        self.stall_seconds = stall_seconds
        self.faulty = True
        self.requests: collections.Counter[str] = collections.Counter()
        self.served: collections.Counter[str] = collections.Counter()
        self.unplanned: list[str] = []

    def add(self, question: Question) -> None:
        """Answer ``question`` too."""
        self.answers[question.content] = question.answer

    def __call__(self, body: dict[str, Any]) -> Answer | Failure:
        """Pick the reply to the request ``body``."""
        content = str(body["messages"][-1]["content"])
        answer = self.answers.get(content)
        if answer is None:
            self.unplanned.append(content)
            return Answer(f"an answer to {content}")
        n = self.requests[content]
        self.requests[content] += 1
        rng = random.Random(f"provider:{self.seed}:{content}:{n}")
        kind = _pick(rng, PROVIDER_FAULTS) if self.faulty else "ok"
        self.served[kind] += 1
        piece, delay = rng.randint(5, 9), rng.uniform(0.01, 0.03)
        pieces = math.ceil(len(answer) / piece)
        if kind == "5xx":
            return Failure(rng.choice((500, 502, 503)), message="upstream failure")
        if kind == "429":
            return Failure(
                429,
                code="rate_limit_exceeded",
                message="Rate limit reached",
                headers={"retry-after": "1"},
            )
        if kind == "drop":
            return Answer(answer, piece, delay, truncate_after=rng.randint(1, pieces - 1))
        if kind == "stall before the first token":
            return Answer(answer, piece, delay, first_delay=self.stall_seconds)
        if kind == "stall mid-answer":
            return Answer(answer, piece, delay, stall_after=rng.randint(1, pieces - 1))
        return Answer(answer, piece, delay)


def _pick(rng: random.Random, shares: Sequence[tuple[str, float]]) -> str:
    draw, total = rng.random(), 0.0
    for kind, share in shares:
        total += share
        if draw < total:
            return kind
    return shares[-1][0]


class TelegramChaos:
    """The fake Bot API's ``chaos``: of the calls into a chat, a ``share`` is refused or
    held, at most ``per_second`` a second (a bucket of ``burst``): 40 % answered 429
    with ``retry_after`` 1 s (2 s for one in five), 30 % answered 500 or 502 (not carried
    out), 30 % carried out and answered 0.2–1.5 s late. Draws come from one
    ``Random(seed)`` call by call, three per call, faulted or not."""

    def __init__(
        self, seed: int, *, share: float = 0.1, per_second: float = 4.0, burst: float = 4.0
    ) -> None:
        """Choose with the seed ``seed``."""
        self.rng = random.Random(f"telegram:{seed}")
        self.share, self.per_second, self.burst = share, per_second, burst
        self.on = True
        self.counts: collections.Counter[str] = collections.Counter()
        self._tokens, self._at = burst, 0.0

    def __call__(self, call: Call) -> Fault | None:
        """The fault for ``call``, if any."""
        if not self.on or "chat_id" not in call.params:
            return None
        draw, kind, extra = self.rng.random(), self.rng.random(), self.rng.random()
        self._tokens = min(self.burst, self._tokens + (call.at - self._at) * self.per_second)
        self._at = call.at
        if draw >= self.share or self._tokens < 1:
            return None
        self._tokens -= 1
        if kind < 0.4:
            self.counts["429"] += 1
            return Fault(429, retry_after=2 if extra < 0.2 else 1)
        if kind < 0.7:
            self.counts["5xx"] += 1
            return Fault(500 if extra < 0.5 else 502)
        self.counts["slow"] += 1
        return Fault(delay=0.2 + 1.3 * extra)


# ----- the users ----------------------------------------------------------------------------


@dataclass
class Asked:
    """A question sent: the message id the fake Bot API gave it, and when."""

    question: Question
    message_id: int
    at: float


@dataclass
class Run:
    """One chaos run's users and what they sent."""

    telegram: FakeTelegram
    seed: int
    timeout: float = 15.0
    asked: list[Asked] = field(default_factory=list)
    stranger_messages: list[tuple[int, int]] = field(default_factory=list)  # (chat, message)
    timed_out: int = 0

    def ask(self, question: Question) -> Asked:
        """Send ``question`` now."""
        message_id = self.telegram.push_text(
            chat_id=question.chat_id,
            user_id=question.user_id,
            text=question.text,
            chat_type="supergroup" if question.group else "private",
        )
        asked = Asked(question, message_id, time.monotonic())
        self.asked.append(asked)
        return asked

    async def converse(self, conversation: Conversation) -> None:
        """Ask each question after a short pause, once the one before it has ended (or
        :attr:`timeout` seconds passed: the verdict at the end decides)."""
        rng = random.Random(f"user:{self.seed}:{conversation.scope}")
        for question in conversation.questions:
            await asyncio.sleep(rng.uniform(0.0, 0.6))
            asked = self.ask(question)
            if not await self.wait_end(asked):
                self.timed_out += 1

    async def wait_end(self, asked: Asked, within: float | None = None) -> bool:
        """Wait until ``asked`` has ended (an answer or a clear message); False after
        ``within`` (default :attr:`timeout`) seconds."""
        deadline = time.monotonic() + (within or self.timeout)
        while time.monotonic() < deadline:
            if any(_ends(m, asked.question) for m in messages_of(self.telegram, asked)):
                return True
            await asyncio.sleep(0.05)
        return False

    async def strangers(self, users: Sequence[int], group: int, stop: asyncio.Event) -> None:
        """Until ``stop``: each stranger writes in private, and mentions the bot in ``group``,
        every 0.4–1.2 s."""
        rng = random.Random(f"strangers:{self.seed}")
        n = 0
        while not stop.is_set():
            user = users[n % len(users)]
            text = f"S:{user}:{n} let me in?"
            message = self.telegram.push_text(chat_id=user, user_id=user, text=text)
            self.stranger_messages.append((user, message))
            message = self.telegram.push_text(
                chat_id=group,
                user_id=user,
                text=f"{MENTION} {text} (in the group)",
                chat_type="supergroup",
            )
            self.stranger_messages.append((group, message))
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0.4, 1.2))


def messages_of(telegram: FakeTelegram, asked: Asked) -> list[StoredMessage]:
    """The bot's messages in ``asked``'s chat that :func:`owner` gives to ``asked``."""
    chat = telegram.messages.get(asked.question.chat_id, {})
    questions = _questions_in(telegram, asked.question.chat_id)
    return [
        m
        for m in list(chat.values())
        if m.from_bot
        and owner(chat, m, questions, private=not asked.question.group) == asked.message_id
    ]


def _questions_in(telegram: FakeTelegram, chat_id: int) -> list[int]:
    return sorted(
        m.message_id for m in telegram.messages.get(chat_id, {}).values() if not m.from_bot
    )


def owner(
    chat: Mapping[int, StoredMessage],
    message: StoredMessage,
    questions: Sequence[int],
    *,
    private: bool,
) -> int | None:
    """The id of the user's message ``message`` (a bot message) answers: the one it replies
    to (through the bot's own messages it replies to), else in a private chat the latest
    user message before it; ``None`` when there is none."""
    seen = set()
    while message.reply_to is not None and message.reply_to not in seen:
        seen.add(message.reply_to)
        target = chat.get(message.reply_to)
        if target is None or not target.from_bot:
            return message.reply_to
        message = target
    if not private:
        return None
    before = [q for q in questions if q < message.message_id]
    return before[-1] if before else None


# ----- the verdict --------------------------------------------------------------------------

ENDS = ("answer", "interrupted", "restart mark", "restart notice", "error notice", "unavailable")
STORED = ("answer", "interrupted", "restart mark", "restart notice")
"""The ends whose exchange the bot stores (a restart notice: the question, kept with the
placeholder or the partial answer, so that /retry works)."""


def kind_of(text: str, question: Question) -> str:
    """What a bot message answering ``question`` is: one of :data:`ENDS`, or ``"frame"``
    (a partial text left behind: not an end), ``"foreign"`` (another question's answer)."""
    if text == final_text(question.answer):
        return "answer"
    if text == RESTART_NOTICE:
        return "restart notice"
    if RESTART_MARK in text:
        return "restart mark"
    if text == UNAVAILABLE:
        return "unavailable"
    if any(text.startswith(head) or f"\n{head}" in text for head in ERROR_HEADS):
        return "error notice"
    if INTERRUPTED in text:
        return "interrupted"
    if re.search(r"A:[a-z0-9]+q\d+ ", text) and not text.startswith(f"A:{question.key} "):
        return "foreign"
    return "frame"


def _ends(message: StoredMessage, question: Question) -> bool:
    return kind_of(message.text, question) in ENDS


@dataclass
class Verdict:
    """The end of every question asked in a run, and what went wrong."""

    ends: dict[str, list[str]] = field(default_factory=dict)  # question key → its ends
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)  # more than one end
    duplicates: list[str] = field(default_factory=list)  # an answer shown twice
    foreign: list[str] = field(default_factory=list)
    unowned: list[tuple[int, str]] = field(default_factory=list)  # (chat, text)

    def count(self, *kinds: str) -> int:
        """Questions whose one end is among ``kinds``."""
        return sum(len(e) == 1 and e[0] in kinds for e in self.ends.values())


def judge(telegram: FakeTelegram, asked: Sequence[Asked], strangers: Iterable[int]) -> Verdict:
    """Read the end of each question in ``asked`` from the fake Bot API's chats (see the
    module docstring); bot messages in chats of ``strangers`` are not judged here."""
    verdict = Verdict()
    by_message = {(a.question.chat_id, a.message_id): a for a in asked}
    given: dict[str, list[StoredMessage]] = {a.question.key: [] for a in asked}
    skip = set(strangers)
    for chat_id in {a.question.chat_id for a in asked}:
        chat = telegram.messages.get(chat_id, {})
        questions = _questions_in(telegram, chat_id)
        for message in list(chat.values()):
            if not message.from_bot or chat_id in skip:
                continue
            target = owner(chat, message, questions, private=chat_id > 0)
            mine = by_message.get((chat_id, target)) if target is not None else None
            if mine is None:
                if target is None or chat_id > 0:  # replies to strangers' messages: elsewhere
                    verdict.unowned.append((chat_id, message.text))
                continue
            given[mine.question.key].append(message)
    for item in asked:
        question = item.question
        kinds = [kind_of(m.text, question) for m in given[question.key]]
        ends = [k for k in kinds if k in ENDS]
        verdict.ends[question.key] = ends
        if not ends:
            verdict.lost.append(question.key)
        elif len(ends) > 1:
            verdict.doubled.append(question.key)
        if kinds.count("answer") > 1:
            verdict.duplicates.append(question.key)
        if "foreign" in kinds:
            verdict.foreign.append(question.key)
    answers = collections.Counter(
        m.text
        for chat in telegram.messages.values()
        for m in chat.values()
        if m.from_bot and m.text.startswith("A:")
    )
    verdict.duplicates += [
        text.split()[0][2:]
        for text, n in answers.items()
        if n > 1 and text.split()[0][2:] not in verdict.duplicates
    ]
    return verdict


async def history_problems(
    store: ConversationStore, asked: Sequence[Asked], verdict: Verdict
) -> list[str]:
    """What differs between each conversation's stored history and the exchanges the
    users saw end with a stored end (:data:`STORED`), in order, each once: the user
    message as asked; a full answer stored whole, a cut one as a prefix of the answer
    marked interrupted (or the restart placeholder); after a restart notice, the answer
    as far as it came, whole and unmarked too."""
    problems = []
    by_scope: dict[str, list[Question]] = collections.defaultdict(list)
    for item in asked:
        by_scope[item.question.scope].append(item.question)
    for scope, questions in by_scope.items():
        expected = [q for q in questions if any(e in STORED for e in verdict.ends[q.key])]
        history = await store.load_history(scope)
        pairs = [(history[i], history[i + 1]) for i in range(0, len(history) - 1, 2)]
        if len(history) % 2 or [u.content for u, _ in pairs] != [q.content for q in expected]:
            problems.append(
                f"{scope}: stored {[m.content[:12] for m in history]}, "
                f"expected {[q.content[:12] for q in expected]}"
            )
            continue
        for (user, answer), question in zip(pairs, expected, strict=True):
            ends = verdict.ends[question.key]
            if user.role != "user" or answer.role != "assistant":
                problems.append(f"{scope}: roles {user.role}, {answer.role}")
            elif ends == ["answer"]:
                if answer.content != question.answer or answer.interrupted:
                    problems.append(f"{question.key}: stored {answer.content!r}")
            elif not (
                answer.content == RESTART_PLACEHOLDER
                or question.answer.startswith(answer.content.rstrip())
            ) or not (answer.interrupted or ends == ["restart notice"]):
                # A reply given up at a shutdown after its answer was complete is stored
                # whole (the turn saves while the final frame goes out): the notice asks
                # for /retry, which answers that question again.
                problems.append(f"{question.key} ({ends}): stored {answer.content!r}")
    return problems


# ----- the report ---------------------------------------------------------------------------

COLUMNS = (
    "scenario",
    "questions sent",
    "answers delivered",
    "error notices",
    "duplicates",
    "lost",
    "429s seen",
    "seconds",
)


@dataclass
class Row:
    """One line of the chaos table."""

    scenario: str
    sent: int
    answers: int
    notices: int
    duplicates: int
    lost: int
    throttled: str
    seconds: float
    detail: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row's cells, in :data:`COLUMNS` order."""
        return (
            self.scenario,
            str(self.sent),
            str(self.answers),
            str(self.notices),
            str(self.duplicates),
            str(self.lost),
            self.throttled,
            f"{self.seconds:.1f}",
        )


def row_of(
    scenario: str,
    verdict: Verdict,
    run: Run,
    provider: ProviderChaos,
    chaos: TelegramChaos,
    seconds: float,
) -> Row:
    """The table row of a run: answers are full or interrupted answers, notices every other
    end; 429s seen from Telegram and from the provider. Its detail counts each kind of end,
    of provider reply and of Telegram fault, and the questions whose end a user waited
    longer for than :attr:`Run.timeout`."""
    tg_429 = sum(c.error_code == 429 for c in run.telegram.calls)

    def listed(counts: Mapping[str, int]) -> str:
        return ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.items()))

    ends = collections.Counter(e[0] for e in verdict.ends.values() if len(e) == 1)
    detail = (
        f"ends ({listed(ends)}); provider replies ({listed(provider.served)}); "
        f"Telegram faults ({listed(chaos.counts)}); waited out: {run.timed_out}"
    )
    return Row(
        scenario,
        len(verdict.ends),
        verdict.count("answer", "interrupted"),
        verdict.count("restart mark", "restart notice", "error notice", "unavailable"),
        len(verdict.duplicates),
        len(verdict.lost),
        f"tg {tg_429} + ai {provider.served['429']}",
        seconds,
        detail=detail,
    )


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, each row's detail below it."""
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    details = [f"  {row.scenario}: {row.detail}" for row in rows if row.detail]
    return "\n".join(lines + details)


ROWS: list[Row] = []
"""The rows of this session's chaos runs, printed at its end (tests/chaos/conftest.py)."""


# ----- the bot as a process -----------------------------------------------------------------


def process_env(world: World, home: Path, settings: Mapping[str, object]) -> dict[str, str]:
    """The environment of ``python -m bot`` against ``world``'s fakes, plus ``settings``
    (:meth:`tests.e2e.conftest.World.process_env`)."""
    return world.process_env(home, settings)


@dataclasses.dataclass
class BotProcess:
    """A ``python -m bot`` process; its output goes to ``log`` (a file: a pipe left unread
    would block the process once full)."""

    process: asyncio.subprocess.Process
    log: Path

    @property
    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    async def stop(self, sig: signal.Signals = signal.SIGTERM, *, within: float) -> float:
        """Send ``sig``; return the seconds until it exited (``TimeoutError`` after ``within``)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        await asyncio.wait_for(self.process.wait(), within)
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def bot_process(world: World, env: Mapping[str, str], log: Path) -> AsyncIterator[BotProcess]:
    """Run ``python -m bot`` with ``env`` until it polls (its ``deleteWebhook``, then 0.3 s
    for its first long poll to connect, as tests/e2e/test_deploy_e2e.py waits); killed if
    the block leaves it running."""
    polls = len(world.telegram.calls_of("deleteWebhook"))
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=dict(env),
            cwd=str(Path(__file__).parents[2]),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    running = BotProcess(process, log)
    try:
        deadline = time.monotonic() + 20
        while len(world.telegram.calls_of("deleteWebhook")) <= polls:
            assert process.returncode is None, running.output
            assert time.monotonic() < deadline, "the bot process did not start polling"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def explain(telegram: FakeTelegram, asked: Sequence[Asked], keys: Iterable[str]) -> str:
    """For a failure message: each question of ``keys``, and every Bot API call into its
    chat from that question on (method, error, the message it names, the text's start)."""
    lines = []
    by_key = {a.question.key: a for a in asked}
    for key in keys:
        item = by_key[key]
        lines.append(f"{key}: message {item.message_id} in chat {item.question.chat_id}")
        for call in telegram.calls:
            params = call.params
            if str(params.get("chat_id")) != str(item.question.chat_id) or call.at < item.at:
                continue
            result = call.result if isinstance(call.result, dict) else {}
            target = params.get("message_id") or result.get("message_id")
            text = str(params.get("text") or "")[:50]
            lines.append(
                f"  +{call.at - item.at:6.2f}s {call.method} {call.error_code or 'ok'} "
                f"msg={target} reply={params.get('reply_parameters')} {text!r}"
            )
    return "\n".join(lines)
