"""What a file is and what becomes of it, decided from its first bytes and its probe.

Pure: the pipeline reads the bytes, runs the probe child and records the :class:`Verdict`.
The rules, in order:

1. PDFs and ZIP archives are recognised by their magic bytes and never probed.
2. An image whose header declares more pixels than allowed fails before anything decodes it.
3. A format that may not be opened (a recipe naming other files, or one off the allow-list) is
   kept as it is: kind ``other``, with a warning saying why, and no working copies.
4. A picture over the pixel limits fails (the probe refused it before decoding).
5. A file nothing can read is ``text`` when its first bytes are text (:mod:`transcode.textcopy`),
   else ``other``; but one named like media fails (an officer expects footage), unless it is a
   text list of other files or locations, which is rule 3 again.
6. Media is classified from its probe and keeps the demuxer that opened it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transcode import formats, imagesize, probe, recipes, textcopy
from transcode.probe_child import Outcome

# Files named like media that cannot be read as media are failed, not filed as "other".
MEDIA_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .avi .mkv .3gp .3g2 .mpg .mpeg .ts .m2ts .vob .wmv .flv .webm .dav .h264 .264 .h265 .265 .hevc"
    " .mp3 .m4a .wav .amr .aac .ogg .flac .wma".split()
)
LIST_OF_LOCATIONS = "a text file that names other files or locations"


@dataclass(frozen=True)
class Bounds:
    max_image_pixels: int
    max_video_pixels: int


@dataclass(frozen=True)
class Verdict:
    """Fail the item with ``failure``; or record ``kind``, ``summary`` and ``warnings``, keeping
    ``probe`` (when there is one) as the item's probe.json."""

    kind: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    probe: dict[str, Any] | None = None
    failure: str | None = None


def megapixels(count: int) -> str:
    """``33177600`` -> "33.2 megapixels", ``1600000000`` -> "1,600 megapixels" (never 1.6e+03)."""
    value = count / 1e6
    return f"{value:,.0f} megapixels" if value >= 100 else f"{value:.3g} megapixels"


def too_large(what: str, width: int, height: int, limit: int) -> str:
    return (
        f"{what} {width}x{height} pixels ({megapixels(width * height)}), more than the {megapixels(limit)} allowed:"
        " not decoded"
    )


def before_probe(head: bytes, bounds: Bounds) -> Verdict | None:
    """Rules 1 and 2, from the first bytes alone; None when the file must be probed."""
    kind = probe.classify(head, None)
    if kind in ("pdf", "archive"):
        return Verdict(kind=kind)
    if kind == "image":
        declared = imagesize.declared_size(head)
        if declared and declared[0] * declared[1] > bounds.max_image_pixels:
            return Verdict(failure=too_large("the image is", *declared, bounds.max_image_pixels))
    return None


def pixel_limit(head: bytes, bounds: Bounds) -> int:
    """The limit a file's pictures are held to: stills by their magic bytes, else video."""
    return bounds.max_image_pixels if probe.classify(head, None) == "image" else bounds.max_video_pixels


def after_probe(
    head: bytes, filename_suffix: str, outcome: Outcome, bounds: Bounds, *, raw: str | None, framerate: str | None,
) -> Verdict:
    """Rules 3 to 6, from what the probe child answered (``outcome.stopped`` is the caller's)."""
    magic = probe.classify(head, None)
    if outcome.refusal:
        return Verdict(kind="other", warnings=[outcome.refusal])
    if outcome.pixels:
        width, height, limit = outcome.pixels
        still = magic == "image" or formats.is_image(outcome.demuxer or "")
        return Verdict(failure=too_large("the image is" if still else "its frames are", width, height, limit))
    found = outcome.data
    if found is None:
        if magic == "image" or filename_suffix in MEDIA_SUFFIXES or raw:
            if recipes.names_other_files(head):
                return Verdict(kind="other", warnings=[formats.no_working_copy(LIST_OF_LOCATIONS, refers=True)])
            return Verdict(failure=outcome.error or "not readable as media: no demuxer recognises it")
        return Verdict(kind="text" if textcopy.encoding_of(head) else "other")
    kind = probe.classify(head, found)
    summary = probe.summarise(found)
    limit = bounds.max_image_pixels if kind == "image" else bounds.max_video_pixels
    width, height = summary.get("width") or 0, summary.get("height") or 0
    if kind in ("video", "image") and width * height > limit:
        return Verdict(failure=too_large("the image is" if kind == "image" else "its frames are", width, height, limit))
    warnings = []
    if summary.get("frame_rate_assumed") and kind == "video":
        warnings.append(
            f"frame rate assumed {summary.get('frame_rate') or probe.ASSUMED_FRAME_RATE:g}: the stream carries no timing;"
            " give the recorder's rate as 'framerate' upload metadata"
        )
    summary.update({"demuxer": outcome.demuxer, "input_framerate": framerate})
    return Verdict(kind=kind, summary=summary, warnings=warnings, probe=found)
