"""Reviewers: many concurrent Range readers on one proxy through a signed link, against nginx
serving the same file directly.

    python -m bench.reviewers [--clients 200] [--seconds 30] [--warmup 5]
                              [--range 256KiB-1MiB] [--out bench/results/reviewers.json]

Ours: a real ``evidence serve`` (PostgreSQL, local vault, its embedded worker), an item made
with the pinned ffmpeg (a 60 s 720p H.264/AAC MP4, cached between runs) uploaded over tus and
processed to ``ready``; a link made by ``evidence share`` (the app's own share path); a view
session opened by loading the link's page, as a browser does. Then ``--clients`` connections
(keep-alive) ask for random ``Range: bytes=a-b`` slices of the proxy at
``/s/<token>/items/<id>/proxy`` for ``--seconds``, after a ``--warmup`` run whose figures are
dropped (the first request of each reviewer writes its custody entry; the page cache warms).

Peer: Debian's ``nginx-light`` (installed by apt when missing), run as our own process with a
generated configuration (``daemon off``, ``sendfile``, no access log) on a free port, serving
the very file the vault holds, with one worker process and with ``worker_processes auto``
(one per CPU). Ours is measured with ``evidence serve --workers N`` for each ``--api-workers``
value (1 and 2), and in the production shape: nginx built from ``infra/nginx.conf`` (as the
tests run it, its access log on) in front of ``evidence serve --workers --accel-workers`` (2)
with ``EVIDENCE_ACCEL_REDIRECT``, where the app checks the link and records the access on every
request and nginx sends the bytes from the vault's folder. The goal compares each side at its
best: our fastest way through the link against nginx's faster.

Load: Debian's ``wrk`` (closed loop: each connection sends its next request when the last
answer is in), the same Lua script for both (``bench/reviewers.lua``). Errors: answers of 400
and up (429 included) and socket errors as wrk counts them; answers that are not a 206 with
exactly the file's bytes, found by a checking client reading random ranges beside the load
(20 a second at most); and every answer, if their mean size exceeds the largest range asked
for (a whole file sent in place of ranges). wrk does not read bodies into its script, which
would make it, not the server, the limit (a third of nginx's rate here).

The app's limits, as set for the run (and recorded in the results): each request names one of
``--addresses`` reviewers in ``X-Forwarded-For``, which the server trusts from 127.0.0.1 as it
would from nginx in front of it, so the per-reviewer rate limit (GCRA,
``link_requests_per_minute``, left at its default) and the access-record windows
(``link_record_window_seconds``, default) apply per reviewer as in real use, not to one address
for all. Any 429 shows as an error. Goal: at least 50% of nginx's requests per second; p50 and
p99 latency reported for both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich.console import Console

from bench.measure import BenchFailed, run_and_save
from bench.transcode import Instance, cache_dir, h264_clip
from evidence.cli.sizes import parse_size
from evidence.links.gate import COOKIE
from evidence.models import DerivativeKind, ItemState
from evidence.runtime import Runtime
from evidence.settings import Settings
from tests.support import postgres
from tests.support.nginx import answers, nginx_binary, nginx_service
from tests.support.processes import Service
from tests.support.s3 import free_port

console = Console(stderr=True)
TARGET_RATIO = 0.5
LUA = Path(__file__).with_name("reviewers.lua")
RESULT_LINE = re.compile(r"^BENCH-RESULT (.*)$", re.MULTILINE)
ACCEL_PREFIX = "/_vault/"  # infra/nginx.conf's internal location
ACCEL_ROW = "nginx -> evidence serve --workers {n} (link, X-Accel-Redirect)"


# -- the peer and the load generator, from Debian -----------------------------------------------


def debian_tool(command: str, package: str) -> str:
    """The executable, installing its Debian package first when it is missing."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if found is None:
        console.print(f"installing {package} (apt-get) ...")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which(command, path="/usr/sbin:/usr/bin")
    if found is None:
        raise BenchFailed(f"{command} not found after installing {package}")
    return found


