"""Hostile evidence end to end: a real ``evidence serve`` with its embedded worker, real tus
uploads, real ffmpeg, files generated in the test (``tests.support.hostile``).

- Officer B uploads lists, playlists and manifests naming officer A's original (by upload id,
  vault key, absolute path, URL, ``concat:``/``subfile:``): each is kept as it is, kind
  ``other`` with a warning, and nothing of A's footage reaches B's case.
- Image and frame bombs fail with a plain reason and the worker goes on to the next item;
  damaged files, polyglots and SVG settle (never stuck in ``processing``).
- ZIP entry names that climb out of a folder are listed as data, never followed; a zip bomb fails.
- With low limits from the environment: a memory bomb and a CPU-time budget stop their item.
- An item whose processing is cut short every time is failed, not started again on every restart.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import s3_env
from tests.support import hostile, s3
from tests.support.media import library, make_clip
from tests.support.server import Server
from tests.transcode.test_pipeline import (
    api,
    assert_inputs_fenced,
    derivative_rows,
    events,
    query,
    query_write,
    start_server,
    upload,
    wait_settled,
)
from transcode import pipeline

OFFICER_A, OFFICER_B = "a.officer@force.police.uk", "b.officer@force.police.uk"
REFUSED = "a format that refers to other files; it is kept exactly as received"
GiB = 1 << 30


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("hostile"), {"EVIDENCE_EMBEDDED_WORKER": "true"})
    try:
        yield server
    finally:
        server.stop()


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def plain(text: str, server: Server) -> None:
    """A reason or warning a person can read: no traceback, no server path or internal key."""
    assert "Traceback" not in text and str(server.root) not in text and "originals/" not in text, text


# -- 1. lists that name another case's original ------------------------------------------------


def test_lists_naming_another_cases_original_make_no_working_copy(embedded: Server, tmp_path: Path) -> None:
    token_a, token_b = embedded.token(OFFICER_A), embedded.token(OFFICER_B)
    case_a, case_b = embedded.case("OP-VICTIM", OFFICER_A), embedded.case("OP-HOSTILE", OFFICER_B)
    [(victim_item, _)] = upload(embedded, token_a, case_a, library().path("h264_aac_mp4")).values()
    [victim_row] = wait_settled(embedded, token_a, case_a, 1).values()
    assert victim_row["state"] == "ready"
    [row] = query(embedded, "SELECT storage_key FROM items WHERE id = :id", id=victim_item)
    victim = hostile.Victim(
        row["storage_key"].removeprefix("originals/"),
        embedded.data_dir / "vault" / row["storage_key"],
        f"{embedded.url}/api/v1/items/{victim_item}/derivatives/proxy",
    )
    files = hostile.recipes(victim)
    paths = write_files(tmp_path / "lists", files)
    uploaded = upload(embedded, token_b, case_b, *paths)
    items = wait_settled(embedded, token_b, case_b, len(paths), timeout=120)

    victim_bytes = {d["sha256"] for d in victim_row["derivatives"]} | {victim_row["hashes"]["sha256"]}
    for name, (item_id, _) in uploaded.items():
        item = items[name]
        # Kept exactly as received, filed as "other", with a warning saying why: never opened.
        assert (item["state"], item["kind"]) == ("ready", "other"), (name, item["reason"], item["warnings"])
        [warning] = item["warnings"]
        assert warning.startswith("no working copy: the file is ") and warning.endswith(REFUSED), (name, warning)
        plain(warning, embedded)
        assert item["derivatives"] == [] and derivative_rows(embedded, item_id) == []
        assert not (embedded.data_dir / "vault" / "derivatives" / item_id).exists()
        assert item["media"] == {}
        actions = [e["action"] for e in events(embedded, item_id)]
        assert "derivative.created" not in actions and "item.failed" not in actions
        assert item["hashes"]["sha256"] not in victim_bytes
    # A playlist is named as one, whatever its file is called.
    assert "an HLS or M3U playlist" in items["path-playlist.mp4"]["warnings"][0]
    assert "an ffconcat list" in items["id-list.h264"]["warnings"][0]
    assert "an SDP session description" in items["stream-named.ts"]["warnings"][0]
    assert "names other files or locations" in items["bare-list.avi"]["warnings"][0]
    # Nothing of A's footage in B's case, and A's item as it was.
    case_b_derivatives = query(
        embedded, "SELECT d.sha256 FROM derivatives d JOIN items i ON i.id = d.item_id JOIN cases c ON c.id = i.case_id"
        " WHERE c.ref = :ref", ref=case_b,
    )
    assert case_b_derivatives == []
    assert api(embedded, token_a, f"/api/v1/items/{victim_item}") == victim_row


@pytest.mark.s3
def test_on_s3_inputs_are_presigned_reads_over_the_endpoints_scheme_only(tmp_path: Path) -> None:
    """With the vault on S3, ffmpeg and the probe read presigned URLs: only the endpoint's
    scheme (and what it needs) is allowed, and a playlist naming another original's presigned
    URL is refused like any other list."""
    bucket = s3.new_bucket()
    scheme = bucket.endpoint.split("://")[0]
    protocols = "https,tls,tcp" if scheme == "https" else "http,tcp"
    server = start_server(tmp_path / "s3", {"EVIDENCE_EMBEDDED_WORKER": "true", **s3_env(bucket)})
    try:
        token, case = server.token(), server.case("OP-S3")
        media = library()
        # A raw stream's stills come from its proxy: the proxy is read back through a presigned URL too.
        uploaded = upload(server, token, case, media.path("raw_h264"), media.path("photo_jpg"))
        items = wait_settled(server, token, case, 2, timeout=90)
        for name, (item_id, _) in uploaded.items():
            assert items[name]["state"] == "ready", (name, items[name]["reason"])
            rows = [row for row in derivative_rows(server, item_id) if row["method"].get("tool") == "ffmpeg"]
            assert rows
            for row in rows:
                assert_inputs_fenced(row["method"]["argv"], protocols)
                assert "X-Amz" not in json.dumps(row["method"])
        raw = items[media.path("raw_h264").name]
        assert {d["kind"] for d in raw["derivatives"]} == {"probe", "proxy", "poster", "contact_sheet"}
        sheet = next(r for r in derivative_rows(server, uploaded[media.path("raw_h264").name][0]) if r["kind"] == "contact_sheet")
        assert pipeline.PROXY_INPUT in sheet["method"]["argv"]

        # The victim's own presigned URL, as a playlist entry.
        from evidence.runtime import Runtime
        from evidence.settings import Settings

        rt = Runtime.build(Settings(data_dir=server.data_dir, **{
            "storage_url": s3_env(bucket)["EVIDENCE_STORAGE_URL"], "s3_access_key": bucket.access_key,
            "s3_secret_key": bucket.secret_key,
        }))
        try:
            [row] = query(server, "SELECT storage_key FROM items WHERE id = :id", id=uploaded[media.path("raw_h264").name][0])
            presigned = rt.vault.tool_input(row["storage_key"])
        finally:
            rt.close()
        lists = write_files(tmp_path / "lists", {"signed.m3u8": hostile.hls(presigned), "signed.ffconcat": hostile.ffconcat(presigned)})
        more = upload(server, token, case, *lists)
        items = wait_settled(server, token, case, 4, timeout=60)
        for name in more:
            assert (items[name]["state"], items[name]["kind"], items[name]["derivatives"]) == ("ready", "other", [])
            assert items[name]["warnings"][0].endswith(REFUSED)
    finally:
        server.stop()


# -- 2. bombs, damage, polyglots: each settles, the worker goes on ------------------------------


def test_bombs_fail_plainly_and_everything_settles(embedded: Server, tmp_path: Path) -> None:
    token = embedded.token(OFFICER_B)
    case = embedded.case("OP-BOMBS", OFFICER_B)
    mp4 = hostile.small_mp4()
    jpeg = library().path("photo_jpg").read_bytes()
    files = {
        "bomb.png": hostile.png_bomb(30000, 30000),
        "bomb.jpg": hostile.jpeg_bomb(30000, 30000),
        "dvr-export.avi": hostile.lying_mjpeg_avi(8000, 8000),
        "corrupt.avi": hostile.corrupt(hostile.small_clip("avi")),
        "truncated.mkv": hostile.small_clip("matroska")[:3000],
        "drawing.svg": hostile.svg("file:///etc/passwd"),
        "page.html": hostile.svg_html_polyglot(f"{embedded.url}/api/v1/cases"),
        "archive-then-video.zip": hostile.zip_then_mp4(mp4),
        "video-then-archive.mp4": hostile.mp4_then_zip(mp4),
        "frame%03d.jpg": jpeg,  # named like an image-sequence pattern: still one photo
        "after the bombs.avi": hostile.small_clip("avi"),  # last: the worker must still be serving
    }
    uploaded = upload(embedded, token, case, *write_files(tmp_path / "bombs", files))
    items = wait_settled(embedded, token, case, len(files), timeout=120)

    for name in ("bomb.png", "bomb.jpg"):
        assert items[name]["state"] == "failed"
        assert items[name]["reason"] == (
            "the image is 30000x30000 pixels (900 megapixels), more than the 100 megapixels allowed: not decoded"
        )
    lying = items["dvr-export.avi"]
    assert lying["state"] == "failed", lying
    assert lying["reason"] == (
        "its frames are 8000x8000 pixels (64 megapixels), more than the 33.2 megapixels allowed: not decoded"
    )
    for name in ("drawing.svg", "page.html"):
        assert (items[name]["state"], items[name]["kind"]) == ("ready", "other")
        assert items[name]["warnings"] == [
            f"no working copy: the file is an SVG image (SVG can load other files), {REFUSED}"
        ]
    assert items["frame%03d.jpg"]["state"] == "ready" and items["frame%03d.jpg"]["kind"] == "image"
    assert {d["kind"] for d in items["frame%03d.jpg"]["derivatives"]} == {"probe", "view", "thumbnail"}
    after = items["after the bombs.avi"]
    assert after["state"] == "ready" and {d["kind"] for d in after["derivatives"]} >= {"proxy", "poster", "probe"}
    # ZIP first: an archive (listed, or refused as unreadable); MP4 first: its own video.
    first_zip = items["archive-then-video.zip"]
    assert first_zip["kind"] in ("archive", None) and "proxy" not in {d["kind"] for d in first_zip["derivatives"]}
    first_mp4 = items["video-then-archive.mp4"]
    assert first_mp4["state"] == "ready" and first_mp4["kind"] == "video"

    for name, (item_id, _) in uploaded.items():
        item = items[name]
        assert item["state"] in ("ready", "failed"), (name, item)
        plain(item["reason"] or "", embedded)
        for warning in item["warnings"]:
            plain(warning, embedded)
        if item["state"] == "failed":
            assert item["derivatives"] == [] or all(d["kind"] == "probe" for d in item["derivatives"])
        for row in derivative_rows(embedded, item_id):
            if row["method"].get("tool") == "ffmpeg":
                assert_inputs_fenced(row["method"]["argv"])
    # Every child's CPU time is on its item's account.
    [used] = query(embedded, "SELECT cpu_seconds FROM items WHERE id = :id", id=uploaded["after the bombs.avi"][0])
    assert used["cpu_seconds"] > 0


def test_zip_entry_names_are_data_and_zip_bombs_are_refused(embedded: Server, tmp_path: Path) -> None:
    """A phone extraction is listed and hashed, never extracted: entry names that climb out of
    any folder (``..``, absolute, Windows separators) are recorded as given and nothing is
    written where they point; a zip bomb fails its item with a plain reason."""
    token = embedded.token(OFFICER_B)
    case = embedded.case("OP-ZIPS", OFFICER_B)
    marker = f"evidence-zip-{os.getpid()}-{time.monotonic_ns()}"
    climbing = [f"../../../../../../tmp/{marker}/passwd", f"/tmp/{marker}/absolute", f"..\\..\\{marker}\\win.txt",
                f"DCIM/../../{marker}.jpg", "DCIM/IMG_0001.jpg"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number, name in enumerate(climbing):
            archive.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 12, 0, 0)), f"entry {number}".encode())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("zeros.bin", "w") as entry:
        for _ in range(64):
            entry.write(bytes(1 << 20))  # 64 MiB of zeros in about 64 KB: over 1000:1
    files = {"extraction.zip": buffer.getvalue(), "bomb.zip": bomb.getvalue()}
    upload(embedded, token, case, *write_files(tmp_path / "zips", files))
    items = wait_settled(embedded, token, case, len(files), timeout=60)

    extraction = items["extraction.zip"]
    assert (extraction["state"], extraction["kind"]) == ("ready", "archive"), extraction
    [manifest] = [d for d in extraction["derivatives"] if d["kind"] == "manifest"]
    listed = api(embedded, token, manifest["url"].removeprefix(embedded.url))
    assert [entry["path"] for entry in listed["entries"]] == climbing  # as given, byte for byte
    for number, entry in enumerate(listed["entries"]):
        assert entry["sha256"] == hashlib.sha256(f"entry {number}".encode()).hexdigest()
    assert not Path(f"/tmp/{marker}").exists() and not Path(f"/tmp/{marker}.jpg").exists()
    assert not list(embedded.root.rglob(f"*{marker}*"))  # nothing extracted anywhere under the server

    refused = items["bomb.zip"]
    assert refused["state"] == "failed" and refused["reason"].startswith("archive refused:"), refused
    assert "zip bomb?" in refused["reason"] and refused["derivatives"] == []
    plain(refused["reason"], embedded)


# -- 3. low limits from the environment ---------------------------------------------------------


def test_memory_and_cpu_bounds_stop_their_item_only(tmp_path: Path) -> None:
    server = start_server(tmp_path / "bounded", {
        "EVIDENCE_EMBEDDED_WORKER": "true",
        "EVIDENCE_DECODER_MEMORY_BYTES": str(GiB),
        "EVIDENCE_MAX_IMAGE_PIXELS": "300000000",  # let the 256-megapixel bomb past the pixel limit
        "EVIDENCE_CPU_BUDGET_BASE_SECONDS": "1",
        "EVIDENCE_CPU_BUDGET_PER_MEDIA_SECOND": "0.01",
    })
    try:
        token, case = server.token(), server.case("OP-BOUNDS")
        bomb = tmp_path / "scan.png"
        bomb.write_bytes(hostile.png_bomb(16000, 16000, color=6, depth=16))  # 2 GB decoded, 300 bytes stored
        clip = make_clip(tmp_path / "DVR ch1.avi", 6, "1280x720")  # about 2 s of CPU to transcode
        photo = library().path("photo_jpg")
        uploaded = upload(server, token, case, bomb, clip, photo)
        items = wait_settled(server, token, case, 3, timeout=90)

        assert items[bomb.name]["state"] == "failed"
        assert items[bomb.name]["reason"] == "stopped: needed more than 1 GiB of memory (probing the file)"
        assert items[clip.name]["state"] == "failed"
        assert items[clip.name]["reason"] == "stopped: used its CPU-time budget of 1 s (making the proxy)"
        [row] = query(server, "SELECT cpu_seconds FROM items WHERE id = :id", id=uploaded[clip.name][0])
        assert 1 <= row["cpu_seconds"] < 1.06 + 4  # the budget, at most its last second and the grace beyond
        assert items[photo.name]["state"] == "ready"  # the worker, and the next item, carry on
        assert {d["kind"] for d in items[photo.name]["derivatives"]} == {"probe", "view", "thumbnail"}
        failed = [e for e in events(server) if e["action"] == "item.failed"]
        assert sorted(e["details"]["reason"] for e in failed) == sorted(
            items[name]["reason"] for name in (bomb.name, clip.name)
        )
    finally:
        server.stop()


# -- 4. never stuck, never started for ever -----------------------------------------------------


def kill_everything(server: Server) -> None:
    """SIGKILL to the server, its worker and their children: a power cut."""
    root = psutil.Process(server.pid)
    family = [root, *root.children(recursive=True)]
    for process in family:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)
    assert server.process is not None
    server.process.wait()
    server.process = None


def transcoding(server: Server) -> bool:
    try:
        children = psutil.Process(server.pid).children(recursive=True)
        return any("proxy.mp4" in " ".join(child.cmdline()) for child in children)
    except psutil.NoSuchProcess:
        return False


def test_an_item_interrupted_every_time_is_failed_not_restarted_for_ever(tmp_path: Path) -> None:
    server = start_server(tmp_path / "poison", {"EVIDENCE_EMBEDDED_WORKER": "true", "EVIDENCE_MAX_PROCESSING_ATTEMPTS": "1"})
    try:
        token, case = server.token(), server.case("OP-POISON")
        clip = make_clip(tmp_path / "long export.avi", 12, "640x480")  # a second or two to transcode
        [(item_id, _)] = upload(server, token, case, clip).values()
        deadline = time.monotonic() + 60
        while not transcoding(server):
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.05)
        kill_everything(server)  # mid-transcode, as if the file had killed its worker
        [row] = query(server, "SELECT state, attempts FROM items WHERE id = :id", id=item_id)
        assert (row["state"], row["attempts"]) == ("processing", 1)

        for _ in range(2):  # restarted twice: failed at the first, left alone at the second
            server.start()
            item = wait_settled(server, token, case, 1, timeout=30)[clip.name]
            assert item["state"] == "failed"
            assert item["reason"] == (
                "processing stopped after 1 attempt: each was interrupted before it finished"
                " (the worker stopped or crashed while processing this file)"
            )
            assert [e["action"] for e in events(server, item_id)].count("item.failed") == 1
            [row] = query(server, "SELECT attempts FROM items WHERE id = :id", id=item_id)
            assert row["attempts"] == 1  # not started again
            assert "proxy" not in {d["kind"] for d in item["derivatives"]}
            server.stop()
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
def test_an_unexpected_error_in_a_step_or_a_task_fails_the_item(embedded: Server) -> None:
    """The handlers themselves, on real items in the server's database: an exception no step
    expected fails the item with a plain reason (the traceback goes to the log), and a task that
    gave up (retries exhausted) fails its item instead of leaving it ``processing``."""
    from sqlalchemy.exc import OperationalError

    from evidence.runtime import Runtime
    from evidence.settings import Settings
    from transcode import tasks
    from transcode.app import make_celery

    token = embedded.token(OFFICER_B)
    case = embedded.case("OP-ERRORS", OFFICER_B)
    media = library()
    uploaded = upload(embedded, token, case, media.path("no_audio_mp4"), media.path("photo_jpg"))
    wait_settled(embedded, token, case, 2)
    step_item, task_item = (item_id for item_id, _ in uploaded.values())
    for item_id in (step_item, task_item):
        query_write(embedded, "UPDATE items SET state = 'processing' WHERE id = :id", id=item_id)

    settings = Settings(data_dir=embedded.data_dir)
    rt = Runtime.build(settings)
    try:
        def step(item: Any) -> None:
            raise KeyError("codec_context")

        pipeline._media_step(rt, step_item, step, "making the proxy")
    finally:
        rt.close()
    app = make_celery(settings)
    database_down = OperationalError("SELECT 1", {}, ConnectionRefusedError("db.internal:5432 refused"))
    tasks.make_proxy.on_failure(database_down, "task-id", [task_item], {}, None)
    app.runtime().close()

    shown = {item["id"]: item for item in api(embedded, token, f"/api/v1/items?case={case}")}
    assert shown[step_item]["state"] == "failed"
    assert shown[step_item]["reason"] == "making the proxy failed: an unexpected error (KeyError); the worker's log has the details"
    assert shown[task_item]["state"] == "failed"
    assert shown[task_item]["reason"] == "processing stopped after 1 attempt: the database could not be reached"
    for item_id in (step_item, task_item):
        failed = [e for e in events(embedded, item_id) if e["action"] == "item.failed"]
        assert len(failed) == 1 and "db.internal" not in json.dumps(failed)
    assert os.environ.get("EVIDENCE_DATA_DIR") != str(embedded.data_dir)  # nothing leaked into this process's env
