"""The auditor's tools, end to end: an upload through the real server, then `evidence audit`
(verify, checkpoint, report, verify-report) and the /api/v1/audit endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.server import Server

CASE_VALIDATE = str(Path(sys.executable).with_name("case_validate"))


def test_report_lists_every_step_and_verifies_offline(uploaded: tuple[Server, str, str], tmp_path: Path) -> None:
    server, item_id, _ = uploaded
    key = tmp_path / "ledger.pub"
    key.write_text(server.cli("audit", "public-key").stdout)
    for fmt in ("json", "html"):
        path = tmp_path / f"report.{fmt}"
        server.cli("audit", "report", item_id, "--format", fmt, "-o", str(path))
        checked = server.cli("audit", "verify-report", str(path), "--public-key", str(key))
        assert "are in the ledger" in checked.stdout
        # Any byte changed: refused.
        data = path.read_bytes()
        for position in (0, len(data) // 3, len(data) // 2, len(data) - 2):
            tampered = bytearray(data)
            tampered[position] ^= 0x20
            (tmp_path / "tampered").write_bytes(bytes(tampered))
            refused = server.cli("audit", "verify-report", str(tmp_path / "tampered"), "--public-key", str(key), check=False)
            assert refused.returncode == 1 and "REJECTED" in refused.stderr, (fmt, position)
    report = json.loads((tmp_path / "report.json").read_bytes())
    actions = [e["entry"]["action"] for e in report["entries"]]
    assert actions[:4] == ["case.created", "upload.created", "upload.completed", "original.stored"]
    assert report["item"]["exhibit"] == "JS/7"
    html = (tmp_path / "report.html").read_text()
    assert "Continuity statement" in html and "interview room 2.mp4" in html


def test_another_ledgers_key_rejects_the_report(uploaded: tuple[Server, str, str], tmp_path: Path) -> None:
    from audit import generate_signer

    server, item_id, _ = uploaded
    server.cli("audit", "report", item_id, "--format", "json", "-o", str(tmp_path / "r.json"))
    other = generate_signer("evidence-transfer/custody-ledger").verifier_key()
    refused = server.cli("audit", "verify-report", str(tmp_path / "r.json"), "--public-key", other, check=False)
    assert refused.returncode == 1


def test_case_export_conforms_to_case_uco(uploaded: tuple[Server, str, str], tmp_path: Path) -> None:
    server, item_id, _ = uploaded
    path = tmp_path / "report.jsonld"
    server.cli("audit", "report", item_id, "--format", "case", "-o", str(path))
    result = subprocess.run([CASE_VALIDATE, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Conforms: True" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_verify_against_a_kept_checkpoint_and_after_tampering(uploaded: tuple[Server, str, str], tmp_path: Path) -> None:
    server, _, _ = uploaded
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(server.cli("audit", "checkpoint").stdout)
    server.cli("cases", "create", "OP-LATER", "--token", server.token("admin@force.police.uk", "admin"))  # the log grows
    assert "extends the kept checkpoint" in server.cli("audit", "verify", "--checkpoint", str(kept)).stdout
    assert server.cli("audit", "verify").returncode == 0

    # An edit behind the server's back: `verify` names the entry.
    import sqlite3

    with sqlite3.connect(server.data_dir / "evidence.db") as db:
        db.execute("UPDATE custody_events SET actor = 'user:nobody@x' WHERE seq = 2")
    failed = server.cli("audit", "verify", check=False)
    assert failed.returncode == 1
    assert "first bad entry: 2" in " ".join(failed.stderr.split())
