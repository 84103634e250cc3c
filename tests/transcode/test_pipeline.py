"""The processing pipeline end to end: real servers, real tus uploads (`evidence upload`,
tuspy), real ffmpeg, Celery on the embedded SQLite broker and on Redis, workers killed
with SIGKILL mid-transcode. Nothing is mocked.

Media comes from ``tests.support.media`` (2 s clips); only the SIGKILL test makes a
longer clip, so that a transcode is still running when the worker is killed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from sqlalchemy import create_engine, text
from tusclient.client import TusClient

from tests.support.files import sha256_of
from tests.support.media import RAW_RATE, VFR_FRAMES, library, make_clip
from tests.support.server import ADMIN, EVIDENCE, Server
from transcode import formats, pipeline
from transcode.app import make_celery
from transcode.ffmpeg import resolve_ffmpeg
from transcode.probe import probe, summarise
from transcode.steps import Step

SETTLED = ("ready", "failed", "quarantined")
REDIS_URL = os.environ.get("EVIDENCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
STEPS = [step for step in Step if step not in (Step.HASH_ORIGINAL, Step.PROBE_ORIGINAL)]
FFMPEG_KINDS = ("proxy", "poster", "contact_sheet", "thumbnail", "hls", "view", "audio")
SIGKILL_SECONDS = 20  # long enough that the proxy takes seconds to make, so it can be interrupted


# -- servers, uploads, polling --------------------------------------------------------------


def start_server(root: Path, env: dict[str, str]) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    return Server(root, env).start()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The embedded mode as `make run` starts it: SQLite, local vault, SQLite broker and the
    worker child that `evidence serve` starts."""
    server = start_server(tmp_path_factory.mktemp("embedded"), {"EVIDENCE_EMBEDDED_WORKER": "true"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def officer(embedded: Server) -> str:
    return embedded.token()


def upload(server: Server, token: str, case: str, *paths: Path, framerate: str | None = None) -> dict[str, tuple[str, str]]:
    """`evidence upload`; returns {file name: (item id, the client's SHA-256)}."""
    extra = ["--framerate", framerate] if framerate else []
    out = server.cli("upload", *map(str, paths), "--case", case, "--server", server.url, "--token", token, *extra).stdout
    found = {}
    for line in out.splitlines():
        item_id, sha256, path = line.split(maxsplit=2)
        found[Path(path).name] = (item_id, sha256)
    assert len(found) == len(paths), out
    return found


def api(server: Server, token: str, path: str) -> Any:
    response = requests.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_settled(server: Server, token: str, case: str, count: int, timeout: float = 90) -> dict[str, dict[str, Any]]:
    """Poll the case's items (one API call per round) until all ``count`` are settled;
    returns {filename: item}."""
    deadline = time.monotonic() + timeout
    while True:
        items = api(server, token, f"/api/v1/items?case={case}")
        if len(items) == count and all(item["state"] in SETTLED for item in items):
            return {item["filename"]: item for item in items}
        if time.monotonic() > deadline:
            states = {item["filename"]: (item["state"], item["progress"]) for item in items}
            raise AssertionError(f"not settled after {timeout} s: {states}\n{server.log.read_text()[-4000:]}")
        time.sleep(0.3)


def show(server: Server, item_id: str) -> dict[str, Any]:
    return json.loads(server.cli("items", "show", item_id, "--json", token=server.token(ADMIN, "admin")).stdout)  # type: ignore[no-any-return]


def wait_shown(server: Server, item_id: str, timeout: float = 60) -> dict[str, Any]:
    """`evidence items show ID --json` once the item is settled (polled from the database meanwhile)."""
    try:
        return server.settled_item(item_id, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}:\n{server.log.read_text()[-4000:]}") from error


def download(server: Server, token: str, item_id: str, kind: str, dest: Path) -> Path:
    response = requests.get(
        f"{server.url}/api/v1/items/{item_id}/derivatives/{kind}",
        headers={"Authorization": f"Bearer {token}"}, timeout=30, stream=True,
    )
    assert response.status_code == 200, response.text
    with open(dest, "wb") as out:
        for block in response.iter_content(1024 * 1024):
            out.write(block)
    # The same bytes by Range, as a player seeking in a long proxy asks for them.
    size = dest.stat().st_size
    if size > 100:
        part = requests.get(
            f"{server.url}/api/v1/items/{item_id}/derivatives/{kind}",
            headers={"Authorization": f"Bearer {token}", "Range": "bytes=10-99"}, timeout=30,
        )
        assert part.status_code == 206 and part.headers["Content-Range"] == f"bytes 10-99/{size}"
        assert part.content == dest.read_bytes()[10:100]
    return dest


# -- the database behind a server -----------------------------------------------------------


def database_url(server: Server) -> str:
    return server.env.get("EVIDENCE_DATABASE_URL") or f"sqlite:///{server.data_dir / 'evidence.db'}"


def query(server: Server, sql: str, **params: Any) -> list[dict[str, Any]]:
    url = database_url(server)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()
    for row in rows:
        for key in ("subject", "details", "hashes", "method"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return rows


def events(server: Server, item_id: str | None = None) -> list[dict[str, Any]]:
    """Custody events, in order (of one item, when given)."""
    rows = query(server, "SELECT seq, action, subject, details FROM custody_events ORDER BY seq")
    return [row for row in rows if item_id is None or row["subject"].get("item") == item_id]


def derivative_rows(server: Server, item_id: str) -> list[dict[str, Any]]:
    return query(server, "SELECT kind, key, sha256, method FROM derivatives WHERE item_id = :id", id=item_id)


def assert_custody(server: Server, item: dict[str, Any]) -> None:
    """The item's custody: hashed, verified, one `derivative.created` per working copy (with the
    exact ffmpeg version and a repeatable argument list), and nothing recorded twice."""
    found = events(server, item["id"])
    actions = Counter(event["action"] for event in found)
    assert actions["original.hashed"] == 1
    assert actions["integrity.verified"] == 1
    hashed = next(e for e in found if e["action"] == "original.hashed")
    assert hashed["details"]["hashes"] == item["hashes"]
    assert "storage_key" not in hashed["details"]  # where it is stored is not the record's business
    created = {e["details"]["kind"]: e["details"] for e in found if e["action"] == "derivative.created"}
    assert actions["derivative.created"] == len(created) == len(item["derivatives"])
    version = resolve_ffmpeg().version
    for made in item["derivatives"]:
        details = created[made["kind"]]
        assert details["sha256"] == made["sha256"] and details["size"] == made["size"]
        method = details["method"]
        if made["kind"] in FFMPEG_KINDS:
            assert method["tool"] == "ffmpeg" and method["version"] == version
            argv = method["argv"]
            assert argv[0] == "ffmpeg"
            assert_inputs_fenced(argv)
            for arg in argv:
                # Nothing that only existed on one worker, nothing that expires or signs.
                assert str(server.root) not in arg and "/tmp" not in arg and "work-" not in arg, argv
                assert "X-Amz" not in arg and "Signature" not in arg and "://" not in arg, argv
    assert_no_duplicates(found)


def assert_inputs_fenced(argv: list[str], protocols: str = "file") -> None:
    """Every input of a recorded command is named by what it is (the original, or the proxy a
    still or HLS was cut from), with its demuxer named from the allow-list and only the vault's
    ``protocols`` allowed."""
    begin, inputs = 0, 0
    for i, arg in enumerate(argv):
        if arg != "-i":
            continue
        inputs += 1
        options = argv[begin:i]
        assert argv[i + 1] in (pipeline.ORIGINAL, pipeline.PROXY_INPUT), argv
        demuxer = options[options.index("-f") + 1]
        assert demuxer in formats.ALLOWED, argv
        assert options[options.index("-format_whitelist") + 1] == demuxer, argv
        assert options[options.index("-protocol_whitelist") + 1] == protocols, argv
        assert "-max_pixels" in options, argv
        begin = i + 2
    assert inputs >= 1, argv


def assert_no_duplicates(found: list[dict[str, Any]]) -> None:
    seen = Counter(json.dumps([e["action"], e["subject"], e["details"]], sort_keys=True) for e in found)
    assert [key for key, n in seen.items() if n > 1] == []


def vault_file(server: Server, item_id: str) -> Path:
    [row] = query(server, "SELECT storage_key FROM items WHERE id = :id", id=item_id)
    return server.data_dir / "vault" / row["storage_key"]


# -- checking a proxy -------------------------------------------------------------------------


def top_level_boxes(path: Path) -> list[bytes]:
    kinds = []
    with open(path, "rb") as stream:
        while header := stream.read(8):
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            kinds.append(kind)
            if size == 0:
                break
            if size == 1:
                size = int.from_bytes(stream.read(8), "big") - 8
            stream.seek(size - 8, 1)
    return kinds


def video_stream(data: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in data["streams"] if s["codec_type"] == "video")


def video_packets(path: Path, input_format: str | None = None) -> int:
    import av

    with av.open(str(path), format=input_format) as container:
        return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)


def check_proxy(path: Path, *, frames: int | None, duration: float | None, frame_rate: float) -> dict[str, Any]:
    data = probe(str(path))
    summary = summarise(data)
    stream = video_stream(data)
    assert summary["container"] == "mp4" and summary["video_codec"] == "h264"
    assert summary["pix_fmt"] == "yuv420p"
    assert summary["width"] % 2 == 0 and summary["height"] % 2 == 0
    assert "side_data_list" not in stream  # no rotation left for players to get wrong
    boxes = top_level_boxes(path)
    assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes  # faststart: plays while downloading
    if frames is not None:
        assert video_packets(path) == frames
    if duration is not None:
        assert abs(float(stream["duration"]) - duration) <= 1 / frame_rate + 1e-3, (stream["duration"], duration)
    return summary


def original_video(path: Path, input_format: str | None = None) -> tuple[float | None, float]:
    """(video stream duration, frame rate) of an original as ffmpeg sees it."""
    data = probe(str(path), input_format=input_format)
    stream = video_stream(data)
    summary = summarise(data)
    return (float(stream["duration"]) if stream.get("duration") else None), summary["frame_rate"]


# -- test files -------------------------------------------------------------------------------

# A phone extraction: nested folders, an empty folder, compressed and stored entries.
EXTRACTION = [
    ("DCIM/", b""),
    ("DCIM/Camera/IMG_20240301_123456.jpg", bytes(range(256)) * 64),
    ("DCIM/Camera/VID_20240301_123500.txt", b"not really a video\n" * 50),
    ("WhatsApp/Media/WhatsApp Voice Notes/202409/PTT-20240901-WA0001.opus", os.urandom(3000)),
    ("WhatsApp/Databases/msgstore.db", b"SQLite format 3\x00" + b"\x00" * 8000),
    ("Notes/empty/", b""),
    ("report.txt", "Extraction report — handset 1\n".encode()),
]


def write_extraction(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path, "w") as archive:
        for number, (name, data) in enumerate(EXTRACTION):
            method = zipfile.ZIP_STORED if number % 2 or name.endswith("/") else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 12, 0, 0)), data, compress_type=method)
    return {name: hashlib.sha256(data).hexdigest() for name, data in EXTRACTION if not name.endswith("/")}


