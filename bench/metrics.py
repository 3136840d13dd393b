"""What the benchmark measures, computed from the fake servers' records after a run.

Definitions (all times are ``time.monotonic()`` seconds, stamped by the fake servers):

- **push**: the fake Bot API queued the user's message as an update.
- **visible text of a reply** at time ``τ``: after replaying every *accepted* call up
  to ``τ``, the texts of the reply's messages in order, followed by its draft's text
  when a ``sendMessageDraft`` came after the reply's last ``sendMessage`` (sending a
  message ends the draft). Messages are attributed to replies by ``reply_parameters``
  (the first message), by ``message_id`` (edits), and — for a continuation message
  of a long reply in a group, which carries neither — by which reply's final text it
  continues.
- **coverage** of a text: the length of its common prefix with ``F``, the reply's
  final rendered text (:func:`bot.render.markdown.compose_reply` of the whole answer,
  ``partial=False``). For provider chunk ``k`` (released at ``t_k``), the needed
  coverage ``c_k`` is the coverage of ``compose_reply(answer[:chunks 0..k],
  partial=True)`` — what the bot would show if it rendered exactly that prefix. So
  ``c_k`` is "the provider's text so far, as Telegram would show it".
- **rich replies** (the user chose the rich format, Bot API 10.1+): the same, with
  ``sendRichMessage`` / ``sendRichMessageDraft`` / ``editMessageText(rich_message=…)``
  in place of the classic calls and each message's text its ``rich_message.markdown``.
  ``F`` is :func:`bot.render.rich.compose_rich_reply` of the whole answer, the expected
  messages :func:`bot.render.rich.render_rich_reply`'s parts (entities: none; each must
  be a rich message), ``c_k`` comes from ``compose_rich_reply(…, partial=True)``, and a
  reply's messages (and draft) are joined with a blank line, as the splitter cuts
  between blocks.
- **first feedback**: first accepted call after the push that the user sees — a
  draft of the reply (the empty "Thinking…" one counts), a message of it, or a chat
  action in its chat — minus the push.
- **first answer text**: for the first chunk with ``c_k > 0``, the first time the
  reply's coverage reaches ``c_k``, minus ``t_k``.
- **staleness**: for every chunk that adds visible text (``c_k > c_{k-1}``), the
  first time the coverage reaches ``c_k``, minus ``t_k`` (0 if already covered).
- **final text latency**: the time from which the reply's messages equal the
  expected final messages (text *and* entities of :func:`bot.render.markdown.split_rendered`
  of ``F``) and stay so, minus the provider's finish (the ``finish_reason`` chunk).
  **exact**: the messages equal the expected ones at the end of the run (in rich
  mode: all rich messages).
- **fair share**: a reply lasting ``D`` s (push to final text) may make, per level,
  ``(rate * D + burst) / n`` updates, where ``n`` is the mean number of replies
  running at that level during it (per chat / per group: in its chat; global: all);
  at the group level ``rate * D + burst`` is at most 20 per 60 s window the reply
  touches; the share is the minimum over levels, with Telegram's limits. **Updates**
  are its accepted ``sendMessage`` / ``editMessageText`` / ``sendMessageDraft`` calls.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.render.markdown import ReplyStrings, compose_reply, split_rendered
from bot.render.rich import compose_rich_reply, render_rich_reply
from bot.scheduler.limits import Limits

__all__ = [
    "DRAFT_METHODS",
    "RICH_JOINER",
    "TEXT_METHODS",
    "Reply",
    "ReplyOutcome",
    "common_prefix",
    "coverage_targets",
    "expected_messages",
    "fair_share",
    "holds_each_once",
    "measure_replies",
    "percentile",
    "summary",
]

STRINGS = ReplyStrings()  # answers carry no reasoning, so the strings never show
TEXT_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "sendMessageDraft",
        "sendRichMessage",
        "sendRichMessageDraft",
    }
)
DRAFT_METHODS = frozenset({"sendMessageDraft", "sendRichMessageDraft"})
RICH_JOINER = "\n\n"
"""Between a rich reply's messages when their texts are read as one (module docstring)."""

Entities = list[dict[str, Any]]


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0–100) by linear interpolation; NaN when empty.

    ``math.inf`` stands for "never happened" and makes any percentile that touches it inf.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    if fraction == 0 or ordered[high] == ordered[low]:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summary(values: Sequence[float]) -> dict[str, float]:
    """Return ``{"median", "p95", "max", "n"}`` of ``values`` (NaN figures when empty)."""
    return {
        "median": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else math.nan,
        "n": len(values),
    }


