"""What a reviewer's copy of a report withholds: entries naming server internals whole,
and internals in the report's own summary."""

from __future__ import annotations

from typing import Any

import pytest

from evidence.custody.disclosure import WITHHELD, Internals, scrub, withheld_because

UPLOAD = "0123456789abcdef0123456789abcdef"
INTERNALS = Internals.of("vm", "/srv/evidence/data", f"originals/{UPLOAD}", UPLOAD)


def entry(action: str, actor: str = "system:worker", subject: dict[str, str] | None = None,
          details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"seq": 3, "time": "2026-03-01T12:00:00Z", "action": action, "actor": actor,
            "subject": subject or {"case": "OP-1", "item": "ab" * 16}, "details": details or {}}


@pytest.mark.parametrize("found, reason", [
    (entry("upload.created", "user:pc@force.police.uk", {"case": "OP-1", "upload": UPLOAD}), "transfer internals"),
    (entry("original.hashed", "system:worker@vm"), "host"),
    (entry("original.hashed", "operator:root@evidence-01"), "host"),
    (entry("original.stored", details={"storage_key": "originals/x"}), "stored"),
    (entry("derivative.created", details={"kind": "proxy", "key": "derivatives/x/proxy.mp4"}), "stored"),
    (entry("original.stored", details={"storage": {"backend": "s3", "endpoint": "http://minio:9000"}}), "stored"),
    (entry("original.stored", details={"storage": {"backend": "local", "root": "/elsewhere/vault"}}), "stored"),
    (entry("derivative.created", details={"method": {"argv": ["ffmpeg", "-i", "/srv/evidence/data/tmp/in"]}}),
     "internals"),
    (entry("item.failed", details={"reason": "worker vm ran out of memory"}), "internals"),
])
def test_entries_naming_internals_are_withheld(found: dict[str, Any], reason: str) -> None:
    because = withheld_because(found, INTERNALS)
    assert because is not None and reason in because


@pytest.mark.parametrize("shown", [
    entry("original.hashed", details={"hashes": {"sha256": "ab" * 32}, "size": 5}),
    entry("original.stored", "system:transfer", details={"storage": {"backend": "local"}, "write_once": "0400"}),
    entry("link.accessed", "link:" + "cd" * 16 + " (reviewer@cps.gov.uk)",
          details={"user_agent": "Mozilla/5.0 (vmware-ish; KVM)", "client_ip": "203.0.113.7"}),
    entry("derivative.created", details={"kind": "proxy", "sha256": "b" * 64, "method": {"tool": "ffmpeg"}}),
    entry("case.created", "operator:root", {"case": "OP-1"}, {"title": "Operation Halford (avm)"}),
])
def test_entries_without_internals_are_shown_whole(shown: dict[str, Any]) -> None:
    assert withheld_because(shown, INTERNALS) is None


def test_a_short_host_name_is_found_as_a_word_only() -> None:
    assert INTERNALS.found_in("system:worker@vm") and INTERNALS.found_in({"host": ["vm"]})
    assert not INTERNALS.found_in("dGhpcyB2bSBpcyBiYXNlNjQ=vmx") and not INTERNALS.found_in("avm vma")


def test_the_summary_keeps_its_facts_and_loses_its_internals() -> None:
    item = {"filename": "CCTV.mp4", "warnings": [f"reprobed /srv/evidence/data/vault/originals/{UPLOAD}", "no audio"],
            "media": {"container": "mp4", "path": "/srv/x"}}
    assert scrub(item, INTERNALS) == {"filename": "CCTV.mp4", "warnings": [WITHHELD, "no audio"],
                                      "media": {"container": "mp4"}}


def test_a_server_names_its_folders_and_endpoint() -> None:
    local = Internals.of_server("/srv/d", "/srv/d/tmp", "file:///srv/d/my%20vault")
    assert {"/srv/d", "/srv/d/tmp", "/srv/d/my vault"} <= local.words and "localhost" not in local.words
    s3 = Internals.of_server("/srv/d", "/tmp/w", "s3://evidence?endpoint_url=http://minio:9000&region=x")
    assert "http://minio:9000" in s3.words and "evidence" not in s3.words
