"""Benchmarks that print figures (``python -m bench.streaming``, ``python -m bench.send_model``).

Also home of the loopback fakes the benchmark and the e2e tests share: the fake Bot API
(:mod:`bench.fake_telegram`), the fake OpenAI-compatible provider
(:mod:`bench.fake_openai`) and the runner for both and the bot (:mod:`bench.loopback`).
Nothing here imports ``tests``: the package and its ``bench`` extra suffice
(``pip install -e '.[bench]'``), run from the repository root.
"""
