"""Image sizes read from headers, never decoded: real stills of every format made with the pinned
ffmpeg, image bombs (a tiny file declaring gigapixels), and fragments too short to tell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import hostile
from transcode import imagesize
from transcode.ffmpeg import resolve_ffmpeg

STILL = ["-f", "lavfi", "-i", "color=c=teal:size=123x45:rate=1:duration=1", "-frames:v", "1"]
FORMATS = ["still.png", "still.jpg", "still.gif", "still.bmp", "still.tiff", "still.webp"]


@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stills")
    exe = resolve_ffmpeg().exe
    for name in FORMATS:
        subprocess.run([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *STILL, str(root / name)],
                       check=True, timeout=60, capture_output=True)
    return root


@pytest.mark.parametrize("name", FORMATS)
def test_declared_size_of_real_images(name: str, stills: Path) -> None:
    assert imagesize.declared_size((stills / name).read_bytes()[:65536]) == (123, 45)


def test_declared_size_of_bombs() -> None:
    assert imagesize.declared_size(hostile.png_bomb(30000, 30000)) == (30000, 30000)
    assert imagesize.declared_size(hostile.jpeg_bomb(30000, 20000)) == (30000, 20000)
    assert len(hostile.png_bomb(30000, 30000)) < 1000


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"GIF8", b"BM", b"RIFF0000WEBP", b"II*\x00\xff\xff\xff\x7f", b"random"])
def test_declared_size_of_fragments_is_unknown(data: bytes) -> None:
    assert imagesize.declared_size(data) is None


def test_a_jpeg_whose_frame_header_lies_beyond_the_head_is_unknown(stills: Path) -> None:
    # Cut inside the header: the size is not there, so it is not guessed.
    jpeg = (stills / "still.jpg").read_bytes()
    frame = next(at for at in range(2, len(jpeg) - 1) if jpeg[at] == 0xFF and jpeg[at + 1] == 0xC0)
    assert imagesize.declared_size(jpeg[: frame + 6]) is None
    assert imagesize.declared_size(jpeg[: frame + 9]) == (123, 45)