def common_prefix(a: str, b: str) -> int:
    """Return the length of the longest common prefix of ``a`` and ``b`` (C-speed compares)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def expected_messages(answer: str, *, rich: bool = False) -> tuple[str, list[tuple[str, Entities]]]:
    """Return ``F`` (the whole final rendered text) and the expected (text, entities) messages.

    ``rich``: as rich messages (their Markdown, no entities; module docstring).
    """
    if rich:
        whole_rich = compose_rich_reply(answer, partial=False, strings=STRINGS)
        parts = render_rich_reply(answer, partial=False, strings=STRINGS)
        return whole_rich, [(part, []) for part in parts]
    whole = compose_reply(answer, partial=False, strings=STRINGS)
    rendered = [(p.text, [e.to_dict() for e in p.entities]) for p in split_rendered(whole)]
    return whole.text, rendered


def coverage_targets(
    answer: str, *, chars_per_token: int, final_text: str, rich: bool = False
) -> list[int]:
    """Return ``c_k`` for every chunk ``k`` of ``answer`` (see the module docstring);
    ``rich``: of the rich rendering."""
    chunks = math.ceil(len(answer) / chars_per_token)
    targets = []
    for k in range(chunks):
        prefix = answer[: (k + 1) * chars_per_token]
        if rich:
            shown = compose_rich_reply(prefix, partial=True, strings=STRINGS)
        else:
            shown = compose_reply(prefix, partial=True, strings=STRINGS).text
        targets.append(common_prefix(shown, final_text))
    return targets


@dataclass
class Reply:
    """One reply under measurement, and what the replay of the calls found for it.

    ``rich``: the reply is measured as rich messages (module docstring).
    """

    key: str
    chat_id: int
    message_id: int
    pushed_at: float
    final_text: str
    expected: list[tuple[str, Entities]]
    chunk_times: list[float]
    targets: list[int]
    finished: float | None
    rich: bool = False
    messages: list[list[Any]] = field(default_factory=list)  # [id, text, entities, rich]
    draft: str | None = None
    feedback_at: float | None = None
    updates: int = 0
    times: list[float] = field(default_factory=list)
    coverage: list[int] = field(default_factory=list)  # running maximum per event
    exact: list[bool] = field(default_factory=list)

    @property
    def joiner(self) -> str:
        """What stands between two of its messages when they are read as one text."""
        return RICH_JOINER if self.rich else ""

    def shown(self) -> str:
        """The text of the reply's messages, joined."""
        return self.joiner.join(m[1] for m in self.messages)

    def visible(self) -> str:
        """The reply's visible text now: its messages, then its live draft."""
        texts = [m[1] for m in self.messages]
        if self.draft is not None:
            texts.append(self.draft)
        return self.joiner.join(texts)

    def note(self, at: float) -> None:
        """Record the state after an accepted call at ``at``."""
        if self.feedback_at is None:
            self.feedback_at = at
        covered = common_prefix(self.visible(), self.final_text)
        self.times.append(at)
        self.coverage.append(max(covered, self.coverage[-1] if self.coverage else 0))
        state = [(m[1], m[2]) for m in self.messages]
        kinds = all(m[3] == self.rich for m in self.messages)
        self.exact.append(self.draft is None and kinds and state == self.expected)


@dataclass
class ReplyOutcome:
    """The figures of one reply (seconds; ``None`` when the event never happened)."""

    first_feedback: float | None
    first_text: float | None
    staleness: list[float]
    final: float | None
    exact: bool
    updates: int
    start: float
    end: float


def _continued(candidates: Iterable[Reply], text: str) -> Reply | None:
    """The reply whose final text continues with ``text`` after its messages so far."""
    best, best_len = None, -1
    for reply in candidates:
        if not reply.messages:
            continue
        shown = len(reply.shown()) + len(reply.joiner)
        length = common_prefix(text, reply.final_text[shown:])
        if length > best_len:
            best, best_len = reply, length
    return best


def _apply(call: dict[str, Any], candidates: list[Reply], owners: dict[int, Reply]) -> None:
    """Replay one accepted call onto the replies of its chat."""
    method, at = call["method"], call["at"]
    rich = bool(call.get("rich"))
    if method == "sendChatAction":
        for waiting in candidates:
            if waiting.feedback_at is None:
                waiting.feedback_at = at
        return
    reply: Reply | None
    if method == "editMessageText":
        reply = owners.get(int(call["message_id"]))
        if reply is None:
            return
        for message in reply.messages:
            if message[0] == call["message_id"]:
                message[1], message[2], message[3] = call["text"], call["entities"], rich
    elif method in DRAFT_METHODS:
        reply = candidates[-1] if candidates else None
        if reply is None:
            return
        reply.draft = call["text"]
    else:
        by_reply = [r for r in candidates if r.message_id == call["reply_to"]]
        reply = by_reply[0] if by_reply else _continued(candidates, call["text"])
        if reply is None:
            return
        reply.messages.append([call["message_id"], call["text"], call["entities"], rich])
        owners[int(call["message_id"])] = reply
        reply.draft = None
    reply.updates += 1
    reply.note(at)


