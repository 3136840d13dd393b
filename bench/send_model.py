"""How soon can the last messages of many long answers go out under one global send rate?

A model of the 200-chat scenario's end, without the bot: ``replies`` answers end
evenly over ``spread`` seconds; each needs two ``sendMessage`` calls, its first
message (which can go ``lead`` seconds before the answer ends, when the answer has
outgrown one message) and its final one (when it ends, after the first). One send
goes every ``1 / rate`` seconds, always the pending one of the reply that started
first (the scheduler's order for first and final frames). No drafts, no jitter, no
other limit: a lower bound on what any scheduler keeping to ``rate`` can do.

Run from the repository root::

    python -m bench.send_model                 # the table for rates 22–30/s, leads 0–2 s
    python -m bench.send_model --rate 26 --lead 1.5

Prints the median and p95 of "final message sent − answer ended", in seconds.
"""

from __future__ import annotations

import argparse
import heapq
import sys

from bench.metrics import percentile

__all__ = ["final_delays", "main"]


def final_delays(
    *, rate: float, lead: float, replies: int = 200, spread: float = 10.0
) -> list[float]:
    """Return, per reply, the seconds from its end to its final message being sent.

    ``rate``: sends per second (> 0); ``lead``: seconds (>= 0) before its end at which
    a reply's first message may go; replies end at ``spread * i / replies``. Raises
    ``ValueError`` for a rate <= 0 or a negative lead.
    """
    if rate <= 0 or lead < 0:
        raise ValueError("rate must be > 0 and lead >= 0")
    ends = [spread * i / replies for i in range(replies)]
    # (release time, reply, part): part 0 is the first message, part 1 the final one.
    releases = sorted(
        [(end - lead, i, 0) for i, end in enumerate(ends)]
        + [(end, i, 1) for i, end in enumerate(ends)]
    )
    pending: list[tuple[int, int]] = []  # (reply, part): the oldest reply first
    first_sent: set[int] = set()
    delays = [0.0] * replies
    now, taken, done = releases[0][0], 0, 0
    while done < replies:
        while taken < len(releases) and releases[taken][0] <= now + 1e-12:
            _, reply, part = releases[taken]
            heapq.heappush(pending, (reply, part))
            taken += 1
        waiting = [job for job in pending if job[1] == 0 or job[0] in first_sent]
        if not waiting:
            now = releases[taken][0]  # idle until the next release
            continue
        reply, part = min(waiting)
        pending.remove((reply, part))
        heapq.heapify(pending)
        if part == 0:
            first_sent.add(reply)
        else:
            delays[reply] = max(0.0, now - ends[reply])  # released within 1e-12 s of now
            done += 1
        now += 1.0 / rate
    return delays


def main(argv: list[str] | None = None) -> int:
    """Print median / p95 of the final-message delay for the chosen rates and leads."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.send_model", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, nargs="*", default=[22, 26, 28, 30])
    parser.add_argument("--lead", type=float, nargs="*", default=[0.0, 1.0, 1.5, 2.0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--spread", type=float, default=10.0)
    args = parser.parse_args(argv)
    print("rate/s  lead s  final delay s (median / p95)")
    for rate in args.rate:
        for lead in args.lead:
            delays = final_delays(rate=rate, lead=lead, replies=args.replies, spread=args.spread)
            print(
                f"{rate:6g}  {lead:6g}  {percentile(delays, 50):.2f} / {percentile(delays, 95):.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
