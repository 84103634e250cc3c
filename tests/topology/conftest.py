"""One topology for the whole session (starting it takes about a minute), stopped at the end
whatever happened; each fault test leaves it whole again for the next."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.topology import Topology, missing_prerequisites


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    missing = missing_prerequisites()
    if missing:
        reason = "the topology cannot run here: missing " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="evidence-topology-") as root:
        found = Topology(Path(root))
        try:
            yield found.start()
        finally:
            found.stop()


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A folder for the files a test uploads."""
    folder = tmp_path / "sources"
    folder.mkdir()
    return folder
