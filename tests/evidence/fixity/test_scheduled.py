"""The scheduled audit runs from the worker that a real `evidence serve` starts (its own beat),
as the service account: with a cycle of seconds, every object comes due and is checked, and an
original rewritten behind the server's back is caught and recorded by the schedule alone."""

from __future__ import annotations

import time
from pathlib import Path

from tests.evidence.fixity.conftest import Stored, rewrite_a_byte
from tests.support.files import random_file

# A cycle of 6 s (each object is due once in any 6 s), beat every second.
FAST = {"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_FIXITY_CYCLE_DAYS": str(6 / 86400),
        "EVIDENCE_FIXITY_INTERVAL_SECONDS": "1"}


def _wait_for(stored: Stored, action: str, count: int = 1, timeout: float = 60) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        found = stored.entries(action)
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {action} entry after {timeout} s:\n{stored.server.log.read_text()[-3000:]}"
        time.sleep(0.5)


def test_the_embedded_worker_runs_the_audit_and_catches_a_rewritten_original(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(FAST)
    case = server.case("OP-BEAT")
    source = tmp_path / "cctv.bin"
    random_file(source, 1_500_000, seed=11)
    out = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", server.token())
    item = out.stdout.split()[0]
    server.settled_item(item)
    stored = Stored(server, item, item)
    [first] = _wait_for(stored, "fixity.checked")
    details = first.details
    assert first.actor == "operator:service" and details["trigger"] == "schedule" and details["scope"] == "due"
    assert details["objects"]["originals"] == 1 and details["objects"]["failed"] == 0
    assert stored.item(item)["fixity"]["state"] == "ok"
    rewrite_a_byte(stored.original(item))
    [failed] = _wait_for(stored, "fixity.failed", timeout=30)
    assert failed.subject == {"case": "OP-BEAT", "item": item} and failed.details["problem"] == "differs"
    run = [e for e in stored.entries("fixity.checked") if e.details["run"] == failed.details["run"]]
    assert run and run[0].details["trigger"] == "schedule"
    assert stored.item(item)["fixity"]["state"] == "failed"
    # Runs that found nothing due add nothing: the ledger does not grow with the beat.
    assert all(e.details["objects"]["originals"] + e.details["objects"]["working_copies"] > 0
               for e in stored.entries("fixity.checked"))
