"""The chaos suite: the real bot under many conversations while the fakes and Redis fail.

Prints the table of this session's chaos runs (:data:`tests.chaos.harness.ROWS`) at the
end of the pytest run.
"""

from __future__ import annotations

import pytest

from tests.chaos.harness import ROWS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the chaos table, when a chaos test ran."""
    if ROWS:
        terminalreporter.write_sep("-", "chaos runs")
        terminalreporter.write_line(table(ROWS))
