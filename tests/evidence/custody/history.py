"""A two-minute CCTV clip's custody history, recorded the way the application records it: an
upload, hashing, seven working copies, two links, page views, working-copy views and downloads
of the original (whole and in part), their window summaries, a report export, a revoke and the
refused attempts after it. The entry details follow the shapes the recording code writes
(evidence.uploads.registry, transcode.pipeline, evidence.links.gate and .window, .sharing); the
oldest entries are written as releases before the host names were dropped wrote them
(``operator:root@vm``, ``system:worker@<host>``, a work folder's absolute path in an ffmpeg
argument), so the statement is tested against the internals a real ledger holds."""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from typing import Any

from evidence import custody
from evidence.custody.actions import Action
from evidence.models import Case, Derivative, Item, Upload, User
from evidence.runtime import Runtime

UPLOAD = "5f0c2a9e8d7b4c6a9e1f2d3c4b5a6978"
SIZE = 118_734_912  # two minutes of 1080p CCTV at about 8 Mbit/s
SHA256 = hashlib.sha256(b"the original").hexdigest()
MD5 = hashlib.md5(b"the original", usedforsecurity=False).hexdigest()
SHA1 = hashlib.sha1(b"the original", usedforsecurity=False).hexdigest()
OFFICER = "pc.jones@force.police.uk"
REVIEWER = "reviewer@cps.gov.uk"
COUNSEL = "counsel@chambers.example.org"
REVIEWER_IP = "203.0.113.9"
FFMPEG = "7.1.1-static"


@dataclass(frozen=True)
class History:
    item_id: str
    data_dir: str
    host: str


def _argv(kind: str, work: str) -> list[str]:
    """ffmpeg command lines as the pipeline records them (input named ``original``)."""
    common = ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-threads", "2", "-f", "mov", "-i", "original"]
    if kind == "proxy":
        return [*common, "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                "-pix_fmt", "yuv420p", "-vf", "scale='min(1280,iw)':-2:flags=bicubic,setsar=1", "-c:a", "aac",
                "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", "-map_metadata", "-1", "-fps_mode", "passthrough",
                "proxy.mp4"]
    if kind == "hls":
        # An older release recorded the work folder's absolute path.
        return [*common, "-map", "0:v:0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "48",
                "-sc_threshold", "0", "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
                "-hls_segment_filename", f"{work}/hls/segment-%05d.ts", f"{work}/hls/index.m3u8"]
    if kind == "contact_sheet":
        # As the pipeline writes it: one seek and input per keyframe, then one filter graph of
        # a few KB with long unbroken runs, which the layout must wrap inside its column.
        scale = "scale=320:-2:flags=bicubic+accurate_rnd+full_chroma_int+bitexact:out_range=full"
        seeks = [arg for n in range(16) for arg in ("-f", "mov", "-format_whitelist", "mov", "-max_pixels", "33177600",
                                                     "-noaccurate_seek", "-skip_frame", "nokey", "-ss", f"{7.5 * n:.3f}",
                                                     "-threads", "1", "-i", "original")]
        graph = "".join(f"[{n}:v:0]trim=end_frame=1[s{3 * n}];[s{3 * n}]{scale}[s{3 * n + 1}];[s{3 * n + 1}]setsar=1"
                        f"[s{3 * n + 2}];" for n in range(16))
        tiles = "".join(f"[s{3 * n + 2}]" for n in range(16))
        return ["ffmpeg", "-hide_banner", "-nostdin", *seeks, "-filter_complex",
                f"{graph}{tiles}concat=a=0:n=16:v=1[s48];[s48]tile=4x4[s49]", "-map", "[s49]", "-f", "image2",
                "-fflags", "+bitexact", "-frames:v", "1", "-q:v", "3", "-update", "1", "contact-sheet.jpg", "-y"]
    return [*common, "-ss", "12", "-frames:v", "1", "-vf",
            "scale='min(1280,iw)':-2:flags=bicubic+accurate_rnd+full_chroma_int+bitexact:out_range=full", "-q:v", "3",
            f"{kind}.jpg"]


