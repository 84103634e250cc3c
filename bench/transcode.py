"""Processing bench: the pipeline's wall time against the same ffmpeg command run directly,
the remux path's time per GB, and hashing throughput against Python's ``hashlib``.

    python -m bench.transcode [--seconds 60] [--avi-size 1280x720] [--remux-size 1GB]
                              [--out bench/results/transcode.json] [--tmp-dir DIR]

Media is generated with the pinned ffmpeg (lavfi ``testsrc2`` + ``sine``): a 1080p25
H.264/AAC MP4 (browser-playable: the remux path) and an MPEG-4 Part 2/MP3 AVI (an encode),
720p by default so that one transcode takes tens of seconds rather than minutes on a small
machine (``--avi-size 1920x1080`` for 1080p). The remux figure uses the H.264 clip looped
(``-stream_loop``, stream copy) to ``--remux-size``.

Each measurement uses a real ``evidence serve`` (SQLite, local vault) and real tus uploads:
- end to end: the embedded worker (Celery, SQLite broker) runs the whole pipeline; time from
  the upload's last byte acknowledged to ``ready``, and each task's own time from the worker log;
- the proxy step alone: ``transcode.pipeline.make_proxy`` called in this process on an item of
  a server without a worker, against the argument list it recorded (``derivative.created``),
  run directly with ``subprocess`` (input from the vault path, output to a temporary file);
- hashing: ``transcode.hashing.hash_stream`` against ``hashlib`` on the same file (warm page
  cache, best of three), and ``pipeline.hash_original`` (through the vault) on the big item.
Sizes: MB = 10^6 bytes, GB = 10^9 bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
from rich.table import Table
from tusclient.client import TusClient

from evidence.cli.sizes import parse_size
from evidence.models import DerivativeKind, ItemState
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.support.server import Server
from transcode import pipeline
from transcode.ffmpeg import resolve_ffmpeg
from transcode.hashing import hash_stream
from transcode.steps import Step

console = Console()
TARGET_OVERHEAD = 0.10  # the proxy step within 10% of ffmpeg run directly
TARGET_REMUX_S_PER_GB = 5.0
TARGET_HASH_OVERHEAD = 0.10
BLOCK = 4 * 1024 * 1024
MB, GB = 10**6, 10**9


# -- media --------------------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run([resolve_ffmpeg().exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def lavfi(size: str, seconds: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]


def make_media(folder: Path, seconds: int, avi_size: str, remux_size: int) -> dict[str, Path]:
    h264 = folder / "cctv_1080p25_h264_aac.mp4"
    avi = folder / f"dvr_{avi_size.split('x')[1]}p25_mpeg4_mp3.avi"
    big = folder / "cctv_1080p25_h264_aac_long.mp4"
    if not h264.exists():
        ffmpeg(*lavfi("1920x1080", seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(h264))
    if not avi.exists():
        ffmpeg(*lavfi(avi_size, seconds), "-c:v", "mpeg4", "-q:v", "3", "-c:a", "libmp3lame", "-b:a", "128k",
               "-shortest", str(avi))
    if not big.exists():
        loops = max(0, -(-remux_size // h264.stat().st_size) - 1)
        ffmpeg("-stream_loop", str(loops), "-i", str(h264), "-c", "copy", str(big))
    return {"h264": h264, "avi": avi, "big": big}


# -- servers and uploads ------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


class Instance:
    """A running server with an officer's token and a case."""

    def __init__(self, root: Path, embedded_worker: bool) -> None:
        root.mkdir(parents=True)
        self.server = Server(root, {"EVIDENCE_EMBEDDED_WORKER": str(embedded_worker).lower()}).start(timeout=60)
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
        upload_id = uploader.url.rstrip("/").rsplit("/", 1)[-1]
        response = requests.get(f"{self.server.url}/api/v1/uploads/{upload_id}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()["item"], done

    def item(self, item_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.server.url}/api/v1/items/{item_id}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.server.stop()


TASK_LINE = re.compile(r"Task evidence\.(\w+)\[[0-9a-f-]+\] succeeded in ([0-9.]+)s")


def end_to_end(instance: Instance, path: Path) -> dict[str, Any]:
    """Upload, then wait for ``ready``: wall time from upload complete, and each task's time."""
    log_start = instance.server.log.stat().st_size
    item_id, uploaded = instance.upload(path)
    while not ItemState((item := instance.item(item_id))["state"]).settled:
        time.sleep(0.05)
    seconds = time.monotonic() - uploaded
    if item["state"] != ItemState.READY:
        raise RuntimeError(f"{path.name} ended {item['state']}: {item['reason']}")
    with open(instance.server.log, "rb") as log:
        log.seek(log_start)
        tasks: dict[str, float] = {}
        for name, took in TASK_LINE.findall(log.read().decode("utf-8", "replace")):
            tasks[name] = tasks.get(name, 0.0) + float(took)
    return {"item": item_id, "seconds": seconds, "tasks": tasks, "media": item["media"]}


# -- the proxy step alone, and the same command run directly -----------------------------------


def timed(run: Callable[[], Any]) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started


def step_alone(instance: Instance, rt: Runtime, path: Path, *, validate: bool) -> dict[str, Any]:
    item_id, _ = instance.upload(path)
    steps = {Step.HASH_ORIGINAL: timed(lambda: pipeline.hash_original(rt, item_id))}
    steps[Step.PROBE_ORIGINAL] = timed(lambda: pipeline.probe_original(rt, item_id))
    if validate:
        steps[Step.VALIDATE_MEDIA] = timed(lambda: pipeline.validate_media(rt, item_id))
    steps[Step.MAKE_PROXY] = timed(lambda: pipeline.make_proxy(rt, item_id))
    item = instance.item(item_id)
    if item["state"] != ItemState.PROCESSING:
        raise RuntimeError(f"{path.name}: {item['state']} {item['reason']}")
    proxy = next(d for d in item["derivatives"] if d["kind"] == DerivativeKind.PROXY)
    return {"item": item_id, "size": item["size"], "steps": steps, "method": proxy["method"],
            "proxy_size": proxy["size"], "media": item["media"]}


def direct(rt: Runtime, storage_key: str, argv: list[str], work: Path) -> float:
    """The recorded command, with the input (recorded as "original") and output name made
    local again, as the worker opens them (a local path as ``file:PATH``)."""
    out = work / "direct-proxy.mp4"
    location = rt.vault.tool_input(storage_key)
    local = {"original": location if "://" in location else f"file:{location}", "proxy.mp4": str(out)}
    command = [resolve_ffmpeg().exe, *[local.get(arg, arg) for arg in argv[1:]]]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    out.unlink()
    return seconds


def storage_key(instance: Instance, item_id: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{instance.server.data_dir / 'evidence.db'}")
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT storage_key FROM items WHERE id = :id"), {"id": item_id}).scalar_one())
    finally:
        engine.dispose()


# -- hashing ------------------------------------------------------------------------------------


def hashlib_baseline(path: Path, names: tuple[str, ...]) -> None:
    digests = [hashlib.new(name) for name in names]
    with open(path, "rb") as stream:
        while block := stream.read(BLOCK):
            for digest in digests:
                digest.update(block)


def ours(path: Path, names: tuple[str, ...]) -> None:
    with open(path, "rb") as stream:
        hash_stream(stream, names)


def best_of(runs: int, run: Callable[[], Any]) -> float:
    return min(timed(run) for _ in range(runs))


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
    with open(path, "rb") as stream:
        file_digest = best_of(3, lambda: (stream.seek(0), hashlib.file_digest(stream, "sha256")))
    result["sha256"]["file_digest_mb_per_s"] = size / file_digest / MB
    return result


# -- report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "✓" if ok else "✗"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, value, compared with, target) for the table and the Markdown."""
    out = []
    for clip in result["clips"]:
        alone, e2e = clip["alone"], clip["end_to_end"]
        proxy, plain = alone["steps"]["make_proxy"], clip["direct_seconds"]
        over = proxy / plain - 1
        kind = "remux" if alone["method"]["remux"] else "encode"
        out.append((f"{clip['label']}: proxy step ({kind}), `pipeline.make_proxy`", f"{proxy:.2f} s",
                    f"ffmpeg direct {plain:.2f} s ({over:+.1%})", f"within 10% {verdict(over <= TARGET_OVERHEAD)}"))
        task = e2e["tasks"].get("make_proxy")
        if task is not None:
            over_task = task / plain - 1
            out.append((f"{clip['label']}: proxy as a Celery task (worker log)", f"{task:.2f} s",
                        f"ffmpeg direct {plain:.2f} s ({over_task:+.1%})", f"within 10% {verdict(over_task <= TARGET_OVERHEAD)}"))
        steps = ", ".join(f"{name.replace('make_', '').replace('_original', '').replace('_media', '')} {seconds:.1f}"
                          for name, seconds in e2e["tasks"].items())
        out.append((f"{clip['label']}: upload complete → ready (whole pipeline)", f"{e2e['seconds']:.2f} s",
                    f"tasks: {steps}", "—"))
    remux = result["remux"]
    out.append((f"remux path, {remux['size'] / GB:.2f} GB H.264/AAC (`make_proxy`: copy, hash, store)",
                f"{remux['seconds_per_gb']:.2f} s/GB", f"ffmpeg -c copy alone {remux['direct_seconds_per_gb']:.2f} s/GB",
                f"< 5 s/GB {verdict(remux['seconds_per_gb'] < TARGET_REMUX_S_PER_GB)}"))
    out.append((f"`pipeline.hash_original` on the same {remux['size'] / GB:.2f} GB item (vault read, sha256)",
                f"{remux['hash_original_mb_per_s']:.0f} MB/s", "—", "—"))
    for label, figures in result["hashing"].items():
        ratio = figures["hash_stream_mb_per_s"] / figures["hashlib_mb_per_s"] - 1
        baseline = f"hashlib {figures['hashlib_mb_per_s']:.0f} MB/s ({ratio:+.1%})"
        if "file_digest_mb_per_s" in figures:
            baseline += f"; file_digest {figures['file_digest_mb_per_s']:.0f}"
        out.append((f"`hash_stream` {label}", f"{figures['hash_stream_mb_per_s']:.0f} MB/s", baseline,
                    f"within 10% {verdict(ratio >= -TARGET_HASH_OVERHEAD)}"))
    return out


def print_table(result: dict[str, Any]) -> None:
    table = Table(title="Processing bench", caption=result["setup"])
    for name in ("measure", "value", "compared with", "target"):
        table.add_column(name)
    for row in rows(result):
        table.add_row(*[cell.replace("`", "") for cell in row])
    console.print(table)


def markdown(result: dict[str, Any]) -> str:
    lines = [result["setup"], "", "| measure | value | compared with | target |", "|---|---:|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows(result)]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transcode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the two clips (60)")
    parser.add_argument("--avi-size", default="1280x720", help="frame size of the MPEG-4 AVI (1280x720)")
    parser.add_argument("--remux-size", type=parse_size, default=parse_size("1GB"), help="size of the remux input (1GB)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/transcode.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where media and server data go (system temp)")
    parser.add_argument("--media-dir", type=Path, default=None, help="keep generated media here and reuse it")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    tool = resolve_ffmpeg()
    work = Path(tempfile.mkdtemp(prefix="bench-transcode-", dir=args.tmp_dir))
    try:
        media_dir = args.media_dir or work / "media"
        media_dir.mkdir(parents=True, exist_ok=True)
        console.print(f"making media in {media_dir} ...")
        started = time.monotonic()
        media = make_media(media_dir, args.seconds, args.avi_size, args.remux_size)
        console.print(f"  done in {time.monotonic() - started:.0f} s")
        clips = [("H.264/AAC MP4 1080p25", media["h264"]), (f"MPEG-4/MP3 AVI {args.avi_size.split('x')[1]}p25", media["avi"])]

        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
            "ffmpeg": tool.version,
            "media": {key: {"name": path.name, "size": path.stat().st_size} for key, path in media.items()},
            "clips": [],
        }
        settings = Settings()
        result["setup"] = (
            f"{args.seconds} s clips made with lavfi testsrc2: H.264/AAC MP4 1080p25 (remux path) and MPEG-4/MP3 AVI"
            f" {args.avi_size} 25 fps (encoded to H.264 {pipeline.ffmpeg.X264_PRESET} CRF {pipeline.ffmpeg.X264_CRF},"
            f" {settings.ffmpeg_threads} threads). ffmpeg {tool.version}; {os.cpu_count()} CPUs; one run each,"
            " nothing else running. MB = 10^6 bytes, GB = 10^9 bytes."
        )

        console.print("end to end (embedded worker) ...")
        embedded = Instance(work / "embedded", embedded_worker=True)
        try:
            e2e = {label: end_to_end(embedded, path) for label, path in clips}
        finally:
            embedded.stop()

        console.print("each step alone, and ffmpeg direct ...")
        quiet = Instance(work / "steps", embedded_worker=False)
        rt = Runtime.build(Settings(data_dir=quiet.server.data_dir))
        try:
            for label, path in clips:
                alone = step_alone(quiet, rt, path, validate=True)
                plain = direct(rt, storage_key(quiet, alone["item"]), alone["method"]["argv"], work)
                result["clips"].append({"label": label, "file": path.name, "size": path.stat().st_size,
                                        "end_to_end": e2e[label], "alone": alone, "direct_seconds": plain})
                console.print(f"  {label}: make_proxy {alone['steps']['make_proxy']:.2f} s, direct {plain:.2f} s")

            console.print(f"remux path on {media['big'].stat().st_size / GB:.2f} GB ...")
            big = step_alone(quiet, rt, media["big"], validate=False)
            plain = direct(rt, storage_key(quiet, big["item"]), big["method"]["argv"], work)
            size = big["size"]
            result["remux"] = {
                "size": size, "steps": big["steps"], "remux": big["method"]["remux"],
                "seconds_per_gb": big["steps"]["make_proxy"] / (size / GB),
                "direct_seconds_per_gb": plain / (size / GB),
                "hash_original_mb_per_s": size / big["steps"]["hash_original"] / MB,
            }
        finally:
            rt.close()
            quiet.stop()

        console.print("hashing ...")
        result["hashing"] = hashing(media["big"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["markdown"] = markdown(result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print_table(result)
    console.print(result["markdown"], markup=False, highlight=False, soft_wrap=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
