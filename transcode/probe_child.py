"""Probe an original in a child process: ``python -m transcode.probe_child``.

PyAV decodes in-process, so a decoding bomb or a crash in libav would take the worker with it.
The probe therefore runs in a child with the same bounds as ffmpeg (address space, CPU time;
:mod:`transcode.limits`). The parent writes one JSON line (the request) and then the file's
first bytes (for choosing the demuxer) on the child's stdin; the child writes one JSON object
on stdout. Whatever the child does, the parent gets an :class:`Outcome`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from transcode import limits as bounds
from transcode.limits import Limits

OUTPUT_LIMIT = 16 * 1024 * 1024  # a probe is a few KiB; tags could be large, but not this large
LOG_TAIL = 4096


@dataclass(frozen=True)
class Request:
    location: str  # a vault path or presigned URL
    head: bytes = b""  # the file's first bytes, for choosing the demuxer
    demuxer: str | None = None  # named already (our own working copies): no choosing
    raw: str | None = None  # the raw-stream demuxer the file's extension asks for
    framerate: str | None = None
    max_image_pixels: int | None = None
    max_video_pixels: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What probing found. Exactly one of ``data``, ``refusal``, ``pixels``, ``error``,
    ``stopped`` is set, or none when no demuxer recognised the bytes."""

    demuxer: str | None = None
    data: dict[str, Any] | None = None  # the ffprobe-style probe
    refusal: str | None = None  # the format may not be opened: the warning for the item
    pixels: tuple[int, int, int] | None = None  # (width, height, limit): too large to decode
    error: str | None = None  # not readable as media, in plain words
    stopped: str | None = None  # stopped by its bounds, or it crashed
    cpu_seconds: float = 0.0
    log_tail: str = field(default="", repr=False)

    @property
    def unrecognised(self) -> bool:
        return not (self.data or self.refusal or self.pixels or self.error or self.stopped)


# -- the parent's side ------------------------------------------------------------------------


def run(request: Request, *, limits: Limits | None, timeout: float) -> Outcome:
    """Probe in a child process bounded by ``limits``; never raises for anything the file does."""
    header = {key: value for key, value in asdict(request).items() if key != "head"}
    process = subprocess.Popen(
        [sys.executable, "-m", "transcode.probe_child"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=bounds.child_env(), preexec_fn=bounds.preexec(limits),
    )
    stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
    # Popen gives buffered pipes when asked for PIPE (whose read1 the readers use).
    if stdin is None or not isinstance(stdout, io.BufferedReader) or not isinstance(stderr, io.BufferedReader):
        raise RuntimeError("the probe child was started without buffered pipes")
    out: list[bytes] = []
    log: list[bytes] = []
    readers = [
        threading.Thread(target=_read, args=(stdout, out, OUTPUT_LIMIT), daemon=True),
        threading.Thread(target=_read, args=(stderr, log, LOG_TAIL), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        stdin.write(json.dumps(header).encode() + b"\n" + request.head)
        stdin.close()
    except BrokenPipeError:
        pass  # it died at once: its exit status says why
    readers[0].join(timeout)
    timed_out = readers[0].is_alive()
    if timed_out:
        os.kill(process.pid, signal.SIGKILL)
    bounds.wait_ended(process)
    returncode, cpu_seconds = bounds.reap(process)
    for reader in readers:
        reader.join(5)
    stdout.close()
    stderr.close()
    tail = b"".join(log)[-LOG_TAIL:].decode("utf-8", "replace")
    if timed_out:
        return Outcome(stopped=f"stopped: probing took longer than {timeout:.0f} s", cpu_seconds=cpu_seconds, log_tail=tail)
    stopped = bounds.stopped_reason(limits, returncode, cpu_seconds, tail) if returncode else None
    if stopped:
        return Outcome(stopped=stopped, cpu_seconds=cpu_seconds, log_tail=tail)
    output = b"".join(out)
    try:
        if len(output) >= OUTPUT_LIMIT:
            raise ValueError("more output than any probe makes")
        answer = json.loads(output)
    except ValueError:
        return Outcome(
            stopped=f"stopped: the probe ended without an answer (exit status {returncode})",
            cpu_seconds=cpu_seconds, log_tail=tail,
        )
    pixels = answer.get("pixels")
    return Outcome(
        demuxer=answer.get("demuxer"),
        data=answer.get("probe"),
        refusal=answer.get("refusal"),
        pixels=(int(pixels[0]), int(pixels[1]), int(pixels[2])) if pixels else None,
        error=answer.get("error"),
        stopped=answer.get("stopped"),
        cpu_seconds=cpu_seconds,
        log_tail=tail,
    )


def _read(stream: io.BufferedReader, into: list[bytes], keep: int) -> None:
    """Read ``stream`` to its end so the child never blocks on a full pipe, keeping the last
    ``keep`` bytes at most."""
    size = 0
    for chunk in iter(lambda: stream.read1(65536), b""):
        into.append(chunk)
        size += len(chunk)
        while into and size - len(into[0]) >= keep:
            size -= len(into.pop(0))


# -- the child's side -------------------------------------------------------------------------


def _answer(request: Request) -> dict[str, Any]:
    from transcode import formats, probe

    demuxer = request.demuxer
    if demuxer is None:
        choice = probe.choose_demuxer(request.head, raw=request.raw)
        if choice.refusal:
            return {"refusal": choice.refusal}
        if choice.demuxer is None:
            return {}
        demuxer = choice.demuxer
    limit = request.max_image_pixels if formats.is_image(demuxer) else request.max_video_pixels
    try:
        data = probe.probe(request.location, input_format=demuxer, framerate=request.framerate, max_pixels=limit)
    except probe.TooManyPixels as large:
        return {"demuxer": demuxer, "pixels": [large.width, large.height, large.limit]}
    except probe.ProbeError as error:
        return {"demuxer": demuxer, "error": str(error)}
    return {"demuxer": demuxer, "probe": data}


def main() -> int:
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline(64 * 1024))
    head = stdin.read()
    request = Request(head=head, **header)
    try:
        answer = _answer(request)
    except MemoryError:
        # Under RLIMIT_AS: say so in the log, where the parent looks for it.
        print("MemoryError: out of memory while probing", file=sys.stderr)
        return 3
    except Exception:  # anything else the file provoked: a plain reason for the parent, the detail on stderr
        traceback.print_exc()
        exc = sys.exc_info()[1]
        answer = {"error": f"the reader failed on this file ({type(exc).__name__})"}
    sys.stdout.buffer.write(json.dumps(answer).encode())
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
