"""The pipeline's steps and the queues they run on: one Celery task per step.

A step's task is named ``evidence.<step>``. Queued messages carry these names (a broker may
hold them across an upgrade, and workers of two versions may share it), so a step is never
renamed. Pure: imports nothing from the project.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

QueueName = Literal["ingest", "transcode"]
INGEST: Final = "ingest"  # hashing, probing, manifests, thumbnails: I/O-bound, short
TRANSCODE: Final = "transcode"  # validation and working copies of video: long, CPU-bound
QUEUES: Final[tuple[QueueName, ...]] = (INGEST, TRANSCODE)


class Step(StrEnum):
    HASH_ORIGINAL = "hash_original"
    PROBE_ORIGINAL = "probe_original"
    VALIDATE_MEDIA = "validate_media"
    MAKE_PROXY = "make_proxy"
    MAKE_STILLS = "make_stills"
    MAKE_HLS = "make_hls"
    MAKE_THUMBNAIL = "make_thumbnail"
    MAKE_MANIFEST = "make_manifest"
    MAKE_VIEW = "make_view"
    MAKE_AUDIO = "make_audio"
    MAKE_TEXT = "make_text"
    MAKE_PAGES = "make_pages"
    MAKE_PREVIEWS = "make_previews"
    FINISH_ITEM = "finish_item"

    @property
    def task(self) -> str:
        """The Celery task's name."""
        return f"evidence.{self.value}"

    @property
    def queue(self) -> QueueName:
        return TRANSCODE if self in _TRANSCODING else INGEST


_TRANSCODING = frozenset({
    Step.VALIDATE_MEDIA, Step.MAKE_PROXY, Step.MAKE_STILLS, Step.MAKE_HLS, Step.MAKE_AUDIO, Step.MAKE_PAGES, Step.MAKE_PREVIEWS,
})