def write_bomb(path: Path, mib: int = 16) -> None:
    """One entry of zeros, deflated at level 9: past 1000:1, refused before it is expanded."""
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive, archive.open(
        "zeros.bin", "w"
    ) as entry:
        for _ in range(mib):
            entry.write(zeros)



# -- 1. the officer's story, embedded mode --------------------------------------------------


def test_cctv_phone_clip_and_extraction_end_ready_and_verified(embedded: Server, officer: str, tmp_path: Path) -> None:
    case = embedded.case("OP-STORY")
    media = library()
    cctv, phone = media.path("h264_aac_mp4"), media.path("h263_amr_3gp")
    extraction = tmp_path / "handset 1 extraction.zip"
    entry_hashes = write_extraction(extraction)
    uploaded = upload(embedded, officer, case, cctv, phone, extraction)

    items = {name: wait_shown(embedded, item_id) for name, (item_id, _) in uploaded.items()}
    for name, item in items.items():
        assert item["state"] == "ready", (name, item["reason"])
        assert item["hashes"]["sha256"] == item["client_sha256"] == uploaded[name][1]
        assert item["reason"] is None and item["progress"] == 100.0
        assert item == api(embedded, officer, f"/api/v1/items/{item['id']}")  # the CLI shows what the API serves
        assert_custody(embedded, item)

    for name in (cctv.name, phone.name):
        item = items[name]
        assert item["kind"] == "video"
        assert {d["kind"] for d in item["derivatives"]} == {"proxy", "poster", "contact_sheet", "probe"}
        source = cctv if name == cctv.name else phone
        duration, rate = original_video(source)
        proxy = download(embedded, officer, item["id"], "proxy", tmp_path / f"{name}.proxy.mp4")
        assert sha256_of(proxy) == next(d["sha256"] for d in item["derivatives"] if d["kind"] == "proxy")
        summary = check_proxy(proxy, frames=media.frames("h264_aac_mp4" if source == cctv else "h263_amr_3gp"),
                              duration=duration, frame_rate=rate)
        assert summary["audio_codec"] == "aac"
        method = next(d["method"] for d in item["derivatives"] if d["kind"] == "proxy")
        assert method["remux"] is (source == cctv)  # H.264/AAC MP4 is copied; the 3GP is encoded
        assert ("-c" in method["argv"] and method["argv"][method["argv"].index("-c") + 1] == "copy") or not method["remux"]
        probe_json = json.loads(download(embedded, officer, item["id"], "probe", tmp_path / "probe.json").read_bytes())
        assert probe_json["format"]["filename"] == name  # not the vault path it was read from

    item = items[extraction.name]
    assert item["kind"] == "archive"
    # Previews too: an empty list, as the one ".jpg" holds no picture (looked at by its bytes).
    assert [d["kind"] for d in item["derivatives"]] == ["manifest", "previews"]
    index = json.loads(download(embedded, officer, item["id"], "previews", tmp_path / "previews.json").read_bytes())
    assert (index["previews"], index["skipped"]) == ([], [])
    manifest = json.loads(download(embedded, officer, item["id"], "manifest", tmp_path / "manifest.json").read_bytes())
    listed = {entry["path"]: entry for entry in manifest["entries"]}
    assert list(listed) == [name for name, _ in EXTRACTION]
    for name, data in EXTRACTION:
        assert listed[name]["size"] == len(data)
        assert listed[name]["sha256"] == entry_hashes.get(name)  # None for folders


