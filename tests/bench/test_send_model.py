"""The send-rate model of many answers ending together (bench/send_model.py)."""

from __future__ import annotations

import pytest

from bench.metrics import percentile
from bench.send_model import final_delays


def test_a_rate_above_the_demand_sends_every_final_at_once() -> None:
    """20 ends a second, two sends each: 1,000/s never lets a final wait."""
    delays = final_delays(rate=1000, lead=1.0)
    assert len(delays) == 200
    assert max(delays) < 0.01


def test_a_slower_rate_or_a_shorter_lead_makes_finals_later() -> None:
    """Below the ~35/s the ends need, the p95 grows as the rate or the lead shrinks."""
    p95 = {
        (rate, lead): percentile(final_delays(rate=rate, lead=lead), 95)
        for rate in (22, 30)
        for lead in (0.0, 2.0)
    }
    assert p95[22, 2.0] > p95[30, 2.0] > 1.0
    assert p95[30, 0.0] > p95[30, 2.0]
    assert all(d >= 0 for d in final_delays(rate=26, lead=1.5))


def test_one_reply_alone_waits_only_for_its_first_message() -> None:
    """With no lead, a lone reply's final goes one send interval after its first message."""
    assert final_delays(rate=2, lead=0.0, replies=1) == [pytest.approx(0.5)]


@pytest.mark.parametrize(("rate", "lead"), [(0, 1.0), (-1, 1.0), (10, -0.5)])
def test_nonsense_arguments_are_refused(rate: float, lead: float) -> None:
    """A rate <= 0 or a negative lead raises ValueError."""
    with pytest.raises(ValueError, match="rate must be"):
        final_delays(rate=rate, lead=lead)
