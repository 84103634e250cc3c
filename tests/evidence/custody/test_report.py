"""The reviewer's copy of a custody report, on SQLite and PostgreSQL: entries naming server
internals are withheld whole yet proven in place, the copy verifies offline, and a withheld
leaf that is not in the ledger is caught even under a valid signature."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit import VerificationError
from evidence import custody, migrate
from evidence.custody import report
from evidence.custody.actions import Action
from evidence.custody.disclosure import Internals
from evidence.custody.report_html import render
from evidence.models import Case, Item, Upload, User
from evidence.runtime import Runtime
from evidence.settings import Settings

UPLOAD = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stored(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, str]]:
    rt = Runtime.build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    migrate.upgrade(rt.db.engine)
    try:
        with rt.db.transaction() as session:
            officer = User(email="pc@force.police.uk", role="officer")
            case = Case(ref="OP-1", created_by="operator:root")
            session.add_all([officer, case])
            session.flush()
            session.add(Upload(id=UPLOAD, owner_id=officer.id, case_id=case.id, storage_key=f"originals/{UPLOAD}"))
            session.flush()
            item = Item(case_id=case.id, upload_id=UPLOAD, officer_id=officer.id, filename="CCTV.mp4", size=5,
                        storage_key=f"originals/{UPLOAD}", hashes={"sha256": "ab" * 32},
                        warnings=[f"re-read {tmp_path}/data/vault/originals/{UPLOAD}", "no audio"])
            session.add(item)
            session.flush()
            subject = {"case": "OP-1", "item": item.id}
            custody.record(session, Action.CASE_CREATED, {"case": "OP-1"}, "operator:root", {"title": None})
            custody.record(session, Action.UPLOAD_CREATED, {"case": "OP-1", "upload": UPLOAD}, "user:pc@force.police.uk",
                           {"filename": "CCTV.mp4"})
            custody.record(session, Action.ORIGINAL_STORED, {**subject, "upload": UPLOAD}, "system:transfer",
                           {"storage_key": f"originals/{UPLOAD}", "size": 5})
            custody.record(session, Action.ORIGINAL_HASHED, subject, "system:worker@vm", {"hashes": {"sha256": "ab" * 32}})
            custody.record(session, Action.ORIGINAL_HASHED, subject, "system:worker", {"hashes": {"sha256": "ab" * 32}})
        yield rt, item.id
    finally:
        rt.close()


def _reviewers(rt: Runtime, item_id: str) -> dict[str, Any]:
    internals = Internals.of_server(str(rt.settings.data_path), str(rt.settings.effective_tmp_dir),
                                    rt.settings.effective_storage_url)
    with rt.db.transaction() as session:
        return report.build(session, rt.ledger_keys, item_id, "system:test", internals)


def test_the_reviewers_copy_withholds_internals_and_verifies(stored: tuple[Runtime, str]) -> None:
    rt, item_id = stored
    copy_ = _reviewers(rt, item_id)
    assert [(w["seq"], w["action"]) for w in copy_["withheld"]] == [
        (1, "upload.created"), (2, "original.stored"), (3, "original.hashed")]
    assert [e["entry"]["action"] for e in copy_["entries"]] == ["case.created", "original.hashed"]
    assert "storage_key" not in copy_["item"] and copy_["item"]["warnings"] == ["[withheld]", "no audio"]
    text = report.to_json(copy_).decode()
    assert UPLOAD not in text and str(rt.settings.data_path) not in text and "@vm" not in text
    assert report.verify_report(report.to_json(copy_), rt.ledger_keys.verifier)["copy"] == "reviewer"
    html = report.sign_html(render(copy_), rt.ledger_keys)
    assert b"withheld from this copy" in html and UPLOAD.encode() not in html
    report.verify_report(html, rt.ledger_keys.verifier)
    with rt.db.transaction() as session:  # the auditors' report holds everything, as before
        full = report.build(session, rt.ledger_keys, item_id, "system:test")
    assert "withheld" not in full and len(full["entries"]) == 5
    # The item's summary is the report's own (not a ledger entry): no storage key, whoever reads it.
    assert "storage_key" not in full["item"]


def test_a_withheld_leaf_must_be_in_the_ledger(stored: tuple[Runtime, str]) -> None:
    rt, item_id = stored
    original = _reviewers(rt, item_id)
    for damage in ("leaf", "seq", "proof"):
        forged = copy.deepcopy(original)
        kept_back = forged["withheld"][1]
        if damage == "leaf":
            kept_back["leaf_hash"] = "00" * 32
        elif damage == "seq":
            kept_back["seq"] = 4
        else:
            kept_back["proof"] = kept_back["proof"][1:]
        # Signed again with the ledger's own key: only the proof check can catch it.
        content = {k: v for k, v in forged.items() if k != "signature"}
        forged["signature"] = rt.ledger_keys.signer.sign(report._SIGNED.format(digest=report._digest(content)))
        with pytest.raises(VerificationError, match="withheld entry"):
            report.verify_report(report.to_json(forged), rt.ledger_keys.verifier)
