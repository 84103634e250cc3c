"""An API node is SIGKILLed while 20 officers upload through nginx: the clients carry on
through the other node (HEAD for the offset, PATCH from there), nothing is lost or doubled,
and the node, started again, takes requests as before."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, random_file, upload_many, wait_until

UPLOADS = 20
SIZE = 2 * MiB
RATE = 512 * 1024  # per upload: about four seconds each, so the kill lands mid-transfer


def test_an_api_node_killed_during_20_uploads(topology: Topology, sources: Path) -> None:
    files = [random_file(sources, f"phone-{n:02}.bin", SIZE) for n in range(UPLOADS)]
    victim = topology.api[0]
    before = victim.tail(10_000_000).count("PATCH /files/")

    def kill_a_node(futures: list[Future[str]]) -> None:
        # Once the node is taking part of the uploads' chunks, while every upload is still going.
        wait_until("the node to take PATCH requests",
                   lambda: victim.tail(10_000_000).count("PATCH /files/") >= before + UPLOADS // 2, timeout=60)
        assert not any(future.done() for future in futures), "an upload ended before the kill"
        victim.kill()

    uploaded = upload_many(topology, files, RATE, kill_a_node, chunk_size=256 * 1024)
    assert not victim.running
    assert_recovered(topology, uploaded)
    # Back in service: nginx sends it requests again once it answers.
    topology.start_api(victim)
