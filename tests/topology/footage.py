"""Whether a worker is in the middle of making a proxy (of footage from
``tests.support.media.make_clip``, long enough that this takes seconds), so it can be killed there."""

from __future__ import annotations

import psutil

from tests.support.processes import Service


def making_proxy(worker: Service) -> bool:
    """Whether one of the worker's processes is running the ffmpeg that makes a proxy."""
    if not worker.running:
        return False
    try:
        family = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for process in family:
        try:
            if "proxy.mp4" in " ".join(process.cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False
