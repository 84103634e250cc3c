"""Exhibits of every kind a reviewer is shown, made for the tests: a photo taken on its side
with EXIF tags, a PDF of several pages, a phone extraction (ZIP) holding a photo, a clip and
notes, an interview recording, a text file whose words are markup, and a Word document.
Real files, made with Pillow, ffmpeg and zipfile; a few KiB to a few hundred each."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from tests.support.media import library
from transcode.ffmpeg import resolve_ffmpeg

CAMERA = {271: "Apple", 272: "iPhone 12", 306: "2024:03:01 02:14:00"}  # Make, Model, DateTime
ORIENTATION_TAG = 274
PDF_PAGES = 3
NOTES = "Officer's notes\n<script>alert('notes')</script> & <b>not bold</b>\n"
# What the extraction holds, in this order (its manifest lists them so).
EXTRACTION = ("DCIM/", "DCIM/IMG_0001.jpg", "DCIM/VID_0002.mp4", "Notes/notes.txt")


def photo_bytes(size: tuple[int, int] = (640, 480), label: str = "IMG 0001", exif: bool = True) -> bytes:
    """A JPEG stored landscape with EXIF orientation 6 (shown turned 90 degrees clockwise):
    a viewer that ignores the tag shows it on its side."""
    image = Image.new("RGB", size, (30, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0] // 4, size[1] // 4), fill=(240, 200, 0))  # a corner marker
    draw.text((size[0] // 3, size[1] // 2), label, fill=(255, 255, 255))
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        for tag, value in CAMERA.items():
            tags[tag] = value
        tags[ORIENTATION_TAG] = 6
        image.save(out, "JPEG", quality=85, exif=tags.tobytes())
    else:
        image.save(out, "JPEG", quality=85)
    return out.getvalue()


def photo(path: Path) -> Path:
    path.write_bytes(photo_bytes())
    return path


def pdf(path: Path, pages: int = PDF_PAGES) -> Path:
    """A PDF of ``pages`` pages, each with its number written large."""
    sheets = []
    for number in range(1, pages + 1):
        sheet = Image.new("RGB", (595, 842), (255, 255, 255))
        draw = ImageDraw.Draw(sheet)
        draw.rectangle((40, 40, 555, 802), outline=(0, 0, 0), width=4)
        draw.text((260, 400), f"Page {number}", fill=(0, 0, 0), font_size=40)
        sheets.append(sheet)
    sheets[0].save(path, "PDF", save_all=True, append_images=sheets[1:], resolution=72)
    return path


def extraction(path: Path) -> Path:
    """A phone extraction: a folder, a photo, a clip and a text file."""
    clip = library().path("h264_aac_mp4").read_bytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(EXTRACTION[0], b"")
        archive.writestr(EXTRACTION[1], photo_bytes((320, 240), "inner", exif=False))
        archive.writestr(EXTRACTION[2], clip)
        archive.writestr(EXTRACTION[3], NOTES)
    return path


def recording(path: Path, seconds: int = 3) -> Path:
    """An interview recording: MP3, mono."""
    subprocess.run(
        [resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=22050:duration={seconds}",
         "-ac", "1", "-c:a", "libmp3lame", "-b:a", "48k", str(path)],
        check=True, capture_output=True, timeout=60,
    )
    return path


def notes(path: Path) -> Path:
    path.write_text(NOTES * 40, encoding="utf-8")
    return path


def word_document(path: Path) -> Path:
    """A minimal Office Open XML document (.docx), as Word writes its parts."""
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
        'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        '</Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats'
        '.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Witness statement</w:t></w:r></w:p></w:body>'
        '</w:document>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path
