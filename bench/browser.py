"""Browser uploads against the CLI: the case page's upload client (tus-js-client, SHA-256 in
a hash-wasm Web Worker) in Debian's Chromium, and ``evidence upload`` (tuspy), each sending
the same random file to the same kind of ``evidence serve`` on this machine.

    python -m bench.browser [--size 1GiB] [--runs 2] [--web-chunk-size 16MiB]
                            [--cli-chunk-size 8MiB] [--out bench/results/browser.json]

Browser: signed in at /app/login with an access token, the file chosen with "Add files" on
/app/cases/<ref>; timed from the input's ``change`` event until the row's progress bar reads
100 ("bytes up") and until its status reads "Uploaded" ("bytes up + hash recorded": every
byte acknowledged and the browser's SHA-256 accepted by the server). The marks are taken in
the page (a MutationObserver), so polling from here adds nothing to them.

CLI: ``evidence upload PATH --case REF --server URL --token T`` timed whole, as an officer
waits for it: it hashes the file first, then sends it (``Upload-Checksum`` on every chunk).
Its send phase is timed from the server's creation of the upload (seen in the data dir) to
the command's exit.

Beside them: the page's hash worker alone on the file (its ceiling on this CPU) and, for each
browser run, the browser's CPU seconds by process and thread (the worker's thread is Chromium's
``DedicatedWorker``), to tell sending from hashing when the two compete for the cores.

Every run has its own server, data dir and case, so nothing resumes; every upload is checked
afterwards (the stored bytes, and the SHA-256 the client recorded). Target: the browser's rate
at least 80% of the CLI's, on the medians. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
import requests
from rich.table import Table

from bench.upload import (
    MB,
    BenchFailed,
    RssSampler,
    console,
    err,
    human,
    measure_sha256,
    run_and_save,
    verify_file_store,
    write_random,
)
from evidence.cli.sizes import parse_size
from tests.support.browser import CHROMIUM, FLAGS
from tests.support.server import EVIDENCE, Server

TARGET_RATIO = 0.8  # browser rate / CLI rate
OFFICER = "officer@force.police.uk"
TIMEOUT_MS = 30 * 60 * 1000  # one upload, however slow the machine

# Installed in the case page before the file is chosen: performance.now() marks for the
# row's milestones, and the moments the page POSTs its SHA-256.
MARKS_JS = """() => {
  const marks = window.benchMarks = {chosen: null, bytes: null, acked: null, uploaded: null, failed: null, hashPosts: []};
  document.getElementById('add-files').addEventListener('change', () => {
    if (marks.chosen === null) marks.chosen = performance.now();
  }, {capture: true});
  const fetch = window.fetch;
  window.fetch = (...args) => {
    if (String(args[0]).endsWith('/sha256')) marks.hashPosts.push(performance.now());
    return fetch(...args);
  };
  const list = document.getElementById('uploads');
  new MutationObserver(() => {
    const row = list.querySelector('li.upload');
    if (!row) return;
    const now = performance.now();
    const bar = row.querySelector('[role=progressbar]');
    const status = row.querySelector('.upload-status').textContent;
    if (marks.bytes === null && bar.getAttribute('aria-valuenow') === '100') marks.bytes = now;
    if (marks.acked === null && (status === 'Hashing' || status === 'Uploaded')) marks.acked = now;
    if (marks.uploaded === null && status === 'Uploaded') marks.uploaded = now;
    if (status.startsWith('Failed')) marks.failed = status + ': ' + row.querySelector('.upload-detail').textContent;
  }).observe(list, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


@dataclass
class Run:
    client: str  # "browser" or "cli"
    n: int
    chunk_size: int
    size: int
    seconds: float  # the officer's wait: chosen -> "Uploaded"; command start -> exit
    mb_per_s: float
    bytes_seconds: float | None  # browser: chosen -> progress 100
    bytes_mb_per_s: float | None
    acked_seconds: float | None  # browser: chosen -> last chunk acknowledged
    hash_seconds: float | None  # browser: chosen -> first POST of the SHA-256 (the worker's hash done)
    send_seconds: float | None  # CLI: upload created -> exit (after its hash)
    send_mb_per_s: float | None
    server_cpu_seconds: float
    client_cpu_seconds: float
    load_average_1m: float
    verified: bool
    # The browser's CPU by process kind, its busiest threads, and the hash worker's own share.
    client_cpu_by_process: dict[str, float] = field(default_factory=dict)
    client_cpu_by_thread: dict[str, float] = field(default_factory=dict)
    hash_worker_cpu_seconds: float | None = None


# -- one server, one case -----------------------------------------------------------------


@contextlib.contextmanager
def fresh_server(work: Path, name: str, env: dict[str, str]) -> Any:
    """A new ``evidence serve`` with its own data dir and the officer's token; removed after."""
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    server = Server(root, env)
    try:
        try:
            server.start()
            token = server.token(OFFICER)
        except (RuntimeError, AssertionError) as error:
            raise BenchFailed(f"could not start a server: {error}") from error
        yield server, token
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def api(server: Server, token: str, path: str) -> dict[str, Any]:
    found = requests.get(f"{server.url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if found.status_code != 200:
        raise BenchFailed(f"GET {path}: {found.status_code} {found.text[:300]}")
    body: dict[str, Any] = found.json()
    return body


def verify(server: Server, token: str, upload_id: str, digest: str, size: int, who: str) -> None:
    """The stored bytes and the SHA-256 the client recorded are the source's."""
    upload = api(server, token, f"/uploads/{upload_id}")
    if not upload.get("finished") or not upload.get("item"):
        raise BenchFailed(f"{who}: the server did not record the finished upload {upload_id}: {upload}")
    # The server's own hash is the pipeline's first step (no worker runs here): read the bytes instead.
    item = api(server, token, f"/items/{upload['item']}")
    if item.get("client_sha256") != digest:
        raise BenchFailed(f"{who}: item {item['id']} has the client's SHA-256 {item.get('client_sha256')}, "
                          f"the source's is {digest}")
    stored, length = verify_file_store(server, upload_id)
    if (stored, length) != (digest, size):
        raise BenchFailed(f"{who}: WRONG BYTES STORED: sha256 {stored} ({length} bytes), sent {digest} ({size})")


def process_kind(process: psutil.Process) -> str | None:
    """Chromium's process by its role (``--type=``), the Playwright driver, or None (a server, the CLI)."""
    name = process.name()
    if name.startswith("node"):
        return "driver"
    if "chromium" not in name:
        return None
    args = process.cmdline()
    kind = next((arg.split("=", 1)[1] for arg in args if arg.startswith("--type=")), "browser")
    sub = next((arg.split("=", 1)[1] for arg in args if arg.startswith("--utility-sub-type=")), "")
    return {"network.mojom.NetworkService": "network", "storage.mojom.StorageService": "storage"}.get(sub, kind)


class ThreadCpu:
    """CPU seconds of the browser's threads while a block runs, by process kind and thread name
    (Chromium names its threads: the hash worker's is ``DedicatedWorker``). Sampled every
    200 ms, as a worker's thread ends with its hash; what a thread does after the last sample
    is not counted."""

    def __init__(self) -> None:
        self.first: dict[tuple[int, int], float] = {}
        self.last: dict[tuple[int, int], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-cpu", daemon=True)

    def sample(self, baseline: bool = False) -> None:
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                kind = process_kind(process)
                if kind is None:
                    continue
                for thread in process.threads():
                    key = (process.pid, thread.id)
                    seconds = thread.user_time + thread.system_time
                    try:
                        name = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text().strip()
                    except OSError:
                        continue
                    if baseline:
                        self.first[key] = seconds
                    self.first.setdefault(key, 0.0)  # born since the baseline
                    self.last[key] = (f"{kind}/{name}", seconds)

    def by_thread(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for key, (label, seconds) in self.last.items():
            totals[label] = totals.get(label, 0.0) + seconds - self.first.get(key, 0.0)
        return {label: round(seconds, 2) for label, seconds in sorted(totals.items(), key=lambda x: -x[1])
                if seconds >= 0.05}

    def by_process(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for label, seconds in self.by_thread().items():
            kind = label.split("/", 1)[0]
            totals[kind] = round(totals.get(kind, 0.0) + seconds, 2)
        return totals

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self.sample(baseline=True)  # threads alive now count from here
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


# -- the browser --------------------------------------------------------------------------


def browser_once(browser: Any, work: Path, source: Path, digest: str, n: int, chunk: int) -> Run:
    size = source.stat().st_size
    case = f"OP-BROWSER-{n}"
    with fresh_server(work, f"browser-{n}", {"EVIDENCE_WEB_CHUNK_SIZE": str(chunk)}) as (server, token):
        server.case(case, OFFICER)
        context = browser.new_context()
        try:
            page = case_page(context, server, token, case)
            page.evaluate(MARKS_JS)
            created: list[str] = []
            page.on("response", lambda r: created.append(r.headers.get("location", ""))
                    if r.request.method == "POST" and r.url.endswith("/files/") and r.status == 201 else None)

            sampler = RssSampler(server.pid)
            server_before = sampler.cpu_seconds()
            with ThreadCpu() as threads:
                page.get_by_label("Add files").set_input_files([str(source)])
                page.wait_for_function(
                    "() => window.benchMarks.uploaded !== null || window.benchMarks.failed !== null",
                    timeout=TIMEOUT_MS, polling=500,
                )
            marks: dict[str, Any] = page.evaluate("window.benchMarks")
            server_cpu = sampler.cpu_seconds() - server_before
            load = load_1m()
            if marks["failed"]:
                raise BenchFailed(f"browser run {n}: {marks['failed']}")
        finally:
            context.close()
        if len(created) != 1:
            raise BenchFailed(f"browser run {n}: expected one tus creation, saw {created}")
        verify(server, token, created[0].rstrip("/").rsplit("/", 1)[-1], digest, size, f"browser run {n}")

    def since_chosen(mark: float | None) -> float | None:
        return None if mark is None else round((mark - marks["chosen"]) / 1000, 3)

    seconds, bytes_seconds = since_chosen(marks["uploaded"]), since_chosen(marks["bytes"])
    assert seconds is not None and bytes_seconds is not None
    return Run(
        client="browser", n=n, chunk_size=chunk, size=size,
        seconds=seconds, mb_per_s=round(size / seconds / MB, 1),
        bytes_seconds=bytes_seconds, bytes_mb_per_s=round(size / bytes_seconds / MB, 1),
        acked_seconds=since_chosen(marks["acked"]),
        hash_seconds=since_chosen(min(marks["hashPosts"])) if marks["hashPosts"] else None,
        send_seconds=None, send_mb_per_s=None,
        server_cpu_seconds=round(server_cpu, 2), client_cpu_seconds=round(sum(threads.by_process().values()), 2),
        load_average_1m=load, verified=True,
        client_cpu_by_process=threads.by_process(),
        client_cpu_by_thread=dict(list(threads.by_thread().items())[:10]),
        hash_worker_cpu_seconds=round(sum(v for k, v in threads.by_thread().items() if "DedicatedWorker" in k), 2),
    )


def case_page(context: Any, server: Server, token: str, case: str) -> Any:
    """A page signed in with ``token``, showing the case."""
    page = context.new_page()
    page.goto(f"{server.url}/app/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{server.url}/app/")
    page.goto(f"{server.url}/app/cases/{case}")
    return page


HASH_ALONE_JS = """async (url) => {
  const file = document.getElementById('bench-probe').files[0];
  const started = performance.now();
  const hex = await new Promise((resolve, reject) => {
    const worker = new Worker(url);
    worker.onmessage = (event) => {
      if (event.data.type === 'done') { worker.terminate(); resolve(event.data.hex); }
      else if (event.data.type === 'error') { worker.terminate(); reject(new Error(event.data.message)); }
    };
    worker.postMessage({file});
  });
  return {hex, ms: performance.now() - started};
}"""


def browser_hash_alone(browser: Any, work: Path, source: Path, digest: str) -> dict[str, float]:
    """The page's hash worker on the file with nothing else running: its ceiling here."""
    size = source.stat().st_size
    with fresh_server(work, "hash-alone", {}) as (server, token):
        server.case("OP-HASH", OFFICER)
        context = browser.new_context()
        try:
            page = case_page(context, server, token, "OP-HASH")
            page.evaluate("""() => { const input = document.createElement('input');
                input.type = 'file'; input.id = 'bench-probe'; document.body.append(input); }""")
            page.locator("#bench-probe").set_input_files([str(source)])
            with ThreadCpu() as threads:
                found: dict[str, Any] = page.evaluate(HASH_ALONE_JS, "/app/static/build/hash-worker.js")
        finally:
            context.close()
    if found["hex"] != digest:
        raise BenchFailed(f"the hash worker computed {found['hex']}, the source is {digest}")
    seconds = found["ms"] / 1000
    worker = sum(v for k, v in threads.by_thread().items() if "DedicatedWorker" in k)
    return {"seconds": round(seconds, 3), "mb_per_s": round(size / seconds / MB, 1),
            "worker_cpu_seconds": round(worker, 2)}


# -- the CLI ------------------------------------------------------------------------------


class UploadWatch:
    """When the server creates the upload: the first new file in its vault (the file store
    makes ``vault/.uploads/<id>.bin`` on creation), polled every 10 ms in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.vault = data_dir / "vault"
        self.before = self._files()
        self.seen: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-watch", daemon=True)

    def _files(self) -> set[Path]:
        found: set[Path] = set()
        with contextlib.suppress(FileNotFoundError):
            for folder, _, names in os.walk(self.vault):
                found.update(Path(folder) / name for name in names)
        return found

    def _run(self) -> None:
        while not self._stop.is_set() and self.seen is None:
            if self._files() - self.before:
                self.seen = time.perf_counter()
            self._stop.wait(0.01)

    def __enter__(self) -> UploadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cli_once(work: Path, source: Path, digest: str, n: int, chunk: int) -> Run:
    size = source.stat().st_size
    case = f"OP-CLI-{n}"
    with fresh_server(work, f"cli-{n}", {}) as (server, token):
        server.case(case, OFFICER)
        sampler = RssSampler(server.pid)
        server_before = sampler.cpu_seconds()
        children_before = os.times()
        command = [EVIDENCE, "upload", str(source), "--case", case, "--server", server.url, "--token", token,
                   "--chunk-size", str(chunk)]
        with UploadWatch(server.data_dir) as watch:
            started = time.perf_counter()
            done = subprocess.run(command, env=server.env, capture_output=True, text=True, timeout=TIMEOUT_MS / 1000)
            seconds = time.perf_counter() - started
        children = os.times()
        server_cpu = sampler.cpu_seconds() - server_before
        load = load_1m()
        if done.returncode != 0:
            raise BenchFailed(f"cli run {n}: evidence upload exited {done.returncode}: {done.stderr[-2000:]}")
        item_id, sha256, _ = done.stdout.split(maxsplit=2)
        if sha256 != digest:
            raise BenchFailed(f"cli run {n}: the CLI hashed {sha256}, the source is {digest}")
        upload_id = only_original(server)
        verify(server, token, upload_id, digest, size, f"cli run {n}")
        if api(server, token, f"/uploads/{upload_id}").get("item") != item_id:
            raise BenchFailed(f"cli run {n}: the CLI reported item {item_id}, the server another for {upload_id}")

    send = None if watch.seen is None else started + seconds - watch.seen
    return Run(
        client="cli", n=n, chunk_size=chunk, size=size,
        seconds=round(seconds, 3), mb_per_s=round(size / seconds / MB, 1),
        bytes_seconds=None, bytes_mb_per_s=None, acked_seconds=None, hash_seconds=None,
        send_seconds=None if send is None else round(send, 3),
        send_mb_per_s=None if send is None else round(size / send / MB, 1),
        server_cpu_seconds=round(server_cpu, 2),
        client_cpu_seconds=round(children.children_user + children.children_system
                                 - children_before.children_user - children_before.children_system, 2),
        load_average_1m=load, verified=True,
    )


def only_original(server: Server) -> str:
    stored = sorted((server.data_dir / "vault" / "originals").iterdir())
    if len(stored) != 1:
        raise BenchFailed(f"expected one original in {server.data_dir}, found {[p.name for p in stored]}")
    return stored[0].name


# -- reporting ----------------------------------------------------------------------------


def summary(runs: list[Run], attribute: str) -> dict[str, float] | None:
    """Best and median of a rate over the runs of one client."""
    rates = [value for run in runs if (value := getattr(run, attribute)) is not None]
    if not rates:
        return None
    return {"best": max(rates), "median": round(statistics.median(rates), 1)}


def summarize(runs: list[Run]) -> dict[str, Any]:
    browser = [run for run in runs if run.client == "browser"]
    cli = [run for run in runs if run.client == "cli"]
    rates = {
        "browser_bytes_up": summary(browser, "bytes_mb_per_s"),
        "browser_uploaded": summary(browser, "mb_per_s"),
        "cli_whole": summary(cli, "mb_per_s"),
        "cli_send_only": summary(cli, "send_mb_per_s"),
    }
    ratios: dict[str, dict[str, float]] = {}
    base = rates["cli_whole"]
    for name in ("browser_bytes_up", "browser_uploaded"):
        found = rates[name]
        if found and base:
            ratios[name] = {key: round(found[key] / base[key], 3) for key in ("best", "median")}
    # The officer's wait is "Uploaded", against the CLI's whole command: that is the target.
    met = ratios.get("browser_uploaded", {}).get("median", 0.0) >= TARGET_RATIO
    return {"rates_mb_per_s": rates, "ratio_to_cli": ratios, "target_ratio": TARGET_RATIO, "target_met": met}


def print_table(result: dict[str, Any], runs: list[Run]) -> None:
    table = Table(
        title=f"Browser vs CLI upload: {human(result['size'])} random file, file store; MB = 10^6 bytes",
        caption=(f"{result['host']['cpus']} CPUs, client and server on this machine; load average at start "
                 f"{result['host']['load_average_at_start']}; browser chunk {human(result['web_chunk_size'])}, "
                 f"CLI chunk {human(result['cli_chunk_size'])}"),
    )
    for column in ("run", "bytes up s", "MB/s", "done s", "MB/s ", "hashed s", "CPU s srv/cli", "load"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)

    def cell(value: float | None, form: str) -> str:
        return "" if value is None else format(value, form)

    for run in runs:
        if run.client == "browser":
            table.add_row(f"browser {run.n}", cell(run.bytes_seconds, ".1f"), cell(run.bytes_mb_per_s, ".0f"),
                          f"{run.seconds:.1f}", f"{run.mb_per_s:.0f}", cell(run.hash_seconds, ".1f"),
                          f"{run.server_cpu_seconds:.1f}/{run.client_cpu_seconds:.1f}", f"{run.load_average_1m:.2f}")
        else:
            hashing = None if run.send_seconds is None else run.seconds - run.send_seconds
            table.add_row(f"cli {run.n}", cell(run.send_seconds, ".1f"), cell(run.send_mb_per_s, ".0f"),
                          f"{run.seconds:.1f}", f"{run.mb_per_s:.0f}", cell(hashing, ".1f"),
                          f"{run.server_cpu_seconds:.1f}/{run.client_cpu_seconds:.1f}", f"{run.load_average_1m:.2f}")
    console.print(table)
    console.print("(browser: 'hashed' = the worker's SHA-256 first POSTed, from the file chosen; CLI: 'bytes up' = its"
                  " send phase, 'hashed' = the command's start-up and hashing before it)")
    limits = result["limits"]
    console.print(f"limits on this file: hashlib SHA-256 {limits['hashlib_sha256_mb_per_s']:.0f} MB/s", end="")
    worker = limits.get("browser_hash_worker")
    console.print(f"; the browser's hash worker alone {worker['mb_per_s']:.0f} MB/s" if worker else "")
    for run in runs:
        if run.client_cpu_by_process:
            shares = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in run.client_cpu_by_process.items())
            console.print(f"browser {run.n} CPU s: {shares}; of which the hash worker {run.hash_worker_cpu_seconds:.1f}")
    verdicts = result["summary"]
    rates = verdicts["rates_mb_per_s"]
    for name, found in rates.items():
        if found:
            console.print(f"{name:>18}: best {found['best']:.0f} MB/s, median {found['median']:.0f} MB/s")
    for name, found in verdicts["ratio_to_cli"].items():
        console.print(f"{name:>18} / cli_whole: best {found['best']:.0%}, median {found['median']:.0%}")
    mark = "✓" if verdicts["target_met"] else "✗"
    console.print(f"target: browser 'Uploaded' ≥ {TARGET_RATIO:.0%} of the CLI (medians) {mark}")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="source file size (1GiB)")
    parser.add_argument("--runs", type=int, default=2, help="uploads per client (2)")
    parser.add_argument("--web-chunk-size", type=parse_size, default=None,
                        help="the browser's chunk, as EVIDENCE_WEB_CHUNK_SIZE (the server's default, 16MiB)")
    parser.add_argument("--cli-chunk-size", type=parse_size, default=parse_size("8MiB"),
                        help="evidence upload --chunk-size (its default, 8MiB)")
    parser.add_argument("--clients", default="browser,cli", help="which to run: browser, cli (browser,cli)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/browser.json"), help="JSON results")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the file and the data dirs go")
    args = parser.parse_args(argv)
    args.client_names = [text.strip() for text in args.clients.split(",") if text.strip()]
    if set(args.client_names) - {"browser", "cli"}:
        parser.error("--clients: choose from browser, cli")
    if args.size <= 0 or args.runs <= 0:
        parser.error("--size and --runs must be positive")
    if args.web_chunk_size is None:
        from evidence.settings import Settings

        args.web_chunk_size = Settings.model_fields["web_chunk_size"].default
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if "browser" in args.client_names and not os.path.exists(CHROMIUM):
        raise BenchFailed(f"no Chromium at {CHROMIUM} (infra/test-services.sh installs Debian's)")
    result: dict[str, Any] = {
        "bench": "browser",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": {"throughput": "MB/s, MB = 10^6 bytes", "time": "seconds"},
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "chromium": CHROMIUM,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "size": args.size,
        "web_chunk_size": args.web_chunk_size,
        "cli_chunk_size": args.cli_chunk_size,
        "store": "file",
    }
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="evidence-bench-browser-", dir=args.tmp_dir) as tmp:
        work = Path(tmp)
        source = work / "exhibit.bin"
        err.print(f"writing {human(args.size)} of random bytes to {source}")
        digest = write_random(source, args.size)
        result["limits"] = {"hashlib_sha256_mb_per_s": round(measure_sha256(source, args.size, digest), 1)}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS) \
                if "browser" in args.client_names else None
            result["host"]["chromium_version"] = browser.version if browser else None
            try:
                if browser is not None:
                    err.print("the hash worker alone on the file")
                    result["limits"]["browser_hash_worker"] = browser_hash_alone(browser, work, source, digest)
                # Interleaved, so a change in the machine's load falls on both clients alike.
                for n in range(1, args.runs + 1):
                    if browser is not None:
                        err.print(f"browser run {n}: {human(args.web_chunk_size)} chunks")
                        runs.append(browser_once(browser, work, source, digest, n, args.web_chunk_size))
                    if "cli" in args.client_names:
                        err.print(f"cli run {n}: {human(args.cli_chunk_size)} chunks")
                        runs.append(cli_once(work, source, digest, n, args.cli_chunk_size))
            finally:
                if browser is not None:
                    browser.close()
    result["runs"] = [asdict(run) for run in runs]
    result["summary"] = summarize(runs)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["host"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(result, runs)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_and_save(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
