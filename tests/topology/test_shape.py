"""The topology itself: a request through nginx reaches both API nodes, uploads from tuspy
and from `evidence upload` are processed by the ingest and transcode workers, and the
production nginx settings are the ones in force."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.support.media import library
from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, random_file, sha256_of, upload_many


def test_uploads_through_nginx_reach_both_nodes_and_are_processed(topology: Topology, sources: Path) -> None:
    clip = library().path("h264_aac_mp4")
    files = [random_file(sources, f"extract-{n}.bin", 3 * MiB) for n in range(4)]
    uploaded = upload_many(topology, files, rate=20 * MiB)
    # The officer's CLI, through the same proxy.
    out = topology.cli("upload", str(clip), "--case", topology.case, "--server", topology.url,
                       "--token", topology.officer).stdout
    [(item_id, sha256, _)] = [line.split(maxsplit=2) for line in out.splitlines()]
    assert sha256 == sha256_of(clip)
    uploaded[clip] = item_id
    assert_recovered(topology, uploaded)
    video = topology.api_get(f"/api/v1/items/{item_id}")
    # Made by the transcode worker: the proxy and stills.
    assert {"proxy", "poster"} <= {d["kind"] for d in video["derivatives"]}
    for service in topology.api:
        # Round robin: each node answered some of the tus requests.
        assert "/files/" in service.tail(1_000_000), f"{service.name} served no upload"
    # Each worker takes its own queue's steps only.
    ingest, transcode = topology.workers["ingest"].output(), topology.workers["transcode"].output()
    assert "Task evidence.hash_original[" in ingest and "Task evidence.hash_original[" not in transcode
    assert "Task evidence.make_proxy[" in transcode and "Task evidence.make_proxy[" not in ingest


def test_readyz_through_nginx(topology: Topology) -> None:
    response = requests.get(f"{topology.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text
