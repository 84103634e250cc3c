"""/api/v1/audit: the ledger's checkpoint, entries and proofs, for auditors and admins only;
every proof it serves verifies against the signed checkpoint with the pure ``audit`` code."""

from __future__ import annotations

import base64

import requests

from audit import Checkpoint, NoteVerifier, open_note, verify_consistency, verify_inclusion
from tests.support.server import Server


def test_audit_api_serves_proofs_to_auditors_only(uploaded: tuple[Server, str, str]) -> None:
    server, item_id, auditor = uploaded
    officer = server.token()
    get = lambda path, token: requests.get(f"{server.url}/api/v1/audit/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)  # noqa: E731
    server.cli("audit", "checkpoint")
    assert get("checkpoint", officer).status_code == 403
    assert get("checkpoint", "").status_code == 401
    checkpoint = get("checkpoint", auditor).json()
    verifier = NoteVerifier.from_vkey(checkpoint["public_key"])
    signed = Checkpoint.parse(open_note(checkpoint["note"], verifier))
    entries = get(f"entries?item={item_id}", auditor).json()
    assert entries and all(e["entry"]["subject"]["item"] == item_id for e in entries)
    for found in entries:
        proof = get(f"proof/inclusion?seq={found['seq']}&size={signed.size}", auditor).json()
        verify_inclusion(found["seq"], signed.size, bytes.fromhex(found["leaf_hash"]),
                         [base64.b64decode(p) for p in proof["proof"]], signed.root)
    grown = get("proof/consistency?from=1", auditor).json()
    verify_consistency(1, grown["to"], [base64.b64decode(p) for p in grown["proof"]],
                       base64.b64decode(grown["root1"]), base64.b64decode(grown["root2"]))
    assert get("proof/inclusion?seq=999999", auditor).status_code == 400
    # Numbers past the database's BIGINT are refused as input, not a 500.
    for path in (f"entries?after={2**63}", f"proof/inclusion?seq=0&size={10**30}", f"proof/consistency?from={2**63}"):
        assert get(path, auditor).status_code == 422, path
    key = get("public-key", auditor)
    assert key.headers["content-type"].startswith("text/plain") and key.text.strip() == checkpoint["public_key"]
    documented = requests.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]["/api/v1/audit/public-key"]
    assert list(documented["get"]["responses"]["200"]["content"]) == ["text/plain"]
