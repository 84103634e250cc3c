"""Fixtures shared by the evidence tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.files import random_file
from tests.support.server import Server


@pytest.fixture
def uploaded(make_server, tmp_path: Path) -> tuple[Server, str, str]:  # type: ignore[no-untyped-def]
    """A server with one uploaded original: (server, its item id, an auditor's token)."""
    server = make_server()
    token = server.token()
    case = server.case("OP-AUDIT")
    source = tmp_path / "interview room 2.mp4"
    random_file(source, 300_000)
    out = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", token, "--exhibit", "JS/7")
    return server, out.stdout.split()[0], server.token("auditor@force.police.uk", "auditor")