NGINX_CONF = """\
daemon off;
{user}
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /proxy.mp4 {{
            default_type video/mp4;
            alias {path};
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, work: Path, path: Path, workers: str) -> None:
        self.exe = debian_tool("nginx", "nginx-light")
        self.work, self.port = work, free_port()
        work.mkdir(parents=True)
        # As root, nginx would hand its workers to "nobody", who may not read the vault.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, workers=workers, work=work, port=self.port, path=path))
        self.version = subprocess.run([self.exe, "-v"], capture_output=True, text=True).stderr.strip()
        with open(work / "stderr.log", "wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen([self.exe, "-c", str(conf), "-p", str(work)],
                                            stdout=subprocess.DEVNULL, stderr=log)
        self.url = f"http://127.0.0.1:{self.port}/proxy.mp4"
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.head(self.url, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed(f"nginx did not start: {(work / 'stderr.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Load:
    """How hard wrk asks, and for what."""

    clients: int
    seconds: int
    low: int
    high: int
    addresses: int
    threads: int = 2


@dataclass
class Figures:
    requests: int
    seconds: float
    requests_per_s: float
    mb_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # answers of 400 and up (a 429 among them), as wrk counts them
    socket_errors: int
    sampled: int  # answers the checking client read beside the load
    sampled_bad: int  # of which not a 206 with the file's very bytes
    mean_answer_bytes: float  # every answer's bytes with headers; more than the largest range: not ranges
    errors: int


class Sampler(threading.Thread):
    """A reviewer beside the load who checks what comes back: every answer must be a 206
    carrying exactly the file's bytes of the range asked for."""

    def __init__(self, url: str, path: Path, load: Load, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.load, self.headers = url, load, headers
        self.data = path.read_bytes()  # a proxy of tens of MB, read once to compare against
        self.checked = self.bad = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stopping.wait(0.05):
                length = random.randint(self.load.low, self.load.high)
                first = random.randint(0, len(self.data) - length)
                try:
                    answer = session.get(self.url, timeout=120, headers={
                        **self.headers, "Range": f"bytes={first}-{first + length - 1}"})
                    good = answer.status_code == 206 and answer.content == self.data[first:first + length]
                except requests.RequestException:
                    good = False
                self.checked += 1
                self.bad += not good


def wrk(url: str, size: int, load: Load, seconds: int, cookie: str = "") -> dict[str, Any]:
    exe = debian_tool("wrk", "wrk")
    command = [exe, "-t", str(min(load.threads, load.clients)), "-c", str(load.clients), "-d", f"{seconds}s",
               "--timeout", "60s", "-s", str(LUA), url, "--", str(size), str(load.low), str(load.high), cookie,
               str(load.addresses)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    found = RESULT_LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise BenchFailed(f"wrk exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def figures_of(raw: dict[str, Any], sampler: Sampler, load: Load) -> Figures:
    took = raw["duration_us"] / 1e6
    sockets = sum(raw["socket_errors"].values())
    mean = raw["bytes"] / raw["requests"] if raw["requests"] else 0.0
    # Headers add a few hundred bytes; a whole-file 200 in place of ranges would add megabytes.
    oversized = mean > load.high + 4096
    return Figures(
        requests=raw["requests"], seconds=took, requests_per_s=raw["requests"] / took,
        mb_per_s=raw["bytes"] / took / 1e6, p50_ms=raw["p50_us"] / 1000, p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000, max_ms=raw["max_us"] / 1000, status_errors=raw["status_errors"],
        socket_errors=sockets, sampled=sampler.checked, sampled_bad=sampler.bad, mean_answer_bytes=round(mean),
        errors=raw["status_errors"] + sockets + sampler.bad + (raw["requests"] if oversized else 0)
        + (0 if raw["requests"] else 1),  # nothing answered at all is a failed run, not a clean one
    )


# -- our side: a server, an item with a proxy, a link ------------------------------------------


class Reviewed:
    """A server holding one ready item and a link to it, with a view session opened."""

    def __init__(self, work: Path, clip: Path, env: dict[str, str]) -> None:
        self.database = postgres.create_database()
        self.env = {"EVIDENCE_DATABASE_URL": self.database, **env}
        self.instance = Instance(work / "server", self.env)
        try:
            self._prepare(clip)
        except BaseException:
            self.stop()
            raise

    def _prepare(self, clip: Path) -> None:
        server = self.instance.server
        item_id, _ = self.instance.upload(clip)
        item = server.settled_item(item_id, timeout=600)
        if item["state"] != ItemState.READY:
            raise BenchFailed(f"the item ended {item['state']}: {item['reason']}")
        link = server.cli("share", "--case", self.instance.case, "--item", item_id, "--to", "reviewer@cps.gov.uk",
                          "--expires", "1d", "--token", self.instance.token).stdout.strip()
        self.token = link.rstrip("/").rsplit("/", 1)[-1]
        self.link, self.item_id = link, item_id
        self.open()
        rt = Runtime.build(Settings(data_dir=server.data_dir, database_url=self.database, embedded_worker=False))
        try:
            from sqlalchemy import select

            from evidence.models import Derivative

            with rt.db.sessions() as session:
                proxy = session.scalars(select(Derivative).where(
                    Derivative.item_id == item_id, Derivative.kind == DerivativeKind.PROXY)).one()
                self.proxy_key, self.size = proxy.key, proxy.size
            self.path = Path(rt.vault.tool_input(self.proxy_key))
        finally:
            rt.close()
        self.settings = Settings(data_dir=server.data_dir, database_url=self.database)

    def open(self, base: str | None = None) -> None:
        """Open the link's page as the reviewer's browser does: a view session (cookie).
        ``base``: where the reviewer reaches the server (nginx in front), else the server."""
        base = base or self.instance.server.url
        page = requests.get(self.link.replace(self.link.split("/s/")[0], base), timeout=30)
        page.raise_for_status()
        self.cookie = f"{COOKIE}={page.cookies[COOKIE]}"
        self.url = f"{base}/s/{self.token}/items/{self.item_id}/proxy"

    def serve_with(self, processes: int, accel: bool = False) -> None:
        """The same data served by ``evidence serve --workers N``, and the link opened again;
        ``accel``: with EVIDENCE_ACCEL_REDIRECT on (bytes sent by nginx in front)."""
        if accel:
            self.instance.env["EVIDENCE_ACCEL_REDIRECT"] = ACCEL_PREFIX
        else:
            self.instance.env.pop("EVIDENCE_ACCEL_REDIRECT", None)
        self.instance.restart(("--workers", str(processes)))
        self.open()

    def behind_nginx(self, work: Path) -> Service:
        """nginx from infra/nginx.conf (the production file, as the tests run it) in front of
        the server, its internal location on this server's vault; the link opened through it."""
        binary = nginx_binary() or debian_tool("nginx", "nginx-light")
        port, server = free_port(), self.instance.server
        front = nginx_service(binary, [f"127.0.0.1:{server.port}"], port, work, work / "nginx.log",
                              vault=server.data_dir / "vault")
        base = f"http://127.0.0.1:{port}"
        front.start(ready=lambda: answers(base), timeout=30)
        self.open(base)
        return front

    def check(self) -> None:
        """One ranged read through the link and straight from the file must agree."""
        first, last = self.size // 3, self.size // 3 + 1000
        answer = requests.get(self.url, headers={"Range": f"bytes={first}-{last}", "Cookie": self.cookie}, timeout=30)
        with open(self.path, "rb") as stream:
            stream.seek(first)
            expected = stream.read(last - first + 1)
        if answer.status_code != 206 or answer.content != expected:
            raise BenchFailed(f"the link answered {answer.status_code} with other bytes than the file holds")

    def stop(self) -> None:
        self.instance.stop()
        postgres.drop_database(self.database)


# -- running it -------------------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int]:
    low, high = (parse_size(part) for part in text.split("-", 1))
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError("give LOW-HIGH, e.g. 256KiB-1MiB")
    return low, high


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reviewers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent connections (200)")
    parser.add_argument("--seconds", type=int, default=30, help="measured seconds per run (30)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before each measured run (5)")
    parser.add_argument("--range", dest="ranges", type=parse_range, default=parse_range("256KiB-1MiB"),
                        help="sizes of the ranges asked for, LOW-HIGH (256KiB-1MiB)")
    parser.add_argument("--addresses", type=int, default=200,
                        help="reviewers' addresses spread over the requests (X-Forwarded-For); 0: all from 127.0.0.1")
    parser.add_argument("--api-workers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2],
                        help="evidence serve --workers values to measure, comma-separated (1,2)")
    parser.add_argument("--accel-workers", type=int, default=2,
                        help="evidence serve --workers behind nginx with X-Accel-Redirect (2; 0: not measured)")
    parser.add_argument("--clip-seconds", type=int, default=60, help="length of the clip shared (60)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/reviewers.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where server data goes (system temp)")
    return parser.parse_args(argv)


def measure(label: str, url: str, path: Path, load: Load, warmup: int, cookie: str = "") -> Figures:
    console.print(f"{label}: {load.clients} clients, {warmup} s warm-up then {load.seconds} s ...")
    size = path.stat().st_size
    if warmup:
        wrk(url, size, load, warmup, cookie)
    load_before = os.getloadavg()[0]
    sampler = Sampler(url, path, load, {"Cookie": cookie, "X-Forwarded-For": "10.78.0.1"} if cookie else {})
    sampler.start()
    try:
        raw = wrk(url, size, load, load.seconds, cookie)
    finally:
        sampler.stopping.set()
        sampler.join(180)
    figures = figures_of(raw, sampler, load)
    console.print(f"  {figures.requests_per_s:.0f} req/s, {figures.mb_per_s:.0f} MB/s, p50 {figures.p50_ms:.1f} ms,"
                  f" p99 {figures.p99_ms:.1f} ms, errors {figures.errors} ({figures.sampled} answers checked;"
                  f" load average {load_before:.1f})")
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    postgres.require_postgres()
    clip = h264_clip(cache_dir() / "media", args.clip_seconds, "1280x720")
    load = Load(args.clients, args.seconds, args.ranges[0], args.ranges[1], args.addresses)
    work = Path(tempfile.mkdtemp(prefix="bench-reviewers-", dir=args.tmp_dir))
    loads = [os.getloadavg()[0]]
    try:
        console.print("server, upload, processing, link ...")
        ours = Reviewed(work, clip, {})
        try:
            apps: dict[int, Figures] = {}
            for processes in args.api_workers:
                ours.serve_with(processes)
                ours.check()
                apps[processes] = measure(f"evidence serve --workers {processes}, through the link", ours.url,
                                          ours.path, load, args.warmup, ours.cookie)
                loads.append(os.getloadavg()[0])
            accel: dict[int, Figures] = {}
            if args.accel_workers:
                ours.serve_with(args.accel_workers, accel=True)
                front = ours.behind_nginx(work / "front")
                try:
                    ours.check()
                    accel[args.accel_workers] = measure(ACCEL_ROW.format(n=args.accel_workers), ours.url, ours.path,
                                                        load, args.warmup, ours.cookie)
                    loads.append(os.getloadavg()[0])
                finally:
                    front.stop()
            peers: dict[str, Figures] = {}
            for workers in ("1", "auto"):
                nginx = Nginx(work / f"nginx-{workers}", ours.path, workers)
                try:
                    peers[workers] = measure(f"nginx, worker_processes {workers}", nginx.url, ours.path, load,
                                             args.warmup)
                    loads.append(os.getloadavg()[0])
                finally:
                    nginx.stop()
            settings = ours.settings
            recorded = {
                "link_requests_per_minute": settings.link_requests_per_minute,
                "link_record_window_seconds": settings.link_record_window_seconds,
                "link_session_minutes": settings.link_session_minutes,
                "reviewer_addresses": args.addresses, "view_session_cookie": True,
                "database": "postgresql", "vault": "local", "api_processes": args.api_workers,
                "accel_redirect_processes": args.accel_workers or None,
            }
            size, version = ours.size, nginx.version
        finally:
            ours.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result_of(args, load, apps, accel, peers, recorded, size, version, loads)


def result_of(args: argparse.Namespace, load: Load, apps: dict[int, Figures], accel: dict[int, Figures],
              peers: dict[str, Figures], recorded: dict[str, Any], size: int, version: str,
              loads: list[float]) -> dict[str, Any]:
    # Each side at its best on this machine: our fastest way through a link (the app alone,
    # or behind nginx sending the bytes) against nginx's faster.
    best_name, best = max(peers.items(), key=lambda pair: pair[1].requests_per_s)
    ways = {f"--workers {n}": f for n, f in apps.items()} | {f"nginx -> --workers {n}, X-Accel-Redirect": f
                                                             for n, f in accel.items()}
    processes, app = max(ways.items(), key=lambda pair: pair[1].requests_per_s)
    ratio = app.requests_per_s / best.requests_per_s
    rows = [{"server": f"evidence serve --workers {n} (link)", **asdict(figures)} for n, figures in apps.items()]
    rows += [{"server": ACCEL_ROW.format(n=n), **asdict(figures)} for n, figures in accel.items()]
    rows += [{"server": f"nginx (worker_processes {name})", **asdict(figures)} for name, figures in peers.items()]
    setup = (
        f"{load.clients} concurrent keep-alive connections (wrk, {load.threads} threads, closed loop) asking for"
        f" random ranges of {load.low // 1024}-{load.high // 1024} KiB of a {size / 1e6:.1f} MB proxy"
        f" ({args.clip_seconds} s 720p H.264) for {load.seconds} s after {args.warmup} s of warm-up; {args.addresses}"
        f" reviewer addresses (X-Forwarded-For), link rate limit {recorded['link_requests_per_minute']}/min per"
        f" reviewer (default), record window {recorded['link_record_window_seconds']:g} s; evidence serve with"
        f" {' and '.join(map(str, args.api_workers))} API processes"
        f"{f', and {args.accel_workers} behind nginx (infra/nginx.conf, X-Accel-Redirect)' if args.accel_workers else ''}"
        f", PostgreSQL, local vault; {version}; all on {os.cpu_count()} CPUs shared with other work"
        f" (1-min load average {min(loads):.1f}-{max(loads):.1f})."
    )
    errors_ok = all(figures.errors == 0 for figures in [*apps.values(), *accel.values()])
    return {
        "name": "reviewers",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
        "setup": setup,
        "settings": recorded,
        "load": asdict(load),
        "rows": rows,
        "ratio": ratio,
        "targets": [
            {"what": "reviewers: requests/s through a link against nginx on the same file",
             "goal": f"≥ {TARGET_RATIO:.0%} of nginx",
             "measured": f"{app.requests_per_s:.0f} req/s ({ratio:.0%}; {processes})",
             "peer": f"nginx ({best_name}) {best.requests_per_s:.0f} req/s", "met": ratio >= TARGET_RATIO and errors_ok},
            {"what": "reviewers: p99 latency", "goal": "reported", "measured": f"{app.p99_ms:.0f} ms",
             "peer": f"nginx ({best_name}) {best.p99_ms:.0f} ms", "met": None},
            {"what": "reviewers: errors (4xx/5xx, socket errors, checked answers not the file's bytes)", "goal": "0",
             "measured": str(sum(f.errors for f in [*apps.values(), *accel.values()])), "peer": str(sum(f.errors for f in peers.values())),
             "met": errors_ok},
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [result["setup"], "", "| server | req/s | MB/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['server']} | {row['requests_per_s']:.0f} | {row['mb_per_s']:.0f} | {row['p50_ms']:.1f}"
                     f" | {row['p99_ms']:.1f} | {row['errors']} |")
    lines.append(f"\nThrough the link: {result['ratio']:.0%} of the faster nginx (goal ≥ 50%).")
    return "\n".join(lines)


def report(args: argparse.Namespace) -> dict[str, Any]:
    result = run(args)
    result["markdown"] = markdown(result)
    print(result["markdown"])
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), report)


if __name__ == "__main__":
    sys.exit(main())
