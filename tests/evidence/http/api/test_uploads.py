"""/api/v1/uploads/{id}: what became of an upload, for its officer (while they may still see
its case) and admins; to anyone else an upload reads exactly like one that does not exist."""

from __future__ import annotations

import base64

import requests

from tests.support.server import Server


def _create(server: Server, token: str, case: str) -> str:
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        {"filename": "cctv.mp4", "case": case}.items())
    response = requests.post(f"{server.url}/files/", timeout=10, headers={
        "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": "10",
        "Upload-Metadata": metadata})
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def test_an_upload_is_its_officers_while_they_are_on_the_case(server: Server) -> None:
    officer = server.token()
    colleague = server.token("colleague@force.police.uk")
    admin = server.token("admin@force.police.uk", "admin")
    case = server.case("OP-UPLOADS")
    upload_id = _create(server, officer, case)

    def status(token: str) -> tuple[int, dict[str, object]]:
        response = requests.get(f"{server.url}/api/v1/uploads/{upload_id}",
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return response.status_code, response.json()

    code, found = status(officer)
    assert code == 200
    assert (found["id"], found["offset"], found["size"], found["finished"], found["item"]) == (upload_id, 0, 10, False, None)
    assert status(admin)[0] == 200
    missing = requests.get(f"{server.url}/api/v1/uploads/{'0' * 32}", headers={"Authorization": f"Bearer {officer}"},
                           timeout=10)
    assert status(colleague) == (404, missing.json()) and missing.status_code == 404
    # Taken off the case: the officer's own upload is now out of reach, like any other.
    server.cli("cases", "unassign", case, "officer@force.police.uk", token=admin)
    assert status(officer) == (404, missing.json())
    assert status(admin)[0] == 200
