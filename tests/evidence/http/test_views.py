"""The JSON shapes users see (evidence.http.views), built from rows that were never stored:
every field, in the contract's order, with times as ``datetime.isoformat`` writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from evidence.http.views import CaseView, case_view, item_view, link_view, upload_view, user_view
from evidence.models import Case, Derivative, Item, Link, Upload, User

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _item(**changes: object) -> Item:
    values: dict[str, object] = {
        "id": "a" * 32, "case_id": "c" * 32, "upload_id": "u" * 32, "officer_id": "o" * 32,
        "filename": "CCTV cam 3.mp4", "size": 86232, "storage_key": "originals/x", "state": "ready",
        "reason": None, "client_sha256": "0" * 64, "exhibit": "EX-1", "description": "front door",
        "filetype": "video/mp4", "hashes": {"sha256": "0" * 64}, "warnings": ["one"], "progress": None,
        "kind": "video", "media": {"duration": 2.0}, "created_at": T0,
    }
    values.update(changes)
    return Item(**values)


def _derivative(kind: str) -> Derivative:
    return Derivative(item_id="a" * 32, kind=kind, key=f"derivatives/{kind}", sha256="d" * 64, size=10,
                      content_type="image/jpeg", method={"tool": "ffmpeg"})


def test_an_item_as_the_contract_says() -> None:
    view = item_view(_item(), "OP-1", "https://evidence.example", [_derivative("proxy"), _derivative("poster")])
    data = view.as_json()
    assert list(data) == ["id", "case", "filename", "size", "state", "reason", "hashes", "client_sha256", "exhibit",
                          "description", "filetype", "warnings", "progress", "kind", "media", "derivatives",
                          "created_at", "url", "fixity"]
    assert data["state"] == "ready" and data["case"] == "OP-1"
    assert data["created_at"] == T0.isoformat() == "2026-03-01T12:30:15.123456+00:00"
    assert data["url"] == f"https://evidence.example/api/v1/items/{'a' * 32}"
    # Working copies sorted by kind, each fetched under the item's URL.
    assert [d["kind"] for d in data["derivatives"]] == ["poster", "proxy"]
    assert data["derivatives"][0] == {
        "kind": "poster", "sha256": "d" * 64, "size": 10, "content_type": "image/jpeg",
        "url": f"https://evidence.example/api/v1/items/{'a' * 32}/derivatives/poster", "method": {"tool": "ffmpeg"},
    }


def test_an_item_never_audited_and_one_whose_audit_failed() -> None:
    assert item_view(_item(), "OP-1", "").as_json()["fixity"] == {
        "state": "unchecked", "checked_at": None, "due_at": None, "failed_at": None, "problems": []}
    problem = {"object": "original", "kind": None, "part": None, "problem": "differs",
               "expected": {"sha256": "0" * 64, "size": 86232}, "found": {"sha256": "f" * 64, "size": 86232},
               "at": T0.isoformat()}
    data = item_view(_item(fixity_state="failed", fixity_checked_at=T0, fixity_failed_at=T0,
                           fixity_due_at=T0 + timedelta(days=30), fixity_problems=[problem]), "OP-1", "").as_json()
    assert data["fixity"] == {"state": "failed", "checked_at": T0.isoformat(), "failed_at": T0.isoformat(),
                              "due_at": (T0 + timedelta(days=30)).isoformat(), "problems": [problem]}


def test_an_item_not_yet_hashed() -> None:
    data = item_view(_item(state="uploading", hashes=None, warnings=None, media=None, kind=None), "OP-1", "").as_json()
    assert data["hashes"] == {} and data["warnings"] == [] and data["media"] == {} and data["derivatives"] == []
    assert data["kind"] is None


def test_an_item_in_an_unknown_state_is_refused_not_shown() -> None:
    with pytest.raises(ValueError):
        item_view(_item(state="misplaced"), "OP-1", "")


def test_a_case() -> None:
    data = case_view(Case(id="c" * 32, ref="OP-1", title=None, created_by="operator:pc", created_at=T0)).as_json()
    assert data == {"id": "c" * 32, "ref": "OP-1", "title": None, "created_by": "operator:pc",
                    "created_at": T0.isoformat()}


def test_a_user() -> None:
    user = User(id="u" * 32, email="pc@force.police.uk", role="officer", created_at=T0, disabled_at=None,
                tokens_valid_after=T0 + timedelta(hours=1), idp_issuer="https://idp.example")
    assert user_view(user).as_json() == {
        "id": "u" * 32, "email": "pc@force.police.uk", "role": "officer", "identity_provider": "https://idp.example",
        "created_at": T0.isoformat(), "disabled_at": None, "tokens_valid_after": (T0 + timedelta(hours=1)).isoformat(),
    }


def test_a_link() -> None:
    link = Link(id="l" * 32, case_id="c" * 32, scope="items", item_ids=["a" * 32], include_future=False,
                recipient="cps@cps.gov.uk", permission="download", expires_at=T0 + timedelta(days=7), max_uses=3,
                uses=1, created_by="user:pc@force.police.uk", created_at=T0, revoked_at=None, passcode_hash="scrypt$x",
                failed_attempts=0, locked_at=None, kid="20260301T000000Z-0000aaaa")
    data = link_view(link, "https://evidence.example/s/token", "OP-1").as_json()
    assert list(data) == ["id", "url", "case", "to", "scope", "items", "include_future", "permission", "expires_at",
                          "revoked_at", "uses", "max_uses", "passcode", "failed_attempts", "locked_at", "created_at",
                          "created_by", "kid"]
    assert data["to"] == "cps@cps.gov.uk" and data["passcode"] is True and data["url"].endswith("/s/token")
    assert data["expires_at"] == (T0 + timedelta(days=7)).isoformat()
    # A retired signing key: the link is listed, with no URL.
    assert link_view(link, None, "OP-1").as_json()["url"] is None


def test_an_upload() -> None:
    upload = Upload(id="u" * 32, offset=5, size=None, finished_at=None, terminated_at=None, expires_at=T0)
    assert upload_view(upload, None).as_json() == {
        "id": "u" * 32, "offset": 5, "size": None, "finished": False, "terminated": False,
        "expires_at": T0.isoformat(), "item": None,
    }
    done = Upload(id="u" * 32, offset=5, size=5, finished_at=T0, terminated_at=None, expires_at=None)
    assert upload_view(done, "a" * 32).as_json()["finished"] is True


def test_a_view_takes_no_field_it_does_not_declare() -> None:
    with pytest.raises(ValidationError):
        CaseView(id="c", ref="r", title=None, created_by="x", created_at=T0, extra="no")  # type: ignore[call-arg]
