"""The words of the continuity statement: who acted (never a host or an OS account), what a link's
use came to (a refusal says so), and the appendix's details without internals; and the pages'
custody timeline, which uses the same words."""

from __future__ import annotations

from typing import Any

import pytest

from evidence.custody import statement
from evidence.custody.timeline import timeline
from evidence.runtime import Runtime
from tests.evidence.custody import history


@pytest.mark.parametrize(("actor", "shown"), [
    ("user:pc@force.police.uk", "pc@force.police.uk"),
    ("link:0123abcd (reviewer@cps.gov.uk)", "reviewer@cps.gov.uk"),
    ("operator:root", "service account"),
    ("operator:root@vm", "service account"),
    ("system:worker@ingest-01.force.local", "the processing service"),
    ("system:transfer", "the upload service"),
    ("system:fixity@vm", "the fixity service"),
])
def test_who_names_a_person_or_a_service(actor: str, shown: str) -> None:
    assert statement.who(actor) == shown


def _entry(action: str, details: dict[str, Any], actor: str = "link:l1 (reviewer@cps.gov.uk)") -> dict[str, Any]:
    return {"seq": 7, "time": "2026-11-30T10:00:01.123456Z", "actor": actor, "action": action,
            "subject": {"case": "OP-1"}, "details": details}


@pytest.mark.parametrize(("details", "event", "outcome"), [
    ({"outcome": "granted", "kind": "page", "client_ip": "203.0.113.9"},
     "Viewed by reviewer@cps.gov.uk (the reviewer's page)", "Allowed"),
    ({"outcome": "granted", "kind": "download", "range": {"first": 0, "last": 999}, "whole_file": True},
     "Download of the original, bytes 0–999 (whole file), by reviewer@cps.gov.uk", "Allowed"),
    ({"outcome": "granted", "kind": "download", "range": {"first": 100, "last": 199}, "whole_file": False},
     "Download of the original, bytes 100–199 (part of the file), by reviewer@cps.gov.uk", "Allowed"),
    ({"outcome": "granted", "kind": "view", "copy": "pages"},
     "Viewed by reviewer@cps.gov.uk (working copy: page images)", "Allowed"),
    ({"outcome": "granted", "kind": "view", "copy": "proxy"},
     "Viewed by reviewer@cps.gov.uk (working copy: browser-playable video)", "Allowed"),
    ({"outcome": "denied", "reason": "revoked"}, "Request through the link sent to reviewer@cps.gov.uk",
     "Refused: link revoked"),
    ({"outcome": "denied", "reason": "expired", "summary": True, "requests": 4, "first_at": "2026-11-30T10:40:01Z",
      "last_at": "2026-11-30T10:44:30Z"},
     "4 requests through the link sent to reviewer@cps.gov.uk, 10:40:01–10:44:30", "Refused: link expired"),
    ({"outcome": "denied", "reason": "wrong passcode", "attempt": 3, "locked": True},
     "Request through the link sent to reviewer@cps.gov.uk", "Refused: wrong passcode (attempt 3, link locked)"),
])
def test_a_links_use_in_words(details: dict[str, Any], event: str, outcome: str) -> None:
    line = statement.line(_entry("link.accessed", details))
    assert (line.when, line.event, line.outcome) == ("2026-11-30 10:00:01", event, outcome)
    assert line.where_from == details.get("client_ip", "")


def test_the_appendix_shows_details_without_internals() -> None:
    details = {"kind": "hls", "key": "derivatives/i1/hls", "host": "ingest-01", "received_from": "operator:root@vm",
               "method": {"tool": "ffmpeg", "argv": ["ffmpeg", "-i", "original", "/srv/evidence/work/i1/out.m3u8",
                                                     "-vf", "scale='min(1280,iw)':-2"]},
               "note": "copied from originals/0123 by root@vm"}
    shown = "\n".join(statement.detail_lines(details))
    assert shown == ("kind: hls\n"
                     "method.argv: ffmpeg -i original (server detail) -vf 'scale='\"'\"'min(1280,iw)'\"'\"':-2'\n"
                     "method.tool: ffmpeg\n"
                     "note: copied from (server detail) by (server detail)\n"
                     "received_from: service account")
    # An e-mail address is not an internal.
    assert statement.redact("sent to reviewer@cps.gov.uk") == "sent to reviewer@cps.gov.uk"


def test_the_pages_timeline_says_refused_and_names_no_os_account(rt: Runtime) -> None:
    recorded = history.record(rt)
    with rt.db.sessions() as session:
        steps = timeline(session, rt.ledger_keys, recorded.item_id).steps
    labels = [step.label for step in steps]
    assert "Link used" not in labels and labels.count("Refused: link revoked") == 4
    assert "Original downloaded through the link" in labels
    made = {step.note for step in steps if step.action == "derivative.created"}
    assert {"browser-playable video", "segmented video stream", "contact sheet"} <= made  # the statement's words
    assert {step.actor for step in steps} == {
        "service account", history.OFFICER, "the upload service", "the processing service", history.REVIEWER,
        history.COUNSEL}


@pytest.mark.parametrize(("kind", "shown"), [
    ("hls", "segmented video stream"), ("contact_sheet", "contact sheet"), ("previews", "previews of the archive's contents"),
    ("some_new_kind", "some new kind"), ("<b>odd</b>", "<b>odd</b>"),
])
def test_a_working_copy_is_named_in_words(kind: str, shown: str) -> None:
    assert statement.copy_kind(kind) == shown
    line = statement.line(_entry("derivative.created", {"kind": kind, "size": 1234}, "system:worker@host"))
    assert line.event == f"Working copy made: {shown}, 1,234 bytes, by the processing service"


def test_a_witness_cosignature_in_words() -> None:
    entry = _entry("checkpoint.cosigned", {"witness": "witness.force-b.example", "size": 1234,
                                           "witness_key": "witness.force-b.example+01234567+BAAA",
                                           "cosigned_at": "2026-11-30T10:00:07Z"}, actor="system:witnesses")
    line = statement.line(entry)
    assert (line.event, line.outcome) == (
        "Ledger checkpoint of 1234 entries cosigned by witness witness.force-b.example at 2026-11-30 10:00:07"
        " (asked by the witnesses service)", "Cosigned")
