"""Several `evidence upload` processes run at once from one home folder (one officer, four
terminals), are killed mid-transfer, and are run again: each file resumes the upload it
began (none is begun twice, which would be a lost resume record), and all arrive whole."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

from tests.support.proxy import Proxy
from tests.support.server import EVIDENCE
from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, random_file, wait_until

PROCESSES = 4
FILES_EACH = 2
RATE = 1 * MiB  # per connection, through the proxy: an uplink, so the kill lands mid-transfer


def _created(topology: Topology, after: int) -> list[str]:
    """Upload ids of the `upload.created` entries past sequence number ``after``."""
    entries = topology.api_get(f"/api/v1/audit/entries?after={after}&limit=5000", token=topology.auditor)
    return [json.dumps(e["entry"]["subject"], sort_keys=True) for e in entries if e["entry"]["action"] == "upload.created"]


def _last_seq(topology: Topology) -> int:
    entries = topology.api_get("/api/v1/audit/entries?limit=5000", token=topology.auditor)
    seq = -1
    while entries:
        seq = entries[-1]["seq"]
        entries = topology.api_get(f"/api/v1/audit/entries?after={seq}&limit=5000", token=topology.auditor)
    return int(seq)


def test_concurrent_cli_uploads_from_one_home_keep_their_resume_records(topology: Topology, sources: Path,
                                                                         tmp_path: Path) -> None:
    home = tmp_path / "officer-home"
    home.mkdir()
    batches = [[random_file(sources, f"terminal-{p}-file-{f}.bin", 3 * MiB) for f in range(FILES_EACH)]
               for p in range(PROCESSES)]
    start = _last_seq(topology)
    with Proxy("127.0.0.1", topology.nginx_port, upstream_rate=RATE) as uplink:
        env = {**topology.env(tmp_path / "unused"), "HOME": str(home), "XDG_STATE_HOME": str(home / ".local/state"),
               "EVIDENCE_SERVER": uplink.url, "EVIDENCE_TOKEN": topology.officer}

        def run_all() -> list[subprocess.Popen[str]]:
            return [subprocess.Popen([EVIDENCE, "upload", *map(str, batch), "--case", topology.case,
                                      "--chunk-size", "512KiB"], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for batch in batches]

        first = run_all()
        # Every process has begun its first file and sent part of it.
        wait_until("each process to begin an upload", lambda: len(_created(topology, start)) >= PROCESSES, timeout=60)
        wait_until("a second's worth of bytes", lambda: uplink.upstream_bytes >= PROCESSES * RATE, timeout=60)
        for process in first:
            assert process.poll() is None, f"a CLI ended before the kill: {process.communicate()}"
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)  # reaps it and closes its pipes
        begun = Counter(_created(topology, start))

        second = run_all()
        outputs = [process.communicate(timeout=300) for process in second]
    for process, (_, err) in zip(second, outputs, strict=True):
        assert process.returncode == 0, err
    uploaded: dict[Path, str] = {}
    for batch, (out, _) in zip(batches, outputs, strict=True):
        lines = [line.split(maxsplit=2) for line in out.splitlines()]
        assert [Path(path).name for _, _, path in lines] == [path.name for path in batch], out
        uploaded.update({path: item_id for path, (item_id, _, _) in zip(batch, lines, strict=True)})
    created = Counter(_created(topology, start))
    # Each file's upload was created once: the uploads begun before the kill were resumed.
    assert sum(created.values()) == PROCESSES * FILES_EACH, (dict(begun), dict(created))
    assert_recovered(topology, uploaded)
