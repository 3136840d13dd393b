"""Smoke test: the streaming benchmark runs end to end in a tiny configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.answers import chunk_count, make_answer

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "format",
    "replies",
    "answered",
    "timed_out",
    "too_many_requests",
    "too_many_requests_by_level",
    "first_feedback_s",
    "first_answer_text_s",
    "staleness_s",
    "final_text_s",
    "final_text_missing",
    "final_text_exact",
    "chats",
    "chats_holding_each_once",
    "calls_per_reply",
    "calls_by_method",
    "updates_per_reply",
    "fair_share_fraction",
    "chunks",
    "frames",
    "cpu_ms",
    "cpu_ms_per_1000_chunks",
    "cpu_ms_per_frame",
    "loop_lag_p99_ms",
    "loop_lag_max_ms",
    "peak_rss_mib",
    "wall_s",
    "provider_late_p99_ms",
    "fakes_cpu_s",
    "scheduler",
    "targets",
}


def run_three_chats(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run the chats scenario with three chats, 50 tokens at 200 tokens/s, where only
    ``bench/`` and the installed package are importable (not ``tests``); return the
    finished process and the JSON report."""
    (tmp_path / "bench").symlink_to(ROOT / "bench", target_is_directory=True)
    out = tmp_path / "result.json"
    command = [
        sys.executable,
        "-m",
        "bench.streaming",
        "--scenario",
        "chats",
        "--chats",
        "3",
        "--tokens",
        "50",
        "--rate",
        "200",
        "--spread",
        "0.3",
        "--json",
        str(out),
        *options,
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a target missed
    return done, json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.timeout(60)
def test_three_chats_run_without_429_and_report_every_figure(tmp_path: Path) -> None:
    """Three chats, 50 tokens at 200 tokens/s: every figure is reported, no 429, under 20 s."""
    started = time.monotonic()
    done, report = run_three_chats(tmp_path)
    elapsed = time.monotonic() - started
    assert list(report["scenarios"]) == ["chats"]  # a single scenario: classic only
    figures = report["scenarios"]["chats"]
    assert set(figures) >= FIGURES
    assert figures["too_many_requests"] == 0
    assert figures["replies"] == figures["answered"] == figures["final_text_exact"] == 3
    assert figures["format"] == "classic" and figures["chats_holding_each_once"] == 3
    answers = [make_answer(variant, tokens=50, chars_per_token=3) for variant in range(3)]
    assert figures["chunks"] == sum(chunk_count(answer, 3) for answer in answers)
    assert figures["first_feedback_s"]["max"] < 1.0
    assert figures["final_text_s"]["max"] < 2.0
    assert "metric" in done.stdout and '"scenarios"' in done.stdout
    assert elapsed < 20.0


@pytest.mark.timeout(60)
def test_three_chats_in_rich_messages_end_exact_through_rich_calls_only(tmp_path: Path) -> None:
    """With --format rich every answer goes out through sendRichMessageDraft and
    sendRichMessage (no classic text call), each final rich message is the rich renderer's
    output, each chat holds its answer once, and no call drew a 429."""
    done, report = run_three_chats(tmp_path, "--format", "rich")
    assert list(report["scenarios"]) == ["chats-rich"]
    figures = report["scenarios"]["chats-rich"]
    assert figures["format"] == "rich"
    assert figures["too_many_requests"] == 0
    assert figures["replies"] == figures["final_text_exact"] == 3
    assert figures["chats_holding_each_once"] == 3
    methods = set(figures["calls_by_method"])
    assert {"sendRichMessage", "sendRichMessageDraft"} <= methods
    assert not methods & {"sendMessage", "sendMessageDraft"}
    assert "chats-rich" in done.stdout
