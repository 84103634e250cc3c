"""The schemathesis runs' summary at the end of the session. (Hypothesis profiles are in
tests/conftest.py, for every test that uses hypothesis.)"""

from __future__ import annotations

import pytest

# One line per schemathesis run (database, caller): operations, requests, time, statuses.
SUMMARY = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("schemathesis runs")
        for line in lines:
            terminalreporter.write_line(line)
