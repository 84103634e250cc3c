"""Time to playable: from an upload's last byte to the reviewer's proxy, against bare ffmpeg
running the same proxy command on the same input; the remux path's time per GB; hashing
throughput against Python's ``hashlib``.

    python -m bench.transcode [--seconds 600] [--avi-size 1280x720]
                              [--out bench/results/transcode.json] [--media-dir DIR]

Media is made once with the pinned ffmpeg (lavfi ``testsrc2`` + ``sine``, one minute encoded,
then repeated by stream copy to the length asked for) and kept in a cache folder outside git
(``$EVIDENCE_BENCH_CACHE/media``, by default ``~/.cache/evidence-bench``), so a re-run does not
make it again: a 1080p25 H.264/AAC MP4 (browser-playable: the remux path) and an MPEG-4
Part 2/MP3 AVI (re-encoded to H.264: the encode path), 10 minutes each. The AVI
is 720p by default, as DVR exports often are, so one encode takes minutes rather than a
quarter of an hour on a small machine (``--avi-size 1920x1080`` for 1080p).

Each clip goes through a real ``evidence serve`` (SQLite, local vault, the embedded Celery
worker) by a real tus upload. Timed from the upload's last chunk acknowledged until the item
lists its proxy ("playable": the API polled every 0.1 s), and until it is ``ready`` (stills
and, for footage of 10 minutes or more, HLS); each task's own time from the worker log. Then
the proxy's recorded ffmpeg command (``derivative.created``) is run directly with
``subprocess`` on the stored original: bare ffmpeg's time to the same proxy.

Targets: the remux path's proxy step under 5 s/GB (the Celery task's time, worker log, over the
original's size), and the proxy step within 10% of bare ffmpeg. Sizes: MB = 10^6, GB = 10^9.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from tusclient.client import TusClient

from bench.measure import run_and_save
from evidence.models import DerivativeKind, ItemState
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.support.server import Server
from transcode.ffmpeg import X264_CRF, X264_PRESET, resolve_ffmpeg
from transcode.hashing import hash_stream

console = Console(stderr=True)
TARGET_OVERHEAD = 0.10  # the proxy step within 10% of ffmpeg run directly
TARGET_REMUX_S_PER_GB = 5.0
TARGET_HASH_OVERHEAD = 0.10
BLOCK = 4 * 1024 * 1024
MB, GB = 10**6, 10**9
POLL = 0.1


def cache_dir() -> Path:
    """Where benchmarks keep what is slow to make (media, peers), outside the repository."""
    return Path(os.environ.get("EVIDENCE_BENCH_CACHE", Path.home() / ".cache" / "evidence-bench"))


# -- media --------------------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run([resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def lavfi(size: str, seconds: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]


def cached(path: Path, make: Callable[[Path], None]) -> Path:
    """``path`` if a previous run made it; else made through a temporary name, so a run stopped
    half way never leaves a truncated file that a later run would take for finished."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".partial-{path.name}")
        console.print(f"making {path.name} (once; kept in {path.parent}) ...")
        make(partial)
        partial.rename(path)
    return path


