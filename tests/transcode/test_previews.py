"""Previews of what a ZIP holds (transcode.previews), made by the pipeline's steps on a real
database and vault with the pinned ffmpeg: images and videos recognised by their bytes, each
extracted under the archive's bounds, checked against the manifest, probed in the sandbox and made
into a working copy; a broken, an oversized and an encrypted entry listed as left out, the item
unharmed."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from evidence.models import ItemState
from evidence.runtime import Runtime
from evidence.workingcopies import read_previews
from tests.support.media import library, make_clip
from tests.transcode.conftest import MakeItem, item
from tests.transcode.test_archive import patch
from tests.transcode.test_pipeline import check_proxy, original_video
from tests.transcode.test_views import (
    created,
    derivatives,
    process,
    run_again,
    sideways_jpeg,
    store_original,
    vault_path,
)
from transcode import formats
from transcode.ffmpeg import resolve_ffmpeg
from transcode.previews import looks_like
from transcode.steps import Step

WHEN = (2024, 3, 1, 12, 0, 0)
CAP = 1024 * 1024  # preview_max_entry_bytes in these tests


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 160, 0)).save(out, "PNG")
    return out.getvalue()


def write_zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number, (name, data) in enumerate(entries):
            method = zipfile.ZIP_DEFLATED if number % 2 else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name, WHEN), data, compress_type=method)
    return buffer.getvalue()


@pytest.fixture
def capped(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"preview_max_entry_bytes": CAP}))
    return rt


def test_an_extraction_gets_previews_of_its_images_and_videos(capped: Runtime, make_item: MakeItem, tmp_path: Path) -> None:
    rt = capped
    media = library()
    clip, dvr = media.path("h264_aac_mp4").read_bytes(), media.path("mpeg4_mp3_avi").read_bytes()
    photo = sideways_jpeg(3000, 2000, orientation=6)
    big = make_clip(tmp_path / "long.avi", 8, "640x480").read_bytes()
    assert len(big) > CAP > max(len(clip), len(dvr), len(photo))
    entries = [
        ("DCIM/", b""),
        ("DCIM/Camera/IMG_0001.jpg", photo),
        ("DCIM/Camera/IMG_0002.jpg", photo[:600] + b"\x00garbage" * 200),  # cut off and overwritten
        ("DCIM/Camera/IMG_0003.JPG", png(200, 100)),  # a PNG whatever its name says
        ("Movies/clip.mp4", clip),
        ("Movies/DVR export.avi", dvr),
        ("Movies/long.avi", big),
        ("WhatsApp/Media/sent.dat", clip),  # a video whatever its name says
        ("notes.txt", b"Handset seized 1 March.\n" * 10),
        ("fake.mp4", b"not a video at all\n" * 100),
        ("secret.jpg", photo),
    ]
    data = patch(write_zip(entries), "secret.jpg", flags=0x1)  # marked encrypted: it cannot be read
    item_id = store_original(rt, make_item, data, "handset extraction.zip")
    steps = process(rt, item_id)
    assert steps == [Step.MAKE_MANIFEST, Step.MAKE_PREVIEWS]
    found = item(rt, item_id)
    assert (found.state, found.reason) == (ItemState.PROCESSING, None)  # no entry failed the item

    made = derivatives(rt, item_id)
    assert set(made) == {"manifest", "previews"}
    index = made["previews"]
    assert index.content_type == "application/json"
    listed = read_previews(vault_path(rt, index.key).read_bytes())
    manifest = json.loads(vault_path(rt, made["manifest"].key).read_bytes())
    positions = {entry["path"]: number for number, entry in enumerate(manifest["entries"])}

    previews = {p.path: p for p in listed.previews}
    assert list(previews) == ["DCIM/Camera/IMG_0001.jpg", "DCIM/Camera/IMG_0003.JPG", "Movies/clip.mp4",
                              "Movies/DVR export.avi", "WhatsApp/Media/sent.dat"]
    assert {path: p.kind for path, p in previews.items()} == {
        "DCIM/Camera/IMG_0001.jpg": "image", "DCIM/Camera/IMG_0003.JPG": "image", "Movies/clip.mp4": "video",
        "Movies/DVR export.avi": "video", "WhatsApp/Media/sent.dat": "video",
    }
    for path, preview in previews.items():
        assert preview.index == positions[path]
        stored = vault_path(rt, preview.key(item_id, "previews"))
        assert stored.stat().st_size == preview.size
        assert preview.content_type == ("image/jpeg" if preview.kind == "image" else "video/mp4")
    with Image.open(vault_path(rt, previews["DCIM/Camera/IMG_0001.jpg"].key(item_id, "previews"))) as view:
        assert (view.format, view.size) == ("JPEG", (1280, 1920))  # upright, screen size
    with Image.open(vault_path(rt, previews["DCIM/Camera/IMG_0003.JPG"].key(item_id, "previews"))) as view:
        assert (view.format, view.size) == ("JPEG", (200, 100))
    for path, name in (("Movies/clip.mp4", "h264_aac_mp4"), ("Movies/DVR export.avi", "mpeg4_mp3_avi")):
        duration, rate = original_video(media.path(name))
        summary = check_proxy(vault_path(rt, previews[path].key(item_id, "previews")), frames=media.frames(name),
                              duration=duration, frame_rate=rate)
        assert summary["audio_codec"] == "aac"
    # The same clip under two names is the same preview, stored once.
    assert previews["Movies/clip.mp4"].sha256 == previews["WhatsApp/Media/sent.dat"].sha256

    skipped = dict(listed.skipped)
    assert set(skipped) == {"DCIM/Camera/IMG_0002.jpg", "Movies/long.avi", "secret.jpg"}
    assert skipped["Movies/long.avi"] == f"{len(big):,} bytes: larger than the {CAP:,} a preview is made from"
    assert skipped["secret.jpg"].startswith("not read: encrypted entry")
    assert skipped["DCIM/Camera/IMG_0002.jpg"] == "could not be decoded (invalid data found in it)"
    assert "/tmp" not in skipped["DCIM/Camera/IMG_0002.jpg"] and "entry-" not in skipped["DCIM/Camera/IMG_0002.jpg"]

    # On the custody record once, with each preview's method: the entry and its hash, the preview's
    # hash, and the ffmpeg command with its input named as the entry, never a local path.
    [details] = [d for d in created(rt, item_id) if d["kind"] == "previews"]
    assert (details["sha256"], details["size"]) == (index.sha256, index.size)
    method = details["method"]
    assert method == index.method
    assert method["tool"] == "transcode.previews" and method["ffmpeg"] == resolve_ffmpeg().version
    assert method["skipped"] == 3
    assert [m["entry"] for m in method["previews"]] == list(previews)
    for one in method["previews"]:
        assert one["entry_sha256"] == manifest["entries"][positions[one["entry"]]]["sha256"]
        assert one["preview_sha256"] == previews[one["entry"]].sha256
        argv = one["argv"]
        assert argv[0] == "ffmpeg" and argv[argv.index("-i") + 1] == f"archive entry {one['entry']}"
        options = argv[: argv.index("-i")]
        assert options[options.index("-f") + 1] in formats.ALLOWED and "-max_pixels" in options
        assert not any("/tmp" in arg or str(rt.settings.data_path) in arg or "entry-" in arg for arg in argv), argv
    assert list(rt.settings.effective_tmp_dir.iterdir()) == []  # the extracted entries are gone
    run_again(rt, item_id, steps)


def test_at_most_the_count_allowed_and_the_rest_listed(rt: Runtime, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"preview_max_entries": 2}))
    entries = [(f"DCIM/IMG_{n:04d}.png", png(40 + n, 30)) for n in range(4)]
    item_id = store_original(rt, make_item, write_zip(entries), "photos.zip")
    process(rt, item_id)
    listed = read_previews(vault_path(rt, derivatives(rt, item_id)["previews"].key).read_bytes())
    assert [p.path for p in listed.previews] == ["DCIM/IMG_0000.png", "DCIM/IMG_0001.png"]
    assert listed.skipped == (("DCIM/IMG_0002.png", "more than the 2 previews made for one archive"),
                              ("DCIM/IMG_0003.png", "more than the 2 previews made for one archive"))


def test_what_looks_like_a_picture_or_a_video() -> None:
    media = library()
    assert looks_like(sideways_jpeg(20, 10, orientation=1)) == "image"
    assert looks_like(png(2, 2)) == "image"
    for name in ("h264_aac_mp4", "mpeg4_mp3_avi", "mpeg2_ps", "h263_amr_3gp"):
        assert looks_like(media.path(name).read_bytes()[:4096]) == "video", name
    for head in (b"%PDF-1.7", b"PK\x03\x04", b"plain text", b"SQLite format 3\x00", b""):
        assert looks_like(head) is None, head


def test_a_spent_budget_leaves_the_rest_without_previews_not_the_item_failed(
    rt: Runtime, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CPU budget a single probe uses up: the first entry is probed, and nothing after it decoded.
    monkeypatch.setattr(rt, "settings", rt.settings.model_copy(update={"cpu_budget_base_seconds": 0.01}))
    entries = [(f"DCIM/IMG_{n:04d}.png", png(40, 30)) for n in range(3)]
    item_id = store_original(rt, make_item, write_zip(entries), "photos.zip")
    process(rt, item_id)
    found = item(rt, item_id)
    assert (found.state, found.reason) == (ItemState.PROCESSING, None)
    listed = read_previews(vault_path(rt, derivatives(rt, item_id)["previews"].key).read_bytes())
    assert listed.previews == ()
    assert [path for path, _ in listed.skipped] == [name for name, _ in entries]
    assert all(reason.startswith("stopped: used its CPU-time budget") for _, reason in listed.skipped), listed.skipped
    assert list(rt.settings.effective_tmp_dir.iterdir()) == []
