"""Streaming benchmark: the real bot against a flood-limited fake Telegram and a paced provider.

Run from the repository root::

    python -m bench.streaming                      # all three scenarios, both formats (~5 min)
    python -m bench.streaming --format classic     # all three, classic messages only
    python -m bench.streaming --scenario chats --format rich   # one scenario, rich messages
    python -m bench.streaming --scenario private --tokens 200 --rate 100   # a quick look

What runs (each scenario in fresh processes):

- the fake servers (:mod:`bench.fakes`) in one process: a fake Bot API that answers 429
  with ``retry_after`` as Telegram does (:mod:`bench.flood`: per chat, per group and
  global limits on ``sendMessage``, ``editMessageText``, ``sendMessageDraft``,
  ``sendChatAction``, ``sendRichMessage`` and ``sendRichMessageDraft``), and a fake
  OpenAI-compatible provider streaming each answer
  at ``--rate`` chunks per second, ``--chars-per-token`` characters per chunk;
- the bot in another process (:mod:`bench.driver`): ``build_application`` with the
  default streaming settings, polling the fake Bot API — updates → handlers →
  ``ConversationService`` → ``TelegramReply`` → ``SendScheduler`` → Bot API calls.

Scenarios: ``private`` — one private chat; ``chats`` — ``--chats`` (200) private
chats; ``groups`` — ``--groups`` (10) groups with ``--per-group`` (5) replies each;
``strict`` (not in ``all``) — the groups again against a Telegram stricter than its
published limits: per group a burst of 3, then one call per 3 to 3.9 s, drawn call by
call (``--group-burst 3 --group-jitter 0.3``); its target is at most one 429 per group
(the bot learns the pace from it: :mod:`bot.scheduler.adapt`), not none.
Users' messages arrive evenly over ``--spread`` seconds (one message: at once). All
answers are Markdown with Chinese text, emoji, code blocks and long lists
(:mod:`bench.answers`), ``--tokens`` chunks long.

Formats (``--format``): ``classic`` — the users made no format choice, so answers are
``sendMessage`` text with entities (two messages each at the default size); ``rich`` —
every user chose rich messages (Bot API 10.1+; :func:`bench.driver.choose_format`), so
answers are ``sendRichMessage`` Markdown (one message each: a rich message holds 32,768
characters); ``both`` runs each scenario in both, classic first. The default is
``both`` for ``--scenario all`` and ``classic`` for a single scenario. A rich run's
column and JSON key are the scenario's name with ``-rich``.

Output: a table, then one JSON object (also written to ``--json`` if given). The
metrics are defined in :mod:`bench.metrics`; CPU time, loop lag and peak RSS are the
bot process's own (the fakes run elsewhere). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.driver import FORMATS, NETWORKS, run_bot
from bench.fake_telegram import BOT_USERNAME
from bench.fakes import Arrival, serve_fakes
from bench.report import analyse, format_table, targets
from bot.scheduler.limits import TELEGRAM_LIMITS

__all__ = ["SCENARIOS", "build_arrivals", "main", "run_formats", "run_scenario"]

SCENARIOS = ("private", "chats", "groups")
STRICT = "strict"
"""The groups scenario against a stricter, jumpy group limit (see the module docstring)."""
STRICT_FAKE = {"group_burst": 3, "group_jitter": 0.3}
VARIANTS = 5  # distinct answers; the replies in one group always get distinct ones
GROUP_BASE = -1_000_000_000_100
PRIVATE_BASE = 100_001


def build_arrivals(
    scenario: str, *, chats: int, groups: int, per_group: int, spread: float
) -> list[Arrival]:
    """The users' messages of ``scenario``, arriving evenly over ``spread`` seconds.

    Private chat ``i`` gets answer variant ``i % 5``; in a group, user ``u`` gets
    variant ``u % 5``. Group messages mention the bot (privacy mode). Raises
    ``ValueError`` for an unknown scenario.
    """
    if scenario == "private":
        return [_private(0, 0.0)]
    if scenario == "chats":
        return [_private(i, spread * i / chats) for i in range(chats)]
    if scenario not in ("groups", STRICT):
        raise ValueError(f"unknown scenario {scenario!r}")
    total = groups * per_group
    arrivals: list[Arrival] = []
    for user in range(per_group):
        for group in range(groups):
            key = f"question {user} in group {group}: how does streaming work?"
            arrivals.append(
                Arrival(
                    key=key,
                    chat_id=GROUP_BASE - group,
                    user_id=200_001 + group * 100 + user,
                    chat_type="supergroup",
                    text=f"@{BOT_USERNAME} {key}",
                    offset=spread * len(arrivals) / total,
                    variant=user % VARIANTS,
                )
            )
    return arrivals


def _private(index: int, offset: float) -> Arrival:
    key = f"question {index}: how does streaming work?"
    return Arrival(
        key=key,
        chat_id=PRIVATE_BASE + index,
        user_id=PRIVATE_BASE + index,
        chat_type="private",
        text=key,
        offset=offset,
        variant=index % VARIANTS,
    )


def run_formats(args: argparse.Namespace) -> list[str]:
    """The formats to run (``--format``; its default: ``both`` for ``all``, else classic)."""
    chosen = args.format or ("both" if args.scenario == "all" else "classic")
    return list(FORMATS) if chosen == "both" else [chosen]


def run_scenario(
    arrivals: list[Arrival], args: argparse.Namespace, *, reply_format: str = "classic"
) -> dict[str, Any]:
    """Run one scenario in fresh processes (fakes, bot), the answers in ``reply_format``
    (one of :data:`bench.driver.FORMATS`); return its figures."""
    context = multiprocessing.get_context("spawn")
    ports_queue = context.Queue()
    stop = context.Event()
    options = {
        "tokens": args.tokens,
        "chars_per_token": args.chars_per_token,
        "rate": args.rate,
        "jitter": args.jitter,
        "group_burst": args.group_burst,
        "group_jitter": args.group_jitter,
    }
    fakes = context.Process(
        target=serve_fakes, args=(options, ports_queue, stop), name="bench-fakes", daemon=True
    )
    fakes.start()
    try:
        ports = ports_queue.get(timeout=60)
        answer_seconds = args.tokens / args.rate
        timeout = args.spread + answer_seconds * 2 + 120
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            bot = pool.submit(
                run_bot,
                ports,
                arrivals,
                redis_url=args.redis_url,
                timeout=timeout,
                network=args.network,
                reply_format=reply_format,
            ).result()
        response = httpx.get(f"http://127.0.0.1:{ports['control']}/records", timeout=60)
        response.raise_for_status()
        records = response.json()
    finally:
        stop.set()
        fakes.join(10)
        if fakes.is_alive():
            fakes.terminate()
    if args.save_records is not None:
        path = args.save_records.with_name(
            f"{args.save_records.stem}-{arrivals[0].chat_type}-{len(arrivals)}-{reply_format}.json"
        )
        path.write_text(json.dumps({"records": records, "bot": bot}), encoding="utf-8")
    return analyse(
        arrivals,
        records,
        bot,
        tokens=args.tokens,
        chars_per_token=args.chars_per_token,
        rate=args.rate,
        rich=reply_format == "rich",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.streaming", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenario", choices=[*SCENARIOS, STRICT, "all"], default="all")
    parser.add_argument(
        "--format",
        choices=[*FORMATS, "both"],
        default=None,
        help="the answers' format: classic messages, rich messages (Bot API 10.1+) or "
        "both, one run each (default: both for all, else classic)",
    )
    parser.add_argument("--tokens", type=int, default=1500, help="chunks per answer")
    parser.add_argument("--rate", type=float, default=40.0, help="chunks per second")
    parser.add_argument("--chars-per-token", type=int, default=3)
    parser.add_argument("--chats", type=int, default=200, help="private chats (chats)")
    parser.add_argument("--groups", type=int, default=10, help="groups (groups)")
    parser.add_argument("--per-group", type=int, default=5, help="replies per group")
    parser.add_argument(
        "--spread", type=float, default=10.0, help="seconds over which the users' messages arrive"
    )
    parser.add_argument(
        "--group-burst",
        type=int,
        default=TELEGRAM_LIMITS.per_group_burst,
        help="the fake Bot API's per-group burst (a stricter Telegram: 3)",
    )
    parser.add_argument(
        "--group-jitter",
        type=float,
        default=0.0,
        help="the fake Bot API's group pace stretched by up to this fraction per call",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.05,
        help="seconds of delivery jitter the fake Bot API forgives",
    )
    parser.add_argument(
        "--network",
        choices=NETWORKS,
        default=NETWORKS[0],
        help="the provider client's network: its default (aiohttp) or "
        "httpx's own (httpcore), for comparison",
    )
    parser.add_argument(
        "--redis-url", default="memory://", help="the bot's store (default: the embedded one)"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON object here")
    parser.add_argument(
        "--save-records",
        type=Path,
        metavar="PATH",
        help="also write each scenario's raw records (PATH-<kind>-<n>.json)",
    )
    return parser


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: turn them into null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios, print the table and the JSON; 1 if a target was missed."""
    args = _parser().parse_args(argv)
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    results: dict[str, Any] = {}
    checks: dict[str, dict[str, bool]] = {}
    for scenario in scenarios:
        arrivals = build_arrivals(
            scenario,
            chats=args.chats,
            groups=args.groups,
            per_group=args.per_group,
            spread=args.spread,
        )
        fake = STRICT_FAKE if scenario == STRICT else {}
        for reply_format in run_formats(args):
            name = scenario if reply_format == "classic" else f"{scenario}-{reply_format}"
            print(f"running {name}: {len(arrivals)} replies …", file=sys.stderr, flush=True)
            results[name] = run_scenario(
                arrivals, argparse.Namespace(**{**vars(args), **fake}), reply_format=reply_format
            )
            checks[name] = targets(scenario, results[name], single="private", many="chats")
            if scenario == STRICT:  # one 429 per group teaches the scheduler the stricter pace
                del checks[name]["0 x 429"]
                at_most = results[name]["too_many_requests"] <= args.groups
                checks[name]["at most one 429 per group"] = at_most
    names = list(results)
    print(format_table(results))
    for name, scenario_checks in checks.items():
        for label, met in scenario_checks.items():
            print(f"{name}: {label}: {'met' if met else 'MISSED'}")
    report = {
        "command": "python -m bench.streaming "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "scenarios": {name: {**results[name], "targets": checks[name]} for name in names},
    }
    text = json.dumps(_clean(report), ensure_ascii=False, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if all(all(c.values()) for c in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
