"""Turning one scenario's records into figures, checking the targets, printing the table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from bench.answers import make_answer
from bench.fakes import Arrival
from bench.metrics import (
    TEXT_METHODS,
    Reply,
    coverage_targets,
    expected_messages,
    fair_share,
    holds_each_once,
    measure_replies,
    percentile,
    summary,
)
from bot.scheduler.limits import TELEGRAM_LIMITS

__all__ = ["ScenarioFigures", "analyse", "format_table", "targets"]

MIB = 1024.0  # KiB per MiB (ru_maxrss is in KiB on Linux)


@dataclass(frozen=True)
class _Answer:
    """One answer variant with its expected rendering and per-chunk coverage targets."""

    text: str
    final_text: str
    expected: list[tuple[str, list[dict[str, Any]]]]
    targets: list[int]


@cache
def _answer(variant: int, tokens: int, chars_per_token: int, rich: bool) -> _Answer:
    text = make_answer(variant, tokens=tokens, chars_per_token=chars_per_token)
    final_text, expected = expected_messages(text, rich=rich)
    targets = coverage_targets(
        text, chars_per_token=chars_per_token, final_text=final_text, rich=rich
    )
    return _Answer(text, final_text, expected, targets)


ScenarioFigures = dict[str, Any]


def _replies(
    arrivals: Sequence[Arrival],
    records: dict[str, Any],
    *,
    tokens: int,
    chars_per_token: int,
    rich: bool,
) -> list[Reply]:
    pushes = {p["key"]: p for p in records["pushes"]}
    replies = []
    for arrival in arrivals:
        push = pushes.get(arrival.key)
        if push is None:
            continue
        answer = _answer(arrival.variant, tokens, chars_per_token, rich)
        stream = records["streams"].get(arrival.key, {"times": [], "finished": None})
        replies.append(
            Reply(
                key=arrival.key,
                chat_id=arrival.chat_id,
                message_id=push["message_id"],
                pushed_at=push["at"],
                final_text=answer.final_text,
                expected=answer.expected,
                chunk_times=stream["times"],
                targets=answer.targets,
                finished=stream["finished"],
                rich=rich,
            )
        )
    return replies


def _chats_holding_each_once(
    arrivals: Sequence[Arrival],
    records: dict[str, Any],
    *,
    tokens: int,
    chars_per_token: int,
    rich: bool,
) -> int:
    """How many chats end holding exactly their replies' expected messages, each once
    (:func:`bench.metrics.holds_each_once`, from the fake server's stored messages)."""
    expected: dict[int, list[list[tuple[str, list[dict[str, Any]]]]]] = {}
    for arrival in arrivals:
        answer = _answer(arrival.variant, tokens, chars_per_token, rich)
        expected.setdefault(arrival.chat_id, []).append(answer.expected)
    stored = records.get("stored", {})
    return sum(
        holds_each_once(stored.get(str(chat_id), []), parts, rich=rich)
        for chat_id, parts in expected.items()
    )


def _provider_lateness(records: dict[str, Any], rate: float) -> list[float]:
    """Seconds each chunk was released after its scheduled time (the fake's own health)."""
    late = []
    for stream in records["streams"].values():
        late += [at - (stream["start"] + n / rate) for n, at in enumerate(stream["times"])]
    return late


def analyse(
    arrivals: Sequence[Arrival],
    records: dict[str, Any],
    bot: dict[str, Any],
    *,
    tokens: int,
    chars_per_token: int,
    rate: float,
    rich: bool = False,
) -> ScenarioFigures:
    """Return the figures of one scenario (see :mod:`bench.metrics` for the definitions);
    ``rich``: the users chose rich messages, measured as such."""
    replies = _replies(arrivals, records, tokens=tokens, chars_per_token=chars_per_token, rich=rich)
    if len(replies) < len(arrivals):
        raise RuntimeError(f"only {len(replies)} of {len(arrivals)} messages were pushed")
    outcomes = measure_replies(replies, records["calls"])
    spans = [(o.start, o.end) for o in outcomes]
    limits = TELEGRAM_LIMITS
    fractions = []
    for reply, outcome in zip(replies, outcomes, strict=True):
        chat_spans = [s for r, s in zip(replies, spans, strict=True) if r.chat_id == reply.chat_id]
        allowed = fair_share(
            outcome, chat_id=reply.chat_id, chat_spans=chat_spans, all_spans=spans, limits=limits
        )
        fractions.append(outcome.updates / allowed)
    calls = records["calls"]
    frames = sum(1 for c in calls if c["method"] in TEXT_METHODS)
    chunks = sum(len(s["times"]) for s in records["streams"].values())
    cpu_ms = bot["cpu_s"] * 1000.0
    n = len(arrivals)
    return {
        "format": "rich" if rich else "classic",
        "replies": n,
        "answered": bot["answered"],
        "timed_out": bot["timed_out"],
        "too_many_requests": sum(1 for c in calls if c["error_code"] == 429),
        "too_many_requests_by_level": records["violated"],
        "first_feedback_s": summary([_seen(o.first_feedback) for o in outcomes]),
        "first_answer_text_s": summary([_seen(o.first_text) for o in outcomes]),
        "staleness_s": summary([s for o in outcomes for s in o.staleness]),
        "final_text_s": summary([_seen(o.final) for o in outcomes]),
        "final_text_missing": sum(o.final is None for o in outcomes),
        "final_text_exact": sum(o.exact for o in outcomes),
        "chats": len({a.chat_id for a in arrivals}),
        "chats_holding_each_once": _chats_holding_each_once(
            arrivals, records, tokens=tokens, chars_per_token=chars_per_token, rich=rich
        ),
        "calls_per_reply": len(calls) / n,
        "calls_by_method": _by_method(calls),
        "updates_per_reply": summary([float(o.updates) for o in outcomes]),
        "fair_share_fraction": summary(fractions),
        "chunks": chunks,
        "frames": frames,
        "cpu_ms": cpu_ms,
        "cpu_ms_per_1000_chunks": cpu_ms / chunks * 1000.0 if chunks else math.nan,
        "cpu_ms_per_frame": cpu_ms / frames if frames else math.nan,
        "loop_lag_p99_ms": percentile(bot["lag_s"], 99) * 1000.0,
        "loop_lag_max_ms": max(bot["lag_s"], default=math.nan) * 1000.0,
        "peak_rss_mib": bot["peak_rss_kib"] / MIB,
        "wall_s": bot["wall_s"],
        "provider_late_p99_ms": percentile(_provider_lateness(records, rate), 99) * 1000.0,
        "fakes_cpu_s": records["cpu_s"],
        "scheduler": bot["scheduler"],
    }


def _seen(seconds: float | None) -> float:
    """A latency, or ``inf`` for an event that never happened (it counts as missed)."""
    return math.inf if seconds is None else seconds


def _by_method(calls: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call["method"]] = counts.get(call["method"], 0) + 1
    return dict(sorted(counts.items()))


def targets(name: str, figures: ScenarioFigures, *, single: str, many: str) -> dict[str, bool]:
    """The issue's targets that apply to scenario ``name`` → met or not.

    ``single`` names the one-private-chat scenario, ``many`` the 200-chat one.
    """
    checks = {
        "0 x 429": figures["too_many_requests"] == 0,
        "final text p95 <= 2 s": figures["final_text_s"]["p95"] <= 2.0,
        "every final text exact": figures["final_text_exact"] == figures["replies"],
        "every chat holds each answer once": figures["chats_holding_each_once"] == figures["chats"],
    }
    if name == single:
        checks["first feedback <= 0.3 s"] = figures["first_feedback_s"]["max"] <= 0.3
        checks["first answer text <= 0.5 s"] = figures["first_answer_text_s"]["max"] <= 0.5
    if name == many:
        checks["loop lag p99 <= 50 ms"] = figures["loop_lag_p99_ms"] <= 50.0
        checks["CPU <= 1 ms per frame"] = figures["cpu_ms_per_frame"] <= 1.0
    return checks


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("replies (final text exact)", "final_text_exact", "exact"),
    ("chats holding each answer once", "chats_holding_each_once", "chats"),
    ("429 responses", "too_many_requests", "int"),
    ("first feedback s (median / p95)", "first_feedback_s", "mp"),
    ("first answer text s (median / p95)", "first_answer_text_s", "mp"),
    ("staleness s (median / p95)", "staleness_s", "mp"),
    ("final text s after finish (median / p95)", "final_text_s", "mp"),
    ("Telegram calls per reply", "calls_per_reply", "f1"),
    ("updates per reply (median)", "updates_per_reply", "median"),
    ("updates / fair share (median / p95)", "fair_share_fraction", "mp"),
    ("CPU ms per 1,000 chunks", "cpu_ms_per_1000_chunks", "f1"),
    ("CPU ms per frame sent", "cpu_ms_per_frame", "f2"),
    ("event-loop lag p99 ms", "loop_lag_p99_ms", "f1"),
    ("peak RSS MiB", "peak_rss_mib", "f0"),
    ("chunks / frames", "chunks", "chunks"),
    ("fake provider lateness p99 ms", "provider_late_p99_ms", "f1"),
)


def _cell(figures: ScenarioFigures, key: str, style: str) -> str:
    value = figures[key]
    if style == "exact":
        return f"{figures['replies']} ({value})"
    if style == "chats":
        return f"{value} / {figures['chats']}"
    if style == "mp":
        return f"{value['median']:.2f} / {value['p95']:.2f}"
    if style == "median":
        return f"{value['median']:.1f}"
    if style == "chunks":
        return f"{value} / {figures['frames']}"
    if style == "int":
        return str(value)
    return f"{value:.{style[1:]}f}"


def format_table(results: dict[str, ScenarioFigures]) -> str:
    """A plain-text table: one row per metric, one column per scenario."""
    names = list(results)
    rows = [["metric", *names]]
    rows += [
        [label, *(_cell(results[n], key, style) for n in names)] for label, key, style in _ROWS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