def looped(folder: Path, name: str, seconds: int, make_minute: Callable[[Path], None]) -> Path:
    """``seconds`` of footage: one minute made once, then repeated by stream copy (a tenth of the
    encoding time on a small machine; still one continuous stream to probe, decode and remux)."""
    minute = cached(folder / f"{Path(name).stem}-60s{Path(name).suffix}", make_minute)
    if seconds <= 60:
        return minute
    loops = -(-seconds // 60) - 1
    return cached(folder / f"{Path(name).stem}-{seconds}s{Path(name).suffix}", lambda out: ffmpeg(
        "-stream_loop", str(loops), "-i", str(minute), "-t", str(seconds), "-c", "copy",
        "-f", Path(name).suffix.lstrip("."), str(out)))


def h264_clip(folder: Path, seconds: int, size: str = "1920x1080") -> Path:
    """Browser-playable H.264/AAC in MP4, as a CCTV export often is: the remux path."""
    return looped(folder, f"cctv_{size}_h264_aac.mp4", seconds, lambda out: ffmpeg(
        *lavfi(size, 60), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-shortest", "-f", "mp4", str(out)))


def avi_clip(folder: Path, seconds: int, size: str) -> Path:
    """MPEG-4 Part 2 and MP3 in AVI, as older DVRs export: the encode path."""
    return looped(folder, f"dvr_{size}_mpeg4_mp3.avi", seconds, lambda out: ffmpeg(
        *lavfi(size, 60), "-c:v", "mpeg4", "-q:v", "3", "-c:a", "libmp3lame", "-b:a", "128k", "-shortest",
        "-f", "avi", str(out)))


# -- a server, an upload, the wait for the proxy -------------------------------------------------


def sha256_file(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


class Instance:
    """A running server with an officer's token and a case."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True)
        self.root, self.env = root, {"EVIDENCE_EMBEDDED_WORKER": "true", **(env or {})}
        self.server = Server(root, self.env).start(timeout=60)
        self.token = self.server.token()
        self.case = self.server.case("BENCH")
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def upload(self, path: Path) -> tuple[str, float]:
        """Upload over tus; returns (item id, monotonic time the last chunk was acknowledged)."""
        with open(path, "rb") as stream:
            uploader = TusClient(f"{self.server.url}/files/", headers=self.headers).uploader(
                file_stream=stream, chunk_size=64 * 1024 * 1024,
                metadata={"filename": path.name, "case": self.case, "sha256": sha256_file(path)},
            )
            uploader.upload()
        done = time.monotonic()
        upload_id = str(uploader.url).rstrip("/").rsplit("/", 1)[-1]
        response = requests.get(f"{self.server.url}/api/v1/uploads/{upload_id}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()["item"], done

    def item(self, item_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.server.url}/api/v1/items/{item_id}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def restart(self, serve_args: tuple[str, ...]) -> None:
        """The same data dir served again, with other ``evidence serve`` options."""
        self.server.stop()
        self.server = Server(self.root, self.env, serve_args=serve_args).start(timeout=120)

    def stop(self) -> None:
        self.server.stop()


TASK_LINE = re.compile(r"Task evidence\.(\w+)\[[0-9a-f-]+\] succeeded in ([0-9.]+)s")


def proxy_of(item: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in item["derivatives"] if d["kind"] == DerivativeKind.PROXY), None)


def time_to_playable(instance: Instance, path: Path) -> dict[str, Any]:
    """Upload, then poll until the item lists its proxy and until it is settled."""
    log_start = instance.server.log.stat().st_size
    item_id, uploaded = instance.upload(path)
    playable: float | None = None
    while True:
        item = instance.item(item_id)
        if playable is None and proxy_of(item) is not None:
            playable = time.monotonic() - uploaded
        if ItemState(item["state"]).settled:
            break
        time.sleep(POLL)
    ready = time.monotonic() - uploaded
    proxy = proxy_of(item)
    if item["state"] != ItemState.READY or proxy is None or playable is None:
        raise RuntimeError(f"{path.name} ended {item['state']}: {item['reason']}")
    with open(instance.server.log, "rb") as log:
        log.seek(log_start)
        tasks: dict[str, float] = {}
        for name, took in TASK_LINE.findall(log.read().decode("utf-8", "replace")):
            tasks[name] = tasks.get(name, 0.0) + float(took)
    return {"item": item_id, "size": item["size"], "playable_seconds": playable, "ready_seconds": ready,
            "tasks": tasks, "media": item["media"], "method": proxy["method"], "proxy_size": proxy["size"]}


def storage_key(instance: Instance, item_id: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{instance.server.data_dir / 'evidence.db'}")
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT storage_key FROM items WHERE id = :id"), {"id": item_id}).scalar_one())
    finally:
        engine.dispose()


def bare_ffmpeg(instance: Instance, item_id: str, argv: list[str], work: Path) -> float:
    """The recorded proxy command, with the input (recorded as "original") and the output
    named locally again as the worker opened them (a local path as ``file:PATH``)."""
    rt = Runtime.build(Settings(data_dir=instance.server.data_dir, embedded_worker=False))
    try:
        location = rt.vault.tool_input(storage_key(instance, item_id))
    finally:
        rt.close()
    out = work / "direct-proxy.mp4"
    local = {"original": location if "://" in location else f"file:{location}", "proxy.mp4": str(out)}
    command = [resolve_ffmpeg().exe, *[local.get(arg, arg) for arg in argv[1:]]]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    out.unlink()
    return seconds


# -- hashing ------------------------------------------------------------------------------------


def timed(run: Callable[[], Any]) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started


def hashlib_baseline(path: Path, names: tuple[str, ...]) -> None:
    digests = [hashlib.new(name) for name in names]
    with open(path, "rb") as stream:
        while block := stream.read(BLOCK):
            for digest in digests:
                digest.update(block)


def ours(path: Path, names: tuple[str, ...]) -> None:
    with open(path, "rb") as stream:
        hash_stream(stream, names)


def hashing(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    ours(path, ("sha256",))  # warm the page cache
    result = {}
    for label, names in (("sha256", ("sha256",)), ("sha256+md5+sha1", ("sha256", "md5", "sha1"))):
        # Interleaved, best of three each, so neither side gets a quieter moment.
        baseline, mine = [], []
        for _ in range(3):
            baseline.append(timed(lambda names=names: hashlib_baseline(path, names)))  # type: ignore[misc]
            mine.append(timed(lambda names=names: ours(path, names)))  # type: ignore[misc]
        result[label] = {"hashlib_mb_per_s": size / min(baseline) / MB, "hash_stream_mb_per_s": size / min(mine) / MB}
    return result


# -- results ------------------------------------------------------------------------------------


def clip_row(label: str, path: Path, run: dict[str, Any], bare: float) -> dict[str, Any]:
    size = run["size"]
    proxy_task = run["tasks"].get("make_proxy")
    return {
        "clip": label, "file": path.name, "size": size, "remux": bool(run["method"].get("remux")),
        "duration_s": run["media"].get("duration"),
        "playable_s": run["playable_seconds"], "ready_s": run["ready_seconds"],
        "ffmpeg_s": bare, "proxy_task_s": proxy_task,
        "playable_s_per_gb": run["playable_seconds"] / (size / GB),
        "proxy_task_s_per_gb": proxy_task / (size / GB) if proxy_task is not None else None,
        "tasks": run["tasks"], "proxy_size": run["proxy_size"], "argv": run["method"]["argv"],
    }


def targets(rows: list[dict[str, Any]], hashes: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        task = row["proxy_task_s"]
        if row["remux"]:
            per_gb = row["proxy_task_s_per_gb"]
            out.append({"what": f"{row['clip']}: remux path, proxy step (copy, hash, store) per GB",
                        "goal": f"< {TARGET_REMUX_S_PER_GB:g} s/GB", "measured": f"{per_gb:.2f} s/GB",
                        "peer": f"bare ffmpeg {row['ffmpeg_s'] / (row['size'] / GB):.2f} s/GB",
                        "met": per_gb is not None and per_gb < TARGET_REMUX_S_PER_GB})
        elif task is not None:
            over = task / row["ffmpeg_s"] - 1
            out.append({"what": f"{row['clip']}: proxy step (encode, Celery task) against bare ffmpeg",
                        "goal": "within 10%", "measured": f"{task:.1f} s ({over:+.1%})",
                        "peer": f"bare ffmpeg {row['ffmpeg_s']:.1f} s", "met": over <= TARGET_OVERHEAD})
        out.append({"what": f"{row['clip']}: upload complete → proxy ready (time to playable)", "goal": "—",
                    "measured": f"{row['playable_s']:.1f} s", "peer": f"bare ffmpeg {row['ffmpeg_s']:.1f} s",
                    "met": None})
    for label, figures in hashes.items():
        ratio = figures["hash_stream_mb_per_s"] / figures["hashlib_mb_per_s"] - 1
        out.append({"what": f"hash_stream {label}", "goal": "within 10% of hashlib",
                    "measured": f"{figures['hash_stream_mb_per_s']:.0f} MB/s",
                    "peer": f"hashlib {figures['hashlib_mb_per_s']:.0f} MB/s", "met": ratio >= -TARGET_HASH_OVERHEAD})
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [result["setup"], "",
             "| clip | size | upload complete → proxy ready | → ready | proxy step (task) | bare ffmpeg, same command"
             " | each task (worker log) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in result["rows"]:
        task = "—" if row["proxy_task_s"] is None else f"{row['proxy_task_s']:.1f} s"
        steps = ", ".join(f"{name.removeprefix('make_').removesuffix('_original').removesuffix('_media')} {took:.1f}"
                          for name, took in row["tasks"].items())
        lines.append(f"| {row['clip']} | {row['size'] / GB:.2f} GB | {row['playable_s']:.1f} s"
                     f" ({row['playable_s_per_gb']:.1f} s/GB) | {row['ready_s']:.1f} s | {task} | {row['ffmpeg_s']:.1f} s"
                     f" | {steps} |")
    lines += ["", "| target | goal | measured | compared with | met |", "|---|---|---:|---|---|"]
    for t in result["targets"]:
        met = "—" if t["met"] is None else ("✓" if t["met"] else "✗")
        lines.append(f"| {t['what']} | {t['goal']} | {t['measured']} | {t['peer']} | {met} |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transcode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600, help="length of the two clips (600)")
    parser.add_argument("--avi-size", default="1280x720", help="frame size of the MPEG-4 AVI (1280x720)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/transcode.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where server data goes (system temp)")
    parser.add_argument("--media-dir", type=Path, default=None, help="generated media, kept between runs")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    tool = resolve_ffmpeg()
    media_dir = args.media_dir or cache_dir() / "media"
    clips = [
        (f"H.264/AAC MP4 1080p25, {args.seconds // 60} min", h264_clip(media_dir, args.seconds)),
        (f"MPEG-4/MP3 AVI {args.avi_size.split('x')[1]}p25, {args.seconds // 60} min",
         avi_clip(media_dir, args.seconds, args.avi_size)),
    ]
    settings = Settings()
    loads = [os.getloadavg()[0]]
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-", dir=args.tmp_dir))
    rows = []
    try:
        instance = Instance(work / "server")
        try:
            for label, path in clips:
                console.print(f"{label}: upload, then wait for the proxy ...")
                measured = time_to_playable(instance, path)
                loads.append(os.getloadavg()[0])
                console.print(f"  playable after {measured['playable_seconds']:.1f} s, ready after"
                              f" {measured['ready_seconds']:.1f} s; bare ffmpeg ...")
                bare = bare_ffmpeg(instance, measured["item"], measured["method"]["argv"], work)
                loads.append(os.getloadavg()[0])
                console.print(f"  bare ffmpeg {bare:.1f} s")
                rows.append(clip_row(label, path, measured, bare))
        finally:
            instance.stop()
        console.print("hashing ...")
        hashes = hashing(clips[0][1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict[str, Any] = {
        "name": "transcode",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
        "ffmpeg": tool.version,
        "load_average": {"min": min(loads), "max": max(loads)},
        "setup": (
            f"{args.seconds} s clips made with lavfi testsrc2 (a minute encoded, then repeated by stream copy):"
            " H.264/AAC MP4 1080p25 (remux path) and MPEG-4/MP3 AVI"
            f" {args.avi_size} 25 fps (encoded to H.264 {X264_PRESET} CRF {X264_CRF},"
            f" {settings.ffmpeg_threads} threads). One evidence serve (SQLite, local vault, embedded worker), one run"
            f" each; ffmpeg {tool.version}; {os.cpu_count()} CPUs shared with other work (1-min load average"
            f" {min(loads):.1f}-{max(loads):.1f}). MB = 10^6 bytes, GB = 10^9 bytes."
        ),
        "rows": rows,
        "hashing": hashes,
    }
    result["targets"] = targets(rows, hashes)
    result["markdown"] = markdown(result)
    return result


def report(args: argparse.Namespace) -> dict[str, Any]:
    result = run(args)
    print(result["markdown"])
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), report)


if __name__ == "__main__":
    sys.exit(main())
