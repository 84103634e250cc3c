"""A transcode worker is killed (SIGKILL to it, its pool and its ffmpeg: a host lost) while
it makes a proxy. Another transcode worker finishes the item, and each working copy is made
and recorded exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support.media import make_clip
from tests.support.topology import Topology
from tests.topology.clients import assert_recovered, settled, wait_until
from tests.topology.footage import making_proxy

CLIP_SECONDS = 20  # the proxy takes seconds to make on this machine: time for the kill


def test_a_worker_killed_mid_transcode_completes_elsewhere_exactly_once(topology: Topology, sources: Path) -> None:
    standby = topology.start_worker(topology.worker("transcode", "worker-transcode-2"))
    topology.extra.append(standby)
    clip = make_clip(sources / "DVR export cam 3.avi", CLIP_SECONDS)
    out = topology.cli("upload", str(clip), "--case", topology.case, "--server", topology.url,
                       "--token", topology.officer).stdout
    [item_id] = [line.split()[0] for line in out.splitlines()]

    first = topology.workers["transcode"]
    wait_until("a worker to make the proxy", lambda: making_proxy(first) or making_proxy(standby), timeout=120)
    victim, survivor = (first, standby) if making_proxy(first) else (standby, first)
    victim.kill()
    assert topology.api_get(f"/api/v1/items/{item_id}")["state"] == "processing"

    [item] = settled(topology, [item_id], timeout=240).values()
    assert item["state"] == "ready", item["reason"]
    kinds = Counter(d["kind"] for d in item["derivatives"])
    assert kinds["proxy"] == 1 and all(count == 1 for count in kinds.values()), kinds
    entries = topology.api_get(f"/api/v1/audit/entries?item={item_id}&limit=5000", token=topology.auditor)
    made = Counter(e["entry"]["details"]["kind"] for e in entries if e["entry"]["action"] == "derivative.created")
    assert made == kinds, f"working copies recorded {dict(made)}, kept {dict(kinds)}"
    actions = Counter(e["entry"]["action"] for e in entries)
    assert actions["original.hashed"] == 1 and actions["integrity.verified"] == 1, actions
    assert_recovered(topology, {clip: item_id})
    # The topology keeps one transcode worker: the survivor.
    topology.workers["transcode"] = survivor
    topology.extra.remove(standby)
    topology.extra.append(victim)