# -- 2. the media matrix --------------------------------------------------------------------

# name: (expected state, kind, derivatives (ready only), words in the reason or a warning)
MATRIX: dict[str, tuple[str, str | None, set[str], str | None]] = {
    "mpeg4_mp3_avi": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "mjpeg_mulaw_avi": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "h263_amr_3gp": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "mpeg2_ps": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "hevc_mp4": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "raw_h264_untimed": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, "frame rate assumed 25:"),
    "vfr_mp4": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "rotated_mp4": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "no_audio_mp4": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, None),
    "truncated_mp4": ("ready", "video", {"proxy", "poster", "contact_sheet", "probe"}, "truncated"),
    "truncated_moov_last_mp4": ("failed", None, set(), "not readable as media"),
    "empty": ("failed", None, set(), "empty"),
    "not_media": ("ready", "other", set(), None),
    "photo_jpg": ("ready", "image", {"view", "thumbnail", "probe"}, None),
}


def test_media_matrix(embedded: Server, officer: str, tmp_path: Path) -> None:
    media = library()
    case = embedded.case("OP-MATRIX")
    files = {name: media.path(name) for name in MATRIX}
    fake = tmp_path / "interview.mp4"  # named like a video, but it is not one
    fake.write_bytes(b"This is a typed statement, not a video.\n" * 100)
    bomb = tmp_path / "extraction.zip"
    write_bomb(bomb)
    uploaded = upload(embedded, officer, case, *files.values(), fake, bomb)
    # The same raw stream again, this time with the recorder's rate given by the officer.
    raw_case = embedded.case("OP-MATRIX-RAW")
    timed = upload(embedded, officer, raw_case, media.path("raw_h264_untimed"), framerate=str(RAW_RATE))

    items = wait_settled(embedded, officer, case, len(uploaded))
    [raw_item] = wait_settled(embedded, officer, raw_case, 1).values()
    assert [raw_item["id"]] == [item_id for item_id, _ in timed.values()]
    for name, (state, kind, made, words) in MATRIX.items():
        item = items[files[name].name]
        assert (item["state"], item["kind"]) == (state, kind), (name, item["reason"], item["warnings"])
        assert {d["kind"] for d in item["derivatives"]} == made, name
        said = " ".join([item["reason"] or "", *item["warnings"]])
        if words:
            assert words in said, (name, said)
        elif state == "ready":
            assert item["warnings"] == [] and item["reason"] is None, (name, said)
    assert items[fake.name]["state"] == "failed" and "not readable as media" in items[fake.name]["reason"]
    assert items[fake.name]["derivatives"] == []
    assert items[bomb.name]["state"] == "failed" and "archive refused" in items[bomb.name]["reason"]
    assert "zip bomb" in items[bomb.name]["reason"]
    assert raw_item["state"] == "ready" and raw_item["warnings"] == []
    assert raw_item["media"]["frame_rate"] == RAW_RATE

    # Every item, failed or not, keeps its original and hashes; failures say so in custody.
    for item in [*items.values(), raw_item]:
        stored = vault_file(embedded, item["id"])
        assert stored.exists() and sha256_of(stored) == item["hashes"]["sha256"] == item["client_sha256"]
        failed = [e for e in events(embedded, item["id"]) if e["action"] == "item.failed"]
        assert len(failed) == (item["state"] == "failed")
        if failed:
            assert failed[0]["details"]["reason"] == item["reason"]
            assert item["progress"] is None
        else:
            assert_custody(embedded, item)

    def proxy_of(item: dict[str, Any]) -> Path:
        return download(embedded, officer, item["id"], "proxy", tmp_path / f"{item['id']}.mp4")

    # Each proxy: H.264 yuv420p, moov first, every frame kept, the same duration (one frame slack).
    for name in [n for n, (state, kind, _, _) in MATRIX.items() if kind == "video"]:
        item = items[files[name].name]
        raw = "h264" if name.startswith("raw_") else None
        duration, rate = original_video(files[name], raw)
        frames = media.frames(name)
        if name == "raw_h264_untimed":
            duration, rate = frames / 25, 25.0  # ffmpeg's assumption, as the warning says
        proxy = proxy_of(item)
        if name == "truncated_mp4":
            # Remuxed as it is: the packets that survived the cut, the last one perhaps partial.
            assert 0 <= video_packets(proxy) - item["media"]["decoded_frames"] <= 1
            frames = duration = None
        summary = check_proxy(proxy, frames=frames, duration=duration, frame_rate=rate)
        assert (summary["audio_codec"] == "aac") is (item["media"]["audio_codec"] is not None), name
        if name == "rotated_mp4":
            assert item["media"]["rotation"] == 90
            assert (summary["width"], summary["height"]) == (item["media"]["height"], item["media"]["width"])
        if name == "vfr_mp4":
            assert frames == VFR_FRAMES
    check_proxy(proxy_of(raw_item), frames=media.frames("raw_h264_untimed"), duration=2.0, frame_rate=RAW_RATE)


