"""Hypothesis profiles for the property-based and schema-driven tests.

``ci`` (the default) is reproducible: examples are derived from each test's own source
(``derandomize``), nothing is read from or written to an example database, and there is
no per-example deadline (the machine is shared; a slow example is not a failure).
``explore`` is for a person hunting for new failures: a fresh random seed on every run
(each test keeps its own example count). Choose with ``HYPOTHESIS_PROFILE=explore``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches (e.g. Unicode tables) under ./.hypothesis by default; keep the
# working tree clean.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "evidence-fuzz-hypothesis")

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# One line per schemathesis run (database, caller): operations, requests, time, statuses.
SUMMARY = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("schemathesis runs")
        for line in lines:
            terminalreporter.write_line(line)
