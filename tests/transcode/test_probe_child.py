"""The probe in its bounded child process, on real media and on generated hostile files.

The first test shows the threat is real: a four-line list, opened the way libav opens a file by
default (guessing its format), decodes another file from the vault. Through the child, with
the demuxer chosen from the bytes and named, the same list is refused and nothing is opened.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.support import hostile
from tests.support.media import MediaLibrary, library
from transcode.limits import Limits
from transcode.probe_child import Outcome, Request, run

GiB = 1 << 30
EIGHT_K = 7680 * 4320
VICTIM_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def media() -> MediaLibrary:
    return library()


@pytest.fixture
def vault(tmp_path: Path, media: MediaLibrary) -> tuple[Path, hostile.Victim]:
    """A vault folder holding another case's original (a real clip) under its upload id."""
    originals = tmp_path / "vault" / "originals"
    originals.mkdir(parents=True)
    victim = originals / VICTIM_ID
    victim.write_bytes(media.path("h264_aac_mp4").read_bytes())
    return originals, hostile.Victim(VICTIM_ID, victim, "http://127.0.0.1:9/api/v1/items/x/derivatives/proxy")


def probe_file(path: Path, *, limits: Limits | None = None, **request: object) -> Outcome:
    data = path.read_bytes()[: 1 << 20]
    return run(
        Request(str(path), head=data, max_image_pixels=100_000_000, max_video_pixels=EIGHT_K, **request),  # type: ignore[arg-type]
        limits=limits or Limits(memory_bytes=4 * GiB, cpu_seconds=60, budget_seconds=60), timeout=60,
    )


def test_a_list_naming_another_original_is_a_real_attack_and_is_refused(vault: tuple[Path, hostile.Victim]) -> None:
    originals, victim = vault
    listing = originals / ("f" * 32)
    listing.write_bytes(hostile.ffconcat(victim.references()["id"]))
    # The default way: libav guesses the format (concat) and follows the list to the victim.
    with av.open(str(listing)) as guessed:
        assert guessed.format.name == "concat"
        assert sum(1 for _ in guessed.decode(video=0)) == 50  # every frame of the other case's clip
    outcome = probe_file(listing)
    assert outcome.data is None and outcome.demuxer is None
    assert outcome.refusal == (
        "no working copy: the file is an ffconcat list, a format that refers to other files; it is kept exactly as received"
    )
    assert outcome.cpu_seconds > 0


def test_recipes_are_refused_in_the_child(vault: tuple[Path, hostile.Victim], tmp_path: Path) -> None:
    # One of each kind here (test_sniff checks them all in-process, test_hostile through the server).
    originals, victim = vault
    every = hostile.recipes(victim)
    chosen = ["path.m3u8", "http-url.mpd", "path.concat.txt", "subfile-protocol.ffconcat", "stream.sdp",
              "id-list.h264", "bare-list.avi"]
    for name, data in ((name, every[name]) for name in chosen):
        path = originals / f"{abs(hash(name)):032x}"[:32]
        path.write_bytes(data)
        outcome = probe_file(path, raw="h264" if name.endswith(".h264") else None)
        assert outcome.data is None, name
        if name == "bare-list.avi":
            assert outcome.unrecognised  # the pipeline names it from its media extension
        else:
            assert outcome.refusal and "refers to other files" in outcome.refusal, (name, outcome)


def test_media_is_probed_with_its_demuxer_named(media: MediaLibrary) -> None:
    outcome = probe_file(media.path("mpeg4_mp3_avi"))
    assert outcome.demuxer == "avi" and outcome.data is not None
    assert outcome.data["input"] == {"format": "avi", "framerate": None}
    assert outcome.data["format"]["format_name"] == "avi"
    raw = probe_file(media.path("raw_h264_untimed"), raw="h264", framerate="10")
    assert raw.demuxer == "h264" and raw.data is not None
    assert raw.data["input"] == {"format": "h264", "framerate": "10"}


def test_text_and_damage_come_back_as_answers(media: MediaLibrary, tmp_path: Path) -> None:
    assert probe_file(media.path("not_media")).unrecognised
    cut = probe_file(media.path("truncated_moov_last_mp4"))
    assert cut.demuxer == "mov" and cut.data is None and cut.error and cut.error.startswith("not readable as media")
    assert str(media.root) not in cut.error  # the location is not quoted back
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(hostile.corrupt(hostile.small_clip("avi")))
    answer = probe_file(corrupt)
    assert answer.stopped is None and (answer.data is not None or answer.error)


def test_a_frame_over_the_limit_is_refused_before_it_is_decoded(tmp_path: Path, media: MediaLibrary) -> None:
    # The container says 1024x1024; only the frames say 8000x8000. The decoders are given
    # max_pixels while the streams are looked at, refuse the first frame, and say how large it was.
    lying = tmp_path / "lying.avi"
    lying.write_bytes(hostile.lying_mjpeg_avi(8000, 8000))
    outcome = probe_file(lying)
    assert outcome.pixels == (8000, 8000, EIGHT_K) and outcome.data is None and outcome.stopped is None
    # An honest size over the limit is refused the same way.
    honest = run(
        Request(str(media.path("mpeg4_mp3_avi")), head=media.path("mpeg4_mp3_avi").read_bytes()[:65536],
                max_video_pixels=320 * 200),
        limits=None, timeout=60,
    )
    assert honest.pixels == (320, 240, 320 * 200) and honest.data is None


def test_a_memory_bomb_stops_its_child_not_the_caller(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(hostile.png_bomb(16000, 16000, color=6, depth=16))
    outcome = run(
        Request(str(bomb), head=bomb.read_bytes(), max_image_pixels=300_000_000, max_video_pixels=EIGHT_K),
        limits=Limits(memory_bytes=GiB, cpu_seconds=60, budget_seconds=60), timeout=60,
    )
    assert outcome.stopped == "stopped: needed more than 1 GiB of memory"
    assert outcome.data is None


def test_an_unexpected_error_in_the_child_is_an_answer(tmp_path: Path, media: MediaLibrary) -> None:
    # A demuxer named that is not on the list: the child refuses to open it, and says so.
    outcome = probe_file(media.path("h264_aac_mp4"), demuxer="concat")
    assert outcome.data is None and outcome.error == "the reader failed on this file (ValueError)"
    assert "Traceback" in outcome.log_tail
    missing = probe_file_missing(tmp_path / "gone")
    assert missing.error and "cannot read" in missing.error


def probe_file_missing(path: Path) -> Outcome:
    return run(Request(str(path), head=b"\x00\x00\x00\x18ftypisom"), limits=None, timeout=60)