# -- 3. quarantine ----------------------------------------------------------------------------


def test_a_hash_that_differs_from_the_officers_quarantines_the_item(embedded: Server, officer: str) -> None:
    case = embedded.case("OP-QUARANTINE")
    data = library().path("h264_aac_mp4").read_bytes()
    claimed = hashlib.sha256(data + b"the bytes the officer hashed").hexdigest()
    uploader = TusClient(f"{embedded.url}/files/", headers={"Authorization": f"Bearer {officer}"}).uploader(
        file_stream=io.BytesIO(data), chunk_size=64 * 1024,
        metadata={"filename": "CCTV 02.mp4", "case": case, "sha256": claimed},
    )
    uploader.upload()
    [item] = wait_settled(embedded, officer, case, 1).values()
    assert item["state"] == "quarantined"
    assert item["client_sha256"] == claimed and item["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert claimed in item["reason"]
    assert item["derivatives"] == [] and derivative_rows(embedded, item["id"]) == []
    found = events(embedded, item["id"])
    actions = [e["action"] for e in found]
    assert actions.count("integrity.mismatch") == 1 and "integrity.verified" not in actions
    assert "derivative.created" not in actions
    mismatch = next(e for e in found if e["action"] == "integrity.mismatch")
    assert mismatch["details"]["client_sha256"] == claimed
    assert mismatch["details"]["stored_sha256"] == item["hashes"]["sha256"]
    assert sha256_of(vault_file(embedded, item["id"])) == item["hashes"]["sha256"]  # kept as received


# -- 6. idempotency -------------------------------------------------------------------------------


# kombu's SQLAlchemy transport (the embedded broker) declares its models with `noload`,
# deprecated in SQLAlchemy 2.1; harmless, and not ours to change.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
def test_every_step_run_again_changes_nothing(embedded: Server, officer: str) -> None:
    """A redelivered task (Celery's acks_late) must not make a second working copy or a
    second custody event: each step, called again directly and sent again through the broker."""
    case = embedded.case("OP-AGAIN")
    media = library()
    names = ("h264_aac_mp4", "raw_h264", "photo_jpg", "not_media", "empty")
    uploaded = upload(embedded, officer, case, *(media.path(n) for n in names))
    items = wait_settled(embedded, officer, case, len(names))
    ids = [item_id for item_id, _ in uploaded.values()]

    def snapshot() -> tuple[list[Any], list[Any], list[Any]]:
        made = sorted((d["kind"], d["key"], d["sha256"]) for i in ids for d in derivative_rows(embedded, i))
        logged = [(e["seq"], e["action"]) for e in events(embedded) if e["subject"].get("item") in ids]
        states = [(i["id"], i["state"], i["warnings"], i["reason"]) for i in api(embedded, officer, f"/api/v1/items?case={case}")]
        return made, logged, states

    before = snapshot()
    from evidence.runtime import Runtime
    from evidence.settings import Settings

    rt = Runtime.build(Settings(data_dir=embedded.data_dir))
    try:
        for item_id in ids:
            for _ in range(2):
                assert pipeline.hash_original(rt, item_id) is False
                assert pipeline.probe_original(rt, item_id) is None
                for name in STEPS:
                    getattr(pipeline, name)(rt, item_id)
        assert snapshot() == before

        # Redelivery before the item was finished: rewind a finished video to `processing`
        # (as it was while its steps ran) and run every step again, twice.
        video = items[media.path("h264_aac_mp4").name]["id"]
        for _ in range(2):
            query_write(embedded, "UPDATE items SET state = 'processing' WHERE id = :id", id=video)
            assert pipeline.hash_original(rt, video) is True
            planned = pipeline.probe_original(rt, video)
            assert planned == pipeline.PLAN["video"]
            for name in [*planned, "finish_item"]:  # what the chain would run again
                getattr(pipeline, name)(rt, video)
        assert snapshot() == before  # finish_item made it `ready` again, nothing else changed
    finally:
        rt.close()

    # And through the broker, to the embedded worker: every task, for every item.
    app = make_celery(Settings(data_dir=embedded.data_dir))
    # By the names queued messages carry ("evidence.<step>"), never renamed. A task for a
    # settled item is acknowledged as ignored (its chain not carried on).
    sent = [app.send_task(f"evidence.{step}", args=[i], queue=step.queue).id for step in Step for i in ids]
    deadline = time.monotonic() + 60
    while not all(f"[{task_id}] succeeded" in (log := embedded.log.read_text()) or f"[{task_id}] ignored" in log
                  for task_id in sent):
        assert time.monotonic() < deadline, "the worker did not run the tasks sent again"
        time.sleep(0.3)
    assert snapshot() == before


def query_write(server: Server, sql: str, **params: Any) -> None:
    url = database_url(server)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


# -- 4, 5. Celery on Redis, production style ---------------------------------------------------


def redis_or_skip() -> str:
    """A flushed Redis database for the broker; skip loudly without one (fail under CI)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except Exception as error:  # ImportError or any connection error: both mean "no Redis here"
        message = f"Redis is not usable at {REDIS_URL}: {type(error).__name__}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip("SKIPPING REDIS TESTS: " + message)
    return REDIS_URL


class Worker:
    """`evidence worker` in its own process, as production runs it."""

    def __init__(self, server: Server, name: str) -> None:
        self.log = server.root / f"worker-{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([EVIDENCE, "worker"], env=server.env, stdout=log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)

    def pool_children(self) -> list[psutil.Process]:
        return self.ps.children()

    def transcoding(self) -> tuple[psutil.Process, psutil.Process] | None:
        """(pool child, its ffmpeg) while a proxy is being made."""
        for child in self.pool_children():
            try:
                for grandchild in child.children():
                    if "proxy.mp4" in " ".join(grandchild.cmdline()):
                        return child, grandchild
            except psutil.NoSuchProcess:
                continue
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_all()

    def kill_all(self) -> list[psutil.Process]:
        """SIGKILL to the worker and everything it started: a machine losing power."""
        try:
            family = [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in family:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.process.wait()
        return family


@pytest.fixture
def workers() -> Iterator[Callable[[Server, str], Worker]]:
    started: list[Worker] = []

    def start(server: Server, name: str) -> Worker:
        started.append(Worker(server, name))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def redis_server(tmp_path: Path, postgres_url: str) -> Iterator[Server]:
    broker = redis_or_skip()
    server = start_server(tmp_path / "server", {
        "EVIDENCE_DATABASE_URL": postgres_url,
        "EVIDENCE_BROKER_URL": broker,
        "EVIDENCE_EMBEDDED_WORKER": "false",
        "EVIDENCE_EXTRA_HASHES": "md5,sha1",
        # Redis gives an unacknowledged task to another worker after this long.
        "EVIDENCE_BROKER_VISIBILITY_TIMEOUT_SECONDS": "10",
        # A dead worker's lease on its step runs out after this long (see the kill test).
        "EVIDENCE_LEASE_SECONDS": "3",
        "EVIDENCE_HLS_MIN_SECONDS": "1",
    })
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
def test_celery_on_redis_with_a_separate_worker(redis_server: Server, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = redis_server
    workers(server, "one")
    token, case = server.token(), server.case("OP-REDIS")
    media = library()
    files = [media.path("mpeg4_mp3_avi"), media.path("no_audio_mp4")]
    uploaded = upload(server, token, case, *files)
    items = wait_settled(server, token, case, len(files), timeout=60)
    for path in files:
        item = items[path.name]
        assert item["state"] == "ready", item["reason"]
        assert item["hashes"]["sha256"] == item["client_sha256"] == uploaded[path.name][1]
        data = path.read_bytes()
        assert item["hashes"]["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert item["hashes"]["sha1"] == hashlib.sha1(data, usedforsecurity=False).hexdigest()
        # Two seconds is past EVIDENCE_HLS_MIN_SECONDS here, so HLS is cut from the proxy too.
        assert {d["kind"] for d in item["derivatives"]} == {"proxy", "poster", "contact_sheet", "probe", "hls"}
        assert_custody(server, item)
        playlist = download(server, token, item["id"], "hls", tmp_path / "index.m3u8").read_text()
        assert "#EXT-X-MAP:URI=\"init.mp4\"" in playlist and "segment_00000.m4s" in playlist


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


@pytest.mark.postgres
def test_a_worker_whose_pool_child_dies_mid_transcode_finishes_exactly_once(redis_server: Server, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The pool child running make_proxy dies; the worker's main process survives and, with
    acks_late and reject_on_worker_lost, puts the task back at once. The copy finds the dead
    child's lease still running and is dropped, or finds it run out and takes the step over;
    if dropped, the upkeep takes it over once the lease has run out. Either way once.
    (The whole worker killed: tests/transcode/test_worker_death.py.)"""
    server = redis_server
    token, case = server.token(), server.case("OP-SIGKILL")
    worker = workers(server, "first")

    def progress(item_id: str) -> float:
        return api(server, token, f"/api/v1/items/{item_id}")["progress"] or 0.0

    clip = make_clip(tmp_path / "DVR export ch1.avi", SIGKILL_SECONDS, "640x480")
    [(item_id, _)] = upload(server, token, case, clip).values()
    child, encoder = wait_for("make_proxy to run", worker.transcoding)
    wait_for("progress", lambda: progress(item_id) > 0)
    assert encoder.is_running()  # still mid-transcode
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    try:
        encoder.wait(10)  # its pipe to the dead child is gone: it stops by itself
    except psutil.TimeoutExpired:
        encoder.kill()
    [item] = wait_settled(server, token, case, 1, timeout=90).values()
    assert item["state"] == "ready", item["reason"]
    assert "WorkerLostError" in worker.log.read_text()
    check_done_once(server, item, clip)


def check_done_once(server: Server, item: dict[str, Any], clip: Path) -> None:
    rows = derivative_rows(server, item["id"])
    assert Counter(row["kind"] for row in rows) == {k: 1 for k in ("proxy", "poster", "contact_sheet", "probe", "hls")}
    assert_custody(server, item)  # one derivative.created per kind, nothing duplicated
    found = events(server, item["id"])
    assert Counter(e["action"] for e in found if e["action"] == "derivative.created")["derivative.created"] == 5
    # Only the recorded proxy is in the vault: the killed attempt stored nothing.
    proxies = list((server.data_dir / "vault" / "derivatives" / item["id"]).glob("proxy*"))
    assert [p.name for p in proxies] == [Path(r["key"]).name for r in rows if r["kind"] == "proxy"]
    duration, rate = original_video(clip)
    check_proxy(server.data_dir / "vault" / next(r["key"] for r in rows if r["kind"] == "proxy"),
                frames=SIGKILL_SECONDS * 25, duration=duration, frame_rate=rate)


RABBITMQ_URL = os.environ.get("EVIDENCE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def rabbitmq_or_skip() -> str:
    """RabbitMQ with our queues emptied; skip loudly without it (fail under CI)."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ_URL, connect_timeout=3) as connection:
            channel = connection.channel()
            for queue in ("ingest", "transcode"):
                try:
                    channel.queue_purge(queue)
                except Exception:  # not declared yet: nothing to purge
                    channel = connection.channel()
    except Exception as error:
        message = f"RabbitMQ is not usable at {RABBITMQ_URL}: {type(error).__name__}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip("SKIPPING RABBITMQ TESTS: " + message)
    return RABBITMQ_URL


def test_celery_on_rabbitmq_with_a_separate_worker(tmp_path: Path, workers) -> None:  # type: ignore[no-untyped-def]
    server = start_server(tmp_path / "server", {
        "EVIDENCE_BROKER_URL": rabbitmq_or_skip(),
        "EVIDENCE_EMBEDDED_WORKER": "false",
    })
    try:
        workers(server, "rabbit")
        token, case = server.token(), server.case("OP-RABBIT")
        path = library().path("h263_amr_3gp")
        uploaded = upload(server, token, case, path)
        item = wait_settled(server, token, case, 1, timeout=60)[path.name]
        assert item["state"] == "ready", item["reason"]
        assert item["hashes"]["sha256"] == uploaded[path.name][1]
        assert {d["kind"] for d in item["derivatives"]} >= {"proxy", "poster", "contact_sheet", "probe"}
        assert_custody(server, item)
    finally:
        server.stop()
