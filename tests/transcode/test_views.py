"""Working copies of exhibits that are not video, made by the pipeline's own steps on a real
database and vault with the pinned ffmpeg: an image at screen size turned upright with its EXIF
listed, audio as AAC in MP4, and a text file's head as UTF-8. Each is on the custody record with
its method, and a step run again makes nothing twice."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image
from sqlalchemy import select

from evidence.models import CustodyEvent, Derivative, ItemState
from evidence.runtime import Runtime
from tests.support.media import library
from tests.transcode.conftest import MakeItem, item
from tests.transcode.test_pipeline import assert_inputs_fenced, top_level_boxes
from transcode import pipeline
from transcode.ffmpeg import VIEW_EDGE, resolve_ffmpeg
from transcode.probe import probe, summarise
from transcode.steps import Step

RED, BLUE = (255, 0, 0), (0, 0, 255)


def store_original(rt: Runtime, make_item: MakeItem, data: bytes, filename: str) -> str:
    """An item being processed whose original (``data``) is in the local vault, as an upload leaves it."""
    item_id = make_item(ItemState.PROCESSING, filename=filename, size=len(data))
    key = item(rt, item_id).storage_key
    target = Path(unquote(urlsplit(rt.settings.effective_storage_url).path)) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return item_id


def process(rt: Runtime, item_id: str) -> list[Step]:
    """Probe the item and run the steps planned for it, as the chain would; returns the plan."""
    planned = pipeline.probe_original(rt, item_id)
    assert planned is not None, item(rt, item_id).reason
    for step in planned:
        getattr(pipeline, step.value)(rt, item_id)
    return planned


def derivatives(rt: Runtime, item_id: str) -> dict[str, Derivative]:
    with rt.db.sessions() as session:
        return {d.kind: d for d in session.scalars(select(Derivative).where(Derivative.item_id == item_id))}


def created(rt: Runtime, item_id: str) -> list[dict[str, Any]]:
    """The details of each `derivative.created` entry about the item, in order."""
    with rt.db.sessions() as session:
        rows = session.scalars(
            select(CustodyEvent).where(CustodyEvent.item_id == item_id, CustodyEvent.action == "derivative.created")
            .order_by(CustodyEvent.seq)
        )
        return [dict(row.details) for row in rows]


def vault_path(rt: Runtime, key: str) -> Path:
    return Path(unquote(urlsplit(rt.settings.effective_storage_url).path)) / key


def check_recorded(rt: Runtime, item_id: str, kind: str) -> dict[str, Any]:
    """The working copy is recorded once, with the ffmpeg that made it and its argv naming the
    original (fenced: demuxer, whitelist, pixel limit), never a local path."""
    made = derivatives(rt, item_id)[kind]
    [details] = [d for d in created(rt, item_id) if d["kind"] == kind]
    assert (details["sha256"], details["size"]) == (made.sha256, made.size)
    method = details["method"]
    assert method == made.method
    assert method["tool"] == "ffmpeg" and method["version"] == resolve_ffmpeg().version
    assert_inputs_fenced(method["argv"])
    assert not any(str(rt.settings.data_path) in arg or "/tmp" in arg for arg in method["argv"]), method["argv"]
    return method


def run_again(rt: Runtime, item_id: str, steps: list[Step]) -> None:
    """A redelivered task: every step again, twice; nothing new may be made or recorded."""
    before = (sorted((d.kind, d.key, d.sha256) for d in derivatives(rt, item_id).values()), created(rt, item_id))
    for _ in range(2):
        for step in steps:
            getattr(pipeline, step.value)(rt, item_id)
    after = (sorted((d.kind, d.key, d.sha256) for d in derivatives(rt, item_id).values()), created(rt, item_id))
    assert after == before
    assert Counter(d["kind"] for d in after[1]).most_common(1)[0][1] == 1


# -- images ---------------------------------------------------------------------------------------


def sideways_jpeg(width: int, height: int, *, orientation: int, exif_extra: dict[int, Any] | None = None) -> bytes:
    """A JPEG whose pixels are stored ``width`` x ``height``, blue with a red block in the stored
    top-left corner, and EXIF saying how to turn it (as a phone held upright writes it)."""
    picture = Image.new("RGB", (width, height), BLUE)
    picture.paste(RED, (0, 0, width // 5, height // 5))
    tags = Image.Exif()
    tags[0x0112] = orientation
    tags[0x010F] = "Police Issue Camera"
    tags[0x0110] = "PIC-1"
    tags.get_ifd(0x8769)[0x9003] = "2024:03:01 12:34:56"
    tags.get_ifd(0x8769)[0x927C] = b"\x00\x01maker note: binary"
    gps = tags.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 2.64), "W", (0.0, 7.0, 28.65)
    for tag, value in (exif_extra or {}).items():
        tags[tag] = value
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=95, exif=tags.tobytes())
    return out.getvalue()


def corner_colours(path: Path) -> dict[str, tuple[int, int, int]]:
    with Image.open(path) as picture:
        rgb = picture.convert("RGB")
        w, h = rgb.size
        at = {"top-left": (4, 4), "top-right": (w - 5, 4), "bottom-left": (4, h - 5), "bottom-right": (w - 5, h - 5)}
        return {name: rgb.getpixel(xy) for name, xy in at.items()}  # type: ignore[misc]


def reddish(colour: tuple[int, int, int]) -> bool:
    return colour[0] > 200 and colour[2] < 60


def test_a_sideways_photo_gets_an_upright_screen_sized_view_and_its_exif_listed(rt: Runtime, make_item: MakeItem) -> None:
    # Stored 3000 x 2000 (landscape), Orientation 6: shown turned 90 degrees clockwise, portrait.
    item_id = store_original(rt, make_item, sideways_jpeg(3000, 2000, orientation=6), "IMG_0001.jpg")
    steps = process(rt, item_id)
    assert steps == [Step.MAKE_VIEW, Step.MAKE_THUMBNAIL]
    made = derivatives(rt, item_id)
    assert set(made) == {"probe", "view", "thumbnail"}
    view = made["view"]
    assert view.content_type == "image/jpeg" and view.key.endswith(".jpg")
    path = vault_path(rt, view.key)
    with Image.open(path) as picture:
        assert picture.format == "JPEG"
        # Upright: 2000 x 3000 scaled to a long edge of 1920.
        assert picture.size == (1280, VIEW_EDGE)
        assert not picture.getexif() and "exif" not in picture.info  # nothing of the original's metadata
    assert b"Exif\x00\x00" not in path.read_bytes() and b"Police Issue" not in path.read_bytes()
    # The stored top-left corner, turned clockwise, is now the top-right one.
    corners = corner_colours(path)
    assert reddish(corners["top-right"]), corners
    assert not any(reddish(corners[c]) for c in ("top-left", "bottom-left", "bottom-right")), corners

    method = check_recorded(rt, item_id, "view")
    argv = method["argv"]
    assert "-autorotate" in argv and argv[argv.index("-map_metadata") + 1] == "-1"
    assert argv[-2:] == ["view.jpg", "-y"]
    assert method["exif_orientation"] == 6

    tags = item(rt, item_id).media["exif"]
    assert tags["Make"] == "Police Issue Camera" and tags["Model"] == "PIC-1"
    assert tags["Orientation"] == "6" and tags["DateTimeOriginal"] == "2024:03:01 12:34:56"
    assert tags["GPSPosition"] == "51.500733, -0.124625"
    assert "MakerNote" not in tags  # binary
    assert all(isinstance(v, str) and len(v) <= 200 for v in tags.values()) and len(tags) <= 100
    run_again(rt, item_id, steps)


@pytest.mark.parametrize(("orientation", "size", "red_at"), [
    (1, (300, 200), "top-left"),
    (3, (300, 200), "bottom-right"),  # upside down
    (8, (200, 300), "bottom-left"),  # turned anticlockwise
    (2, (300, 200), "top-right"),  # mirrored
])
def test_every_orientation_is_applied_and_small_images_are_not_enlarged(
    rt: Runtime, make_item: MakeItem, orientation: int, size: tuple[int, int], red_at: str,
) -> None:
    item_id = store_original(rt, make_item, sideways_jpeg(300, 200, orientation=orientation), "small.jpg")
    process(rt, item_id)
    path = vault_path(rt, derivatives(rt, item_id)["view"].key)
    with Image.open(path) as picture:
        assert picture.size == size
    corners = corner_colours(path)
    assert [name for name, colour in corners.items() if reddish(colour)] == [red_at], corners


def test_a_hostile_exif_block_is_left_out_and_the_view_is_still_made(rt: Runtime, make_item: MakeItem) -> None:
    data = bytearray(sideways_jpeg(400, 300, orientation=6))
    at = data.index(b"Exif\x00\x00") + 6
    # The directory's entry count and offsets made nonsense: 0xFFFF entries, pointers past the end.
    data[at + 8 : at + 10] = b"\xff\xff"
    data[at + 10 : at + 40] = b"\xff" * 30
    item_id = store_original(rt, make_item, bytes(data), "corrupt-exif.jpg")
    process(rt, item_id)
    found = item(rt, item_id)
    assert found.state == ItemState.PROCESSING and found.reason is None  # not failed by its metadata
    assert isinstance(found.media["exif"], dict)
    assert all(isinstance(v, str) and len(v) <= 200 for v in found.media["exif"].values())
    assert "view" in derivatives(rt, item_id)


def test_a_png_without_exif_gets_a_jpeg_view_and_an_empty_list(rt: Runtime, make_item: MakeItem) -> None:
    picture = Image.new("RGBA", (2400, 600), (0, 128, 0, 255))
    out = io.BytesIO()
    picture.save(out, "PNG")
    item_id = store_original(rt, make_item, out.getvalue(), "screenshot.png")
    process(rt, item_id)
    assert item(rt, item_id).media["exif"] == {}
    with Image.open(vault_path(rt, derivatives(rt, item_id)["view"].key)) as view:
        assert (view.format, view.size) == ("JPEG", (VIEW_EDGE, 480))


# -- audio ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "channels"), [("surround_wav", 2), ("mono_mp3", 1), ("aac_m4a", 2)])
def test_audio_gets_aac_in_mp4_of_the_same_length(rt: Runtime, make_item: MakeItem, name: str, channels: int) -> None:
    source = library().path(name)
    item_id = store_original(rt, make_item, source.read_bytes(), source.name)
    steps = process(rt, item_id)
    assert steps == [Step.MAKE_AUDIO, Step.VALIDATE_MEDIA]
    assert item(rt, item_id).kind == "audio"
    made = derivatives(rt, item_id)["audio"]
    assert made.content_type == "audio/mp4" and made.key.endswith(".m4a")
    path = vault_path(rt, made.key)
    data = probe(str(path))
    summary = summarise(data)
    [stream] = data["streams"]
    assert (summary["container"], stream["codec_name"], stream["channels"]) == ("mp4", "aac", channels)
    original = summarise(probe(str(source)))["duration"]
    assert abs(summary["duration"] - original) < 0.1, (summary["duration"], original)
    boxes = top_level_boxes(path)
    assert boxes.index(b"moov") < boxes.index(b"mdat")  # +faststart: plays while it downloads
    method = check_recorded(rt, item_id, "audio")
    assert method["argv"][method["argv"].index("-c:a") + 1] == "aac"
    run_again(rt, item_id, steps)


def test_a_view_method_is_json_as_recorded(rt: Runtime, make_item: MakeItem) -> None:
    item_id = store_original(rt, make_item, sideways_jpeg(64, 48, orientation=1), "tiny.jpg")
    process(rt, item_id)
    method = derivatives(rt, item_id)["view"].method
    assert json.loads(json.dumps(method)) == method


# -- text -----------------------------------------------------------------------------------------

STATEMENT = "Witness statement of Zoë Ångström — 1 March 2024.\nI saw the car at 12:34.\n"


@pytest.mark.parametrize(("data", "encoding", "bom"), [
    (STATEMENT.encode(), "utf-8", False),
    (b"\xef\xbb\xbf" + STATEMENT.encode(), "utf-8", True),
    (b"\xff\xfe" + STATEMENT.encode("utf-16-le"), "utf-16-le", True),
    (b"\xfe\xff" + STATEMENT.encode("utf-16-be"), "utf-16-be", True),
])
def test_a_text_file_gets_its_text_as_utf8(rt: Runtime, make_item: MakeItem, data: bytes, encoding: str, bom: bool) -> None:
    item_id = store_original(rt, make_item, data, "statement.txt")
    steps = process(rt, item_id)
    assert (item(rt, item_id).kind, steps) == ("text", [Step.MAKE_TEXT])
    made = derivatives(rt, item_id)
    assert set(made) == {"text"}  # no probe.json: nothing could read it as media
    copy = made["text"]
    assert copy.content_type == "text/plain; charset=utf-8"
    assert vault_path(rt, copy.key).read_bytes().decode("utf-8") == STATEMENT
    [details] = created(rt, item_id)
    assert details["kind"] == "text" and details["method"] == copy.method
    assert copy.method["tool"] == "transcode.textcopy"
    assert (copy.method["encoding"], copy.method["byte_order_mark"], copy.method["cut"]) == (encoding, bom, None)
    assert (copy.method["bytes_used"], copy.method["original_size"]) == (len(data), len(data))
    assert copy.method["replacement_characters"] == 0
    run_again(rt, item_id, steps)


def test_a_long_text_is_cut_whole_characters_and_bad_bytes_replaced(
    rt: Runtime, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"text_copy_bytes": 1024}))
    # 1023 ASCII bytes then "é" (two bytes) across the cut; one byte of a legacy code page early on.
    data = b"Caf\xe9 notes\n" + b"x" * (1023 - 11) + "é".encode() + b" and more\n" * 500
    item_id = store_original(rt, make_item, data, "log.txt")
    process(rt, item_id)
    copy = derivatives(rt, item_id)["text"]
    text = vault_path(rt, copy.key).read_bytes().decode("utf-8")
    assert text == "Caf\ufffd notes\n" + "x" * (1023 - 11)  # the half "é" left out, not garbled
    assert copy.method["cut"] == f"at byte 1,023 of {len(data):,}" and copy.method["bytes_used"] == 1023
    assert copy.method["replacement_characters"] == 1


@pytest.mark.parametrize(("data", "name"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096), "report.doc"),  # an OLE (Word 97) document
    (b"SQLite format 3\x00" + bytes(4096), "msgstore.db"),
    (bytes(range(256)) * 16, "blob.bin"),
])
def test_binary_files_and_old_office_documents_get_no_text_copy(
    rt: Runtime, make_item: MakeItem, data: bytes, name: str,
) -> None:
    item_id = store_original(rt, make_item, data, name)
    assert process(rt, item_id) == []
    assert item(rt, item_id).kind == "other" and derivatives(rt, item_id) == {}


def test_a_docx_is_an_archive_not_text(rt: Runtime, make_item: MakeItem) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as docx:
        docx.writestr("[Content_Types].xml", "<Types/>")
        docx.writestr("word/document.xml", "<w:document>Statement</w:document>")
    item_id = store_original(rt, make_item, out.getvalue(), "statement.docx")
    planned = pipeline.probe_original(rt, item_id)
    assert item(rt, item_id).kind == "archive" and planned is not None and Step.MAKE_TEXT not in planned


# -- end to end -----------------------------------------------------------------------------------


@pytest.mark.parametrize("vault", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_photo_a_recording_a_statement_and_an_extraction_reach_ready_through_a_real_server(
    tmp_path: Path, vault: str,
) -> None:
    """Uploaded with `evidence upload` to `evidence serve` and its embedded worker, with the vault
    on local disk and on S3 (originals read by presigned URL, ranges of the ZIP): each reaches
    `ready` with its working copy, recorded once, and served back by the API."""
    from tests.conftest import s3_env
    from tests.support import s3
    from tests.transcode.test_pipeline import (
        api,
        assert_custody,
        derivative_rows,
        download,
        events,
        start_server,
        upload,
        wait_settled,
    )

    folder = tmp_path / "exhibits"
    folder.mkdir()
    photo, recording = folder / "IMG_0001.jpg", folder / "interview.wav"
    statement, extraction = folder / "statement.txt", folder / "handset.zip"
    photo.write_bytes(sideways_jpeg(3000, 2000, orientation=6))
    recording.write_bytes(library().path("surround_wav").read_bytes())
    statement.write_bytes(("\ufeff" + STATEMENT).encode())
    with zipfile.ZipFile(extraction, "w") as archive:
        archive.writestr("DCIM/IMG_0002.jpg", sideways_jpeg(400, 300, orientation=1))
        archive.writestr("Movies/clip.mp4", library().path("h264_aac_mp4").read_bytes())
    env = {"EVIDENCE_EMBEDDED_WORKER": "true", **(s3_env(s3.new_bucket()) if vault == "s3" else {})}
    server = start_server(tmp_path / "server", env)
    try:
        token, case = server.token(), server.case("OP-EXHIBITS")
        upload(server, token, case, photo, recording, statement, extraction)
        items = wait_settled(server, token, case, 4, timeout=120)
        expected = {photo.name: ("image", {"probe", "view", "thumbnail"}), recording.name: ("audio", {"probe", "audio"}),
                    statement.name: ("text", {"text"}), extraction.name: ("archive", {"manifest", "previews"})}
        for name, (kind, kinds) in expected.items():
            shown = items[name]
            assert (shown["state"], shown["kind"], shown["reason"]) == ("ready", kind, None), (name, shown)
            assert {d["kind"] for d in shown["derivatives"]} == kinds, name
            if vault == "local":
                assert_custody(server, shown)  # which expects the local vault's protocol
            else:
                made = [e["details"]["kind"] for e in events(server, shown["id"]) if e["action"] == "derivative.created"]
                assert sorted(made) == sorted(d["kind"] for d in shown["derivatives"]), name
            for row in derivative_rows(server, shown["id"]):
                if row["method"].get("tool") == "ffmpeg":  # the original read through the vault's protocols only
                    assert_inputs_fenced(row["method"]["argv"], "http,tcp" if vault == "s3" else "file")
                assert "X-Amz" not in json.dumps(row["method"]) and str(server.root) not in json.dumps(row["method"])
        assert items[photo.name]["media"]["exif"]["Make"] == "Police Issue Camera"
        view = download(server, token, items[photo.name]["id"], "view", tmp_path / "view.jpg")
        with Image.open(view) as picture:
            assert picture.size == (1280, 1920)
        audio = download(server, token, items[recording.name]["id"], "audio", tmp_path / "audio.m4a")
        assert summarise(probe(str(audio)))["audio_codec"] == "aac"
        text = download(server, token, items[statement.name]["id"], "text", tmp_path / "text.txt")
        assert text.read_text("utf-8") == STATEMENT
        index = download(server, token, items[extraction.name]["id"], "previews", tmp_path / "previews.json")
        listed = json.loads(index.read_bytes())
        assert [(p["path"], p["kind"]) for p in listed["previews"]] == [("DCIM/IMG_0002.jpg", "image"),
                                                                        ("Movies/clip.mp4", "video")]
        assert api(server, token, f"/api/v1/items/{items[extraction.name]['id']}")["state"] == "ready"
    finally:
        server.stop()
