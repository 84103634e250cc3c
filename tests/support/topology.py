"""The production shape from local processes, for tests/topology.

nginx (infra/nginx.conf) in front of two ``evidence serve`` API nodes; ``evidence worker``
processes for the ``ingest`` and the ``transcode`` queue on Redis; PostgreSQL; Ceph's RADOS
Gateway as S3 with an Object Lock bucket. Each is a real process started here, in a group of
its own, logging to test-artifacts/topology/ (kept after the run); :meth:`Topology.stop`
ends them all, also after a failure.

PostgreSQL and Redis are this topology's own (own data folder, own free port): the tests
stop and restart them, which the machine's shared servers must never see.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from tests.support import s3
from tests.support.nginx import answers, nginx_binary, nginx_service
from tests.support.processes import Service
from tests.support.s3 import free_port
from tests.support.server import EVIDENCE

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "topology"
CEPH = REPO / "infra" / "ceph-s3.sh"
OFFICER = "officer@force.police.uk"
AUDITOR = "auditor@force.police.uk"
ADMIN = "admin@force.police.uk"
CASE = "OP-TOPOLOGY"
# PostgreSQL refuses to run as root; this account comes with Debian's postgresql package.
PG_USER = "postgres"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the topology (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (PostgreSQL runs as its own user; the disk-full test mounts a tmpfs)")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if nginx_binary() is None:
        missing.append("nginx (Debian's nginx-light; infra/test-services.sh installs it)")
    if not shutil.which("radosgw"):
        missing.append("Ceph's radosgw (infra/test-services.sh installs it)")
    return missing


class Topology:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = ARTIFACTS
        self.pg_port, self.redis_port, self.nginx_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.nginx_port}"
        self.database_url = f"postgresql://{PG_USER}@127.0.0.1:{self.pg_port}/evidence"
        self.postgres = self._postgres_service()
        self.redis = Service("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--dir", str(self._dir("redis")), "--save", "",
                                       # Production keeps the queue across a restart (compose.yaml does too).
                                       "--appendonly", "yes", "--appendfsync", "everysec"],
                             self.logs / "redis.log")
        self.ceph: s3.Gateway | None = None
        self.bucket = ""
        self.api: list[Service] = []
        self.workers: dict[str, Service] = {}
        self.nginx: Service | None = None
        self.extra: list[Service] = []
        self.officer = ""
        self.auditor = ""
        self.case = CASE

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> Topology:
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)
        self._init_postgres()
        self.postgres.start(self.postgres_ready, timeout=60)
        with psycopg.connect(self._admin_url(), autocommit=True) as connection:
            connection.execute("CREATE DATABASE evidence")
        self.redis.start(self.redis_ready, timeout=30)
        self._start_ceph()
        # The operator's set-up, before any node runs: migrations, keys, accounts, the case.
        self.officer = self.cli("users", "add", OFFICER, "--role", "officer").stdout.strip()
        self.auditor = self.cli("users", "add", AUDITOR, "--role", "auditor").stdout.strip()
        admin = self.cli("users", "add", ADMIN, "--role", "admin").stdout.strip()
        self.cli("cases", "create", CASE, "--assign", OFFICER, "--token", admin)
        self.api = [self.api_node(f"api-{n}") for n in (1, 2)]
        self.workers = {queue: self.worker(queue) for queue in ("ingest", "transcode")}
        # All four start at once (each takes seconds to import and connect), then are waited for.
        for service in [*self.api, *self.workers.values()]:
            service.start()
        for service in self.api:
            service.wait_for(lambda: _healthy(service.url), timeout=120)  # noqa: B023 (called before the loop moves on)
        for service in self.workers.values():
            service.wait_for(lambda: _celery_ready(service), timeout=120)  # noqa: B023 (called before the loop moves on)
        self.start_nginx()
        return self

    def stop(self) -> None:
        """Everything, in reverse order of need; each stop is tried whatever the others did."""
        services = [self.nginx, *self.extra, *self.api, *self.workers.values(), self.redis, self.postgres]
        for service in services:
            if service is not None:
                try:
                    service.stop()
                except Exception as error:  # keep stopping the rest; the log says what went wrong
                    print(f"topology: stopping {service.name} failed: {error}")
        if self.ceph is not None:
            for log in (Path(self.ceph.state) / "log").glob("*"):
                shutil.copy(log, self.logs / f"ceph-{log.name}")
            self.ceph.stop()
            self.ceph = None

    # -- the environment every evidence process shares ------------------------------------

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        keys = self._dir("keys")
        found = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")},
            "EVIDENCE_DATA_DIR": str(data_dir),
            "EVIDENCE_DATABASE_URL": self.database_url,
            "EVIDENCE_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "EVIDENCE_PUBLIC_URL": self.url,
            # Shared by every node: whoever signs, any node verifies.
            "EVIDENCE_TOKEN_SECRET_FILE": str(keys / "token.secret"),
            "EVIDENCE_LEDGER_KEY_FILE": str(keys / "ledger.skey"),
            "EVIDENCE_LINK_KEYS_DIR": str(keys / "links"),
            # Production runs workers beside, not inside, the API nodes.
            "EVIDENCE_EMBEDDED_WORKER": "false",
            # A killed worker's step is taken over once its lease runs out (the upkeep queues
            # it again), and Redis gives its unacknowledged message to another worker well
            # after that; in production a minute and ten, here short so the worker-kill test
            # is quick.
            "EVIDENCE_LEASE_SECONDS": "15",
            "EVIDENCE_BROKER_VISIBILITY_TIMEOUT_SECONDS": "45",
            # A hand-off lost with a restarted broker is made again after this long.
            "EVIDENCE_REQUEUE_AFTER_SECONDS": "10",
            "XDG_STATE_HOME": str(self._dir("client-state")),
            **extra,
        }
        if self.ceph is not None:
            found.update({
                "EVIDENCE_STORAGE_URL": f"s3://{self.bucket}?endpoint_url={self.ceph.endpoint.url}&region={s3.REGION}",
                "EVIDENCE_S3_ACCESS_KEY": self.ceph.endpoint.access_key,
                "EVIDENCE_S3_SECRET_KEY": self.ceph.endpoint.secret_key,
            })
        return found

    def cli(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``evidence ...`` as the operator on the server host (or, with ``env``, as someone else)."""
        result = subprocess.run([EVIDENCE, *args], env=env or self.env(self._dir("cli")), capture_output=True,
                                text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"evidence {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    # -- the evidence processes -----------------------------------------------------------

    def api_node(self, name: str, **extra: str) -> Service:
        port = free_port()
        return Service(name, [EVIDENCE, "serve", "--host", "127.0.0.1", "--port", str(port)],
                       self.logs / f"{name}.log", env=self.env(self._dir(name), **extra),
                       url=f"http://127.0.0.1:{port}")

    def start_api(self, service: Service) -> Service:
        return service.start(lambda: _healthy(service.url), timeout=60)

    def worker(self, queues: str, name: str | None = None) -> Service:
        name = name or f"worker-{queues}"
        return Service(name, [EVIDENCE, "worker", "--queues", queues], self.logs / f"{name}.log",
                       env=self.env(self._dir(name)))

    def start_worker(self, service: Service) -> Service:
        return service.start(lambda: _celery_ready(service), timeout=120)

    def start_nginx(self) -> None:
        binary = nginx_binary()
        assert binary is not None
        upstreams = [service.url.removeprefix("http://") for service in self.api]
        self.nginx = nginx_service(binary, upstreams, self.nginx_port, self._dir("nginx", mode=0o755),
                                   self.logs / "nginx.log")
        self.nginx.start(lambda: answers(self.url), timeout=30)

    # -- the dependencies, for the fault tests --------------------------------------------

    def stop_gateway(self) -> None:
        assert self.ceph is not None
        subprocess.run([str(CEPH), "stop-gateway", str(self.ceph.state)], check=True, timeout=60)

    def start_gateway(self) -> None:
        assert self.ceph is not None
        subprocess.run([str(CEPH), "start-gateway", str(self.ceph.state)], check=True, timeout=180,
                       env={**os.environ, "PYTHON": shutil.which("python3") or "python3"})

    # -- what the checks read -------------------------------------------------------------

    def s3_client(self) -> Any:
        assert self.ceph is not None
        endpoint = self.ceph.endpoint
        return s3.make_client(endpoint.url, endpoint.access_key, endpoint.secret_key)

    def stored_sha256(self, item_id: str) -> str:
        """SHA-256 of the item's original as the bucket holds it, read back from S3."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute("SELECT storage_key FROM items WHERE id = %s", (item_id,)).fetchone()
        assert row is not None, f"no item {item_id}"
        client = self.s3_client()
        try:
            body = client.get_object(Bucket=self.bucket, Key=row[0])["Body"]
            digest = hashlib.sha256()
            for block in iter(lambda: body.read(1024 * 1024), b""):
                digest.update(block)
        finally:
            client.close()
        return digest.hexdigest()

    def api_get(self, path: str, token: str | None = None, base: str | None = None) -> Any:
        response = requests.get(f"{base or self.url}{path}", headers={"Authorization": f"Bearer {token or self.officer}"},
                                timeout=30)
        response.raise_for_status()
        return response.json()

    # -- internals ------------------------------------------------------------------------

    def _dir(self, name: str, mode: int = 0o700) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        path.chmod(mode)
        return path

    def _pg_bin(self, tool: str) -> str:
        return str(Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version)[-1]) / tool)

    def _postgres_service(self) -> Service:
        data = self.root / "pg" / "data"
        return Service("postgres", [
            self._pg_bin("postgres"), "-D", str(data), "-p", str(self.pg_port), "-k", str(self.root / "pg"),
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
            # A throwaway cluster: durability against power loss is not what is tested here
            # (a restart is a clean shutdown), and fsync on a shared CI disk is slow.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ], self.logs / "postgres.log", user=PG_USER, stop_signal=signal.SIGINT)

    def _init_postgres(self) -> None:
        folder = self.root / "pg"
        folder.mkdir(parents=True)
        shutil.chown(folder, PG_USER, PG_USER)
        self.root.chmod(0o755)  # so the postgres account can reach its folder
        subprocess.run([self._pg_bin("initdb"), "-D", str(folder / "data"), "-U", PG_USER, "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120, user=PG_USER,
                       cwd=folder)

    def _admin_url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.pg_port}/postgres"

    def postgres_ready(self) -> bool:
        try:
            psycopg.connect(self._admin_url(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def redis_ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.redis_port, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def _start_ceph(self) -> None:
        try:
            self.ceph = s3.Gateway.start(watch_pid=os.getpid())
        except s3.GatewayFailed:
            # Its free ports are chosen before they are bound; another process may take one.
            self.ceph = s3.Gateway.start(watch_pid=os.getpid())
        self.bucket = "evidence-topology"
        client = self.s3_client()
        try:
            client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True,
                                 CreateBucketConfiguration={"LocationConstraint": s3.REGION})  # type: ignore[typeddict-item]
        finally:
            client.close()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _celery_ready(service: Service) -> bool:
    # Celery says "ready." once it consumes from its queues.
    return "ready." in service.output()


def _version(path: str) -> int:
    return int(Path(path).parent.name)


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    response = requests.get(f"{url}/readyz", timeout=30)
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {"raw": response.text}
    return response.status_code, body
