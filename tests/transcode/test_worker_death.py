"""A whole worker killed mid-transcode (issue 12): its step completes elsewhere exactly once.

Everything is real: `evidence serve` and `evidence worker` processes, Celery on a Redis server
of the test's own (a free port, nothing shared), a fresh PostgreSQL database, the pinned ffmpeg
transcoding a 20 s clip. The worker is started in a session of its own and its whole process
group (Celery's main process, its pool child, ffmpeg) is sent SIGKILL while the proxy is being
made, as a machine losing power. A second worker is then started, and the item must end
``ready`` with one working copy of each kind, each recorded once, one proxy object in the vault,
the original untouched, and the ledger verifying.

Two ways the dead worker's step is taken over, one test each: by the upkeep's requeue once its
lease has run out (Redis would give the message back only much later), and by Redis giving the
message back after its visibility timeout, with no server (so no upkeep) running.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from tests.support.files import sha256_of
from tests.support.media import make_clip
from tests.support.s3 import free_port
from tests.support.server import EVIDENCE, Server
from tests.transcode.test_pipeline import (
    SIGKILL_SECONDS,
    assert_no_duplicates,
    check_proxy,
    derivative_rows,
    events,
    original_video,
    query,
    upload,
    wait_for,
)

LEASE_SECONDS = 3
KINDS = ("probe", "proxy", "poster", "contact_sheet")  # a 20 s clip: no HLS (that starts at 10 min)


# -- a Redis of the test's own, workers in sessions of their own ----------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A Redis server on a free port, for this test alone; skip loudly without one (fail under CI)."""
    exe = shutil.which("redis-server")
    if exe is None:
        message = "redis-server is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip("SKIPPING WORKER-DEATH TESTS: " + message)
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    with open(folder / "redis.log", "ab") as log:
        process = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        wait_for("redis to answer", lambda: _pings(client), timeout=20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Worker:
    """`evidence worker` as production runs it, in a session (and process group) of its own."""

    def __init__(self, server: Server, name: str) -> None:
        self.log = server.root / f"worker-{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([EVIDENCE, "worker"], env=server.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def encoding_proxy(self) -> psutil.Process | None:
        """Its ffmpeg making a proxy, while it runs."""
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None
        for process in family:
            try:
                if "proxy.mp4" in " ".join(process.cmdline()):
                    return process
            except psutil.NoSuchProcess:
                continue
        return None

    def kill_group(self) -> list[psutil.Process]:
        """SIGKILL to the worker's process group: main process, pool child, ffmpeg, all at once."""
        family = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        psutil.wait_procs(family, timeout=10)
        return family

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CCTV-like footage long enough that its proxy takes seconds to make (mid-way, it is killed)."""
    return make_clip(tmp_path_factory.mktemp("clip") / "DVR export ch3.avi", SIGKILL_SECONDS, "640x480")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Worker | Server]]:
    """What a test starts, stopped at its end whatever happens."""
    running: list[Worker | Server] = []
    yield running
    for thing in reversed(running):
        thing.stop()


def start_server(tmp_path: Path, postgres_url: str, broker: str, visibility_timeout: int) -> Server:
    root = tmp_path / "server"
    root.mkdir(exist_ok=True)
    return Server(root, {
        "EVIDENCE_DATABASE_URL": postgres_url,
        "EVIDENCE_BROKER_URL": broker,
        "EVIDENCE_EMBEDDED_WORKER": "false",
        "EVIDENCE_LEASE_SECONDS": str(LEASE_SECONDS),
        "EVIDENCE_BROKER_VISIBILITY_TIMEOUT_SECONDS": str(visibility_timeout),
        # The upkeep's round comes with each checkpoint: every second here.
        "EVIDENCE_CHECKPOINT_INTERVAL_SECONDS": "1",
    })


# -- the item, as the database holds it ----------------------------------------------------------


def row(server: Server, item_id: str) -> dict[str, Any]:
    [found] = query(server, "SELECT state, reason, attempts, storage_key, lease_holder, lease_step, lease_expires_at"
                            " FROM items WHERE id = :id", id=item_id)
    return found


def mid_proxy(server: Server, worker: Worker, item_id: str) -> dict[str, Any]:
    """Wait until the worker is making the item's proxy and has recorded progress; the lease."""
    wait_for("make_proxy to run", worker.encoding_proxy, timeout=120)
    wait_for("progress", lambda: (query(server, "SELECT progress FROM items WHERE id = :id", id=item_id)[0]["progress"]
                                  or 0) > 0)
    held = row(server, item_id)
    assert worker.encoding_proxy() is not None, "the proxy was finished before the worker could be killed"
    assert (held["state"], held["lease_step"]) == ("processing", "make_proxy"), held
    assert held["lease_holder"] and held["attempts"] == 1
    return held


def kill_mid_proxy(server: Server, worker: Worker, item_id: str) -> tuple[str, float]:
    """SIGKILL the worker's whole group mid-proxy; (the lease holder it left, when it died)."""
    holder = mid_proxy(server, worker, item_id)["lease_holder"]
    family = worker.kill_group()
    killed = time.monotonic()
    assert not any(process.is_running() for process in family)
    left = row(server, item_id)
    assert (left["state"], left["lease_holder"]) == ("processing", holder)  # dead, not released
    # Its partial proxy sits in the working folder named after its run.
    tag = holder.rsplit(":", 1)[-1]
    assert list((server.data_dir / "tmp").glob(f"work-{tag}-*/proxy.mp4"))
    return holder, killed


def wait_ready(server: Server, item_id: str, dead_holder: str, timeout: float = 60) -> float:
    """Wait until the item is ready; when (monotonic) another run first held its lease."""
    deadline = time.monotonic() + timeout
    taken: float | None = None
    while (found := row(server, item_id))["state"] not in ("ready", "failed", "quarantined"):
        if taken is None and found["lease_holder"] not in (None, dead_holder):
            taken = time.monotonic()
        assert time.monotonic() < deadline, f"item {item_id} still {found['state']} after {timeout} s"
        time.sleep(0.2)
    assert found["state"] == "ready", found["reason"]
    return taken or time.monotonic()


def check_exactly_once(server: Server, item_id: str, clip: Path, dead_holder: str) -> None:
    """One working copy of each kind, each recorded once; one proxy object in the vault, the
    one recorded; the original as uploaded; nothing the dead run left behind; the ledger verifies."""
    done = row(server, item_id)
    # One start, and one more for the death: no copy of a task counted against the item.
    assert (done["attempts"], done["lease_holder"], done["lease_expires_at"]) == (2, None, None)
    made = derivative_rows(server, item_id)
    assert Counter(d["kind"] for d in made) == {kind: 1 for kind in KINDS}
    found = events(server, item_id)
    created = Counter(e["details"]["kind"] for e in found if e["action"] == "derivative.created")
    assert created == {kind: 1 for kind in KINDS}
    assert "item.failed" not in {e["action"] for e in found}
    actions = Counter(e["action"] for e in found)
    assert (actions["original.hashed"], actions["integrity.verified"]) == (1, 1)
    recorded = {e["details"]["kind"]: e["details"] for e in found if e["action"] == "derivative.created"}
    for made_one in made:  # the record says what is stored, and how it was made
        assert recorded[made_one["kind"]]["sha256"] == made_one["sha256"]
        assert recorded[made_one["kind"]]["method"] == made_one["method"]
    assert_no_duplicates(found)
    [hashed] = [e for e in found if e["action"] == "original.hashed"]
    vault = server.data_dir / "vault"
    proxies = sorted((vault / "derivatives" / item_id).glob("proxy*"))
    [proxy] = [d for d in made if d["kind"] == "proxy"]
    assert [p.relative_to(vault).as_posix() for p in proxies] == [proxy["key"]]
    assert hashlib.sha256(proxies[0].read_bytes()).hexdigest() == proxy["sha256"]
    duration, rate = original_video(clip)
    check_proxy(proxies[0], frames=SIGKILL_SECONDS * 25, duration=duration, frame_rate=rate)
    # The original: byte for byte what was uploaded, still read-only.
    original = vault / done["storage_key"]
    assert sha256_of(original) == sha256_of(clip) == hashed["details"]["hashes"]["sha256"]
    assert original.stat().st_mode & 0o222 == 0
    # The dead run's working folder (its partial proxy) is gone.
    tag = dead_holder.rsplit(":", 1)[-1]
    assert not list((server.data_dir / "tmp").glob(f"work-{tag}-*"))
    assert server.cli("audit", "verify").returncode == 0


def report(name: str, killed: float, taken: float) -> float:
    """Print (shown with -s) how long from the kill to the takeover and to ready; the latter."""
    ready = time.monotonic() - killed
    print(f"\n{name}: SIGKILL -> step taken over {taken - killed:.1f} s -> item ready {ready:.1f} s"
          " (the second worker started after the kill)")
    return ready


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_killed_workers_step_is_taken_over_by_the_upkeep_exactly_once(
    tmp_path: Path, postgres_url: str, broker: str, clip: Path, started: list[Worker | Server]
) -> None:
    """Redis would give the message back only after 5 minutes; the upkeep finds the lease run
    out within seconds and queues the item again; the second worker carries on from the step
    the dead one was in."""
    server = start_server(tmp_path, postgres_url, broker, visibility_timeout=300).start()
    started.append(server)
    token, case = server.token(), server.case("OP-WORKER-DEATH")
    first = Worker(server, "first")
    started.append(first)
    [(item_id, _)] = upload(server, token, case, clip).values()

    holder, killed = kill_mid_proxy(server, first, item_id)
    second = Worker(server, "second")
    started.append(second)
    took = report("upkeep takeover", killed, wait_ready(server, item_id, holder))

    check_exactly_once(server, item_id, clip, holder)
    assert f"the lease of {holder} on its make_proxy step ran out" in server.log.read_text()
    second_log = second.log.read_text()
    assert f"takes over from {holder}, whose lease on its make_proxy step ran out" in second_log
    assert took < LEASE_SECONDS + 40


@pytest.mark.postgres
def test_a_killed_workers_step_is_taken_over_by_its_redelivered_message_exactly_once(
    tmp_path: Path, postgres_url: str, broker: str, clip: Path, started: list[Worker | Server]
) -> None:
    """No server, so no upkeep: Redis gives the unacknowledged message back after its
    visibility timeout, by which time the dead worker's lease has run out; the copy takes the
    step over and carries the rest of the chain on."""
    visibility = 12  # past the lease (3 s) and the time from delivery to the kill
    server = start_server(tmp_path, postgres_url, broker, visibility_timeout=visibility).start()
    started.append(server)
    token, case = server.token(), server.case("OP-WORKER-DEATH")
    first = Worker(server, "first")
    started.append(first)
    [(item_id, _)] = upload(server, token, case, clip).values()
    server.stop()  # from here on, only the workers

    holder, killed = kill_mid_proxy(server, first, item_id)
    second = Worker(server, "second")
    started.append(second)
    report("redelivery takeover", killed, wait_ready(server, item_id, holder, timeout=visibility + 60))

    check_exactly_once(server, item_id, clip, holder)
    second_log = second.log.read_text()
    assert f"evidence.make_proxy for item {item_id} takes over from {holder}" in second_log
