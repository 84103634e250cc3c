"""infra/compose.yaml stays the production description of the topology these tests run:
the same services, the same nginx file, the same settings, and no secret in the repository.
(No Docker engine on the build machines: this reads the file; the topology tests run it.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.nginx import PRODUCTION_CONF
from tests.support.topology import Topology

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose.yaml"


def _compose() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return found["services"]


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def test_compose_has_the_tested_shape() -> None:
    services = _compose()
    apis = sorted(name for name, s in services.items() if _command(s).split()[:1] == ["serve"])
    assert len(apis) >= 2, apis
    # nginx runs the file the tests run, in front of exactly those nodes.
    assert any(v.split(":")[0] == "./nginx.conf" for v in services["nginx"]["volumes"])
    upstreams = re.findall(r"^\s*server\s+([\w-]+):\d+", PRODUCTION_CONF.read_text(), flags=re.M)
    assert sorted(upstreams) == apis
    queues = {name: _command(s) for name, s in services.items() if _command(s).split()[:1] == ["worker"]}
    assert sorted(queues.values()) == ["worker --queues fixity --beat", "worker --queues ingest",
                                       "worker --queues transcode"], queues
    assert {"postgres", "redis", "minio"} <= services.keys()
    assert "--with-lock" in services["minio-setup"]["entrypoint"]  # Object Lock, as the tested bucket
    assert "--appendonly yes" in _command(services["redis"])  # the queue survives a restart, as tested


def test_compose_sets_what_the_tested_nodes_set_and_holds_no_secret(tmp_path: Path) -> None:
    services = _compose()
    env = services["api-1"]["environment"]
    for name in ("worker-ingest", "worker-transcode", "worker-fixity", "api-2"):
        assert services[name]["environment"] == env, name
    # Every setting the topology gives its nodes to make them one deployment (shared keys,
    # database, storage, broker, no embedded worker) is set in production too.
    tested = Topology(tmp_path).env(tmp_path / "data")
    shared = {"EVIDENCE_DATABASE_URL", "EVIDENCE_BROKER_URL", "EVIDENCE_TOKEN_SECRET_FILE", "EVIDENCE_LEDGER_KEY_FILE",
              "EVIDENCE_LINK_KEYS_DIR", "EVIDENCE_EMBEDDED_WORKER", "EVIDENCE_PUBLIC_URL"}
    assert shared <= tested.keys()
    assert shared <= env.keys()
    assert env["EVIDENCE_EMBEDDED_WORKER"] == tested["EVIDENCE_EMBEDDED_WORKER"] == "false"
    assert env["EVIDENCE_STORAGE_URL"].startswith("s3://")
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET_KEY|ACCESS_KEY|ROOT_USER", name):
                assert re.fullmatch(r"\$\{\w+(:\?)?\}", str(value)), f"{name} is not taken from the environment"