def _outcome(reply: Reply) -> ReplyOutcome:
    """Turn one replayed reply into its figures."""
    first_feedback = None if reply.feedback_at is None else reply.feedback_at - reply.pushed_at
    staleness: list[float] = []
    first_text = None
    previous = 0
    for at, needed in zip(reply.chunk_times, reply.targets, strict=False):
        if needed <= previous:
            continue
        previous = needed
        index = bisect.bisect_left(reply.coverage, needed)
        if index == len(reply.coverage):
            continue
        lag = max(0.0, reply.times[index] - at)
        staleness.append(lag)
        if first_text is None:
            first_text = lag
    final = None
    exact = bool(reply.exact) and reply.exact[-1]
    if exact and reply.finished is not None:
        index = len(reply.exact)
        while index > 0 and reply.exact[index - 1]:
            index -= 1
        final = max(0.0, reply.times[index] - reply.finished)
    end = reply.times[-1] if reply.times else reply.pushed_at
    return ReplyOutcome(
        first_feedback, first_text, staleness, final, exact, reply.updates, reply.pushed_at, end
    )


def measure_replies(replies: list[Reply], calls: list[dict[str, Any]]) -> list[ReplyOutcome]:
    """Replay the accepted ``calls`` (fake server records) onto ``replies``; return the figures.

    A call belongs to a reply in its chat pushed before the call; in a chat with
    several replies, see the module docstring for the attribution.
    """
    by_chat: dict[int, list[Reply]] = {}
    for reply in sorted(replies, key=lambda r: r.pushed_at):
        by_chat.setdefault(reply.chat_id, []).append(reply)
    owners: dict[int, Reply] = {}
    for call in sorted(calls, key=lambda c: c["at"]):
        if call["error_code"] is not None:
            continue
        chat = by_chat.get(call["chat_id"], [])
        candidates = [r for r in chat if r.pushed_at <= call["at"]]
        _apply(call, candidates, owners)
    return [_outcome(reply) for reply in replies]


def holds_each_once(
    stored: Sequence[dict[str, Any]],
    expected: Iterable[Sequence[tuple[str, Entities]]],
    *,
    rich: bool = False,
) -> bool:
    """Whether a chat's messages from the bot, as the fake server holds them at the end
    (``stored``: dicts with ``text``, ``entities`` and ``rich``), are exactly the expected
    messages of the chat's replies (``expected``: one list per reply), each once and
    nothing else, all rich (``rich``) or all classic. Order is not compared: replies in
    a group interleave; the replay checks each reply's order."""
    got = sorted(
        (m["text"], json.dumps(m["entities"], sort_keys=True), bool(m["rich"])) for m in stored
    )
    want = sorted(
        (text, json.dumps(entities, sort_keys=True), rich)
        for parts in expected
        for text, entities in parts
    )
    return got == want


def _mean_concurrency(span: tuple[float, float], spans: Iterable[tuple[float, float]]) -> float:
    start, end = span
    duration = max(end - start, 1e-9)
    overlap = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
    return max(1.0, overlap / duration)


def fair_share(
    outcome: ReplyOutcome,
    *,
    chat_id: int,
    chat_spans: list[tuple[float, float]],
    all_spans: list[tuple[float, float]],
    limits: Limits,
) -> float:
    """Return the updates ``outcome``'s reply may make under ``limits`` (module docstring).

    ``chat_spans``: (start, end) of every reply in its chat (itself included);
    ``all_spans``: of every reply.
    """
    span = (outcome.start, outcome.end)
    duration = span[1] - span[0]
    in_chat = _mean_concurrency(span, chat_spans)
    shares = [
        (limits.per_chat_per_second * duration + limits.per_chat_burst) / in_chat,
        (limits.global_per_second * duration + limits.global_burst)
        / _mean_concurrency(span, all_spans),
    ]
    if chat_id < 0:
        group_rate = limits.per_group_per_minute / 60.0
        windows = math.ceil(max(duration, 1e-9) / 60.0)  # 60 s windows the reply touches
        group = min(
            group_rate * duration + limits.per_group_burst, limits.per_group_per_minute * windows
        )
        shares.append(group / in_chat)
    return min(shares)