COPIES: dict[str, tuple[str, int]] = {
    "probe": ("application/json", 6_204), "proxy": ("video/mp4", 31_522_184), "poster": ("image/jpeg", 58_113),
    "thumbnail": ("image/jpeg", 9_877), "contact_sheet": ("image/jpeg", 211_640),
    "hls": ("application/vnd.apple.mpegurl", 30_874_312), "manifest": ("application/json", 2_311),
}


def _method(kind: str, work: str) -> dict[str, Any]:
    if kind == "probe":
        return {"tool": "pyav", "version": "14.2.0", "libraries": {"libavcodec": "61.19.100", "libavformat": "61.7.100"},
                "input": {"demuxer": "mov,mp4,m4a,3gp,3g2,mj2"}}
    if kind == "manifest":
        return {"tool": "evidence", "version": "0.1.0"}
    return {"tool": "ffmpeg", "version": FFMPEG, "argv": _argv(kind, work)}


def _window(minute: int) -> dict[str, str]:
    return {"from": f"2026-11-30T10:{minute:02d}:00Z", "until": f"2026-11-30T10:{minute + 5:02d}:00Z"}


def _who(minute: int) -> dict[str, Any]:
    return {"client_ip": REVIEWER_IP, "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/132.0",
            "window": _window(minute)}


