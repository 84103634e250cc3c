"""CCTV-like footage long enough that making its proxy takes seconds, so a worker can be
killed in the middle (the shared media library's clips are two seconds)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil

from tests.support.processes import Service
from transcode.ffmpeg import resolve_ffmpeg


def make_clip(path: Path, seconds: int, size: str = "640x480", frequency: int = 440) -> Path:
    """An MPEG-4/MP3 AVI, as DVRs export: the proxy is a real transcode, not a remux."""
    subprocess.run(
        [resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=44100:duration={seconds}",
         "-c:v", "mpeg4", "-q:v", "4", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True, capture_output=True, timeout=120,
    )
    return path


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