def record(rt: Runtime) -> History:
    """Write the item and its history; return its id and the internals it must not show."""
    data_dir, host = str(rt.settings.data_path), socket.gethostname()
    worker = f"system:worker@{host}"
    with rt.db.transaction() as session:
        officer = User(email=OFFICER, role="officer")
        case = Case(ref="OP-HALFORD", title="Operation Halford", created_by="operator:root@vm")
        session.add_all([officer, case])
        session.flush()
        session.add(Upload(id=UPLOAD, owner_id=officer.id, case_id=case.id, storage_key=f"originals/{UPLOAD}"))
        session.flush()
        item = Item(case_id=case.id, upload_id=UPLOAD, officer_id=officer.id, filename="CCTV cam 3 2026-11-28.mp4",
                    size=SIZE, storage_key=f"originals/{UPLOAD}", hashes={"sha256": SHA256, "md5": MD5, "sha1": SHA1},
                    client_sha256=SHA256, exhibit="JS/3", description="Camera 3, High Street, 28 November 21:04-21:06",
                    state="ready", kind="video", warnings=[f"re-read from {data_dir}/vault/originals/{UPLOAD}"])
        session.add(item)
        session.flush()
        work = f"{data_dir}/work/{item.id}"
        for kind, (content_type, size) in COPIES.items():
            session.add(Derivative(item_id=item.id, kind=kind, key=f"derivatives/{item.id}/{kind}",
                                   sha256=hashlib.sha256(kind.encode()).hexdigest(), size=size,
                                   content_type=content_type, method=_method(kind, work)))
        subject, upload = {"case": case.ref, "item": item.id}, {"case": case.ref, "upload": UPLOAD}
        officer_actor = f"user:{OFFICER}"

        def add(action: Action, about: dict[str, str], actor: str, details: dict[str, Any]) -> None:
            custody.record(session, action, about, actor, details)

        add(Action.CASE_CREATED, {"case": case.ref}, "operator:root@vm", {"title": "Operation Halford"})
        add(Action.UPLOAD_CREATED, upload, officer_actor, {"filename": item.filename, "size": SIZE,
                                                           "client_sha256": None, "concat": None, "partials": None})
        add(Action.CLIENT_HASH_RECORDED, upload, officer_actor, {"sha256": SHA256})
        add(Action.UPLOAD_COMPLETED, upload, officer_actor, {"size": SIZE})
        add(Action.ORIGINAL_STORED, subject, "system:transfer", {
            "received_from": officer_actor, "storage": {"backend": "local"}, "size": SIZE, "filename": item.filename,
            "client_sha256": SHA256, "write_once": "local file made read-only for the service account alone (mode"
            " 0400); not protected from the machine's administrator"})
        add(Action.ORIGINAL_HASHED, subject, worker, {"hashes": {"sha256": SHA256, "md5": MD5, "sha1": SHA1},
                                                      "size": SIZE})
        add(Action.INTEGRITY_VERIFIED, subject, worker, {"sha256": SHA256})
        for kind, (_, size) in COPIES.items():
            add(Action.DERIVATIVE_CREATED, subject, worker, {"kind": kind, "sha256": hashlib.sha256(kind.encode())
                                                             .hexdigest(), "size": size, "method": _method(kind, work)})
        links = {REVIEWER: "a1" * 16, COUNSEL: "c2" * 16}
        for to, link in links.items():
            add(Action.LINK_CREATED, {"case": case.ref, "link": link}, officer_actor, {
                "to": to, "scope": "items", "items": [item.id], "include_future": False,
                "permission": "download" if to == REVIEWER else "view", "expires_at": "2026-12-14T09:00:00+00:00",
                "max_uses": None, "passcode": to == REVIEWER, "kid": "k1"})
        by_link = {to: f"link:{link} ({to})" for to, link in links.items()}
        reviewer, on_item = by_link[REVIEWER], {**subject, "link": links[REVIEWER]}
        on_link = {"case": case.ref, "link": links[REVIEWER]}
        add(Action.LINK_ACCESSED, on_link, reviewer, {"outcome": "denied", "reason": "wrong passcode", "attempt": 1,
                                                      "locked": False, "client_ip": REVIEWER_IP,
                                                      "user_agent": "Mozilla/5.0"})
        add(Action.LINK_ACCESSED, on_link, reviewer, {"outcome": "granted", "kind": "passcode", **_who(0)})
        add(Action.LINK_ACCESSED, on_link, reviewer, {"outcome": "granted", "kind": "page", **_who(0),
                                                      "items": [item.id]})
        add(Action.LINK_ACCESSED, on_item, reviewer, {"outcome": "granted", "kind": "view", **_who(0), "copy": "proxy",
                                                      "range": {"first": 0, "last": 1_048_575}, "whole_file": False})
        add(Action.LINK_ACCESSED, on_item, reviewer, {
            "outcome": "granted", "kind": "view", "summary": True, "window": _window(0), "viewer": "v" * 16,
            "requests": 37, "first_at": "2026-11-30T10:00:04Z", "last_at": "2026-11-30T10:02:51Z",
            "user_agent": "Mozilla/5.0", "bytes_sent": 31_522_184})
        add(Action.LINK_ACCESSED, on_item, reviewer, {"outcome": "granted", "kind": "download", **_who(5),
                                                      "range": {"first": 0, "last": SIZE - 1}, "whole_file": True})
        add(Action.LINK_ACCESSED, on_item, reviewer, {"outcome": "granted", "kind": "download", **_who(10),
                                                      "range": {"first": 0, "last": 52_428_799}, "whole_file": False})
        add(Action.LINK_ACCESSED, on_item, reviewer, {
            "outcome": "granted", "kind": "download", "summary": True, "window": _window(10), "viewer": "v" * 16,
            "requests": 3, "first_at": "2026-11-30T10:10:02Z", "last_at": "2026-11-30T10:11:40Z",
            "user_agent": "Mozilla/5.0", "bytes_sent": SIZE, "ranges": [[0, SIZE - 1]], "ranges_exact": True,
            "bytes_covered": SIZE, "size": SIZE, "whole_file": True})
        counsel = {"case": case.ref, "link": links[COUNSEL]}
        add(Action.LINK_ACCESSED, counsel, by_link[COUNSEL], {"outcome": "granted", "kind": "page", **_who(20),
                                                              "items": [item.id]})
        add(Action.REPORT_EXPORTED, {**subject, "link": links[REVIEWER]}, reviewer,
            {"format": "html", "sha256": "9f" * 32, "tree_size": 30, "copy": "reviewer"})
        add(Action.LINK_REVOKED, on_link, officer_actor, {"items": [item.id], "include_future": False})
        for minute in (30, 35, 40):
            add(Action.LINK_ACCESSED, on_link, reviewer, {"outcome": "denied", "reason": "revoked", **_who(minute),
                                                          "items": [item.id]})
        add(Action.LINK_ACCESSED, on_link, reviewer, {
            "outcome": "denied", "kind": "denied", "summary": True, "window": _window(40), "viewer": "v" * 16,
            "requests": 6, "first_at": "2026-11-30T10:40:01Z", "last_at": "2026-11-30T10:44:30Z",
            "user_agent": "Mozilla/5.0", "reason": "revoked", "items": [item.id]})
        return History(item.id, data_dir, host)
