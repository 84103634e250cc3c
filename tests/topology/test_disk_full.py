"""The disk an API node writes incoming bytes to fills up: uploads are answered 507
(Insufficient Storage), keep what they had, and resume once space is freed.

The node is an extra one beside the topology's two, with the same database, bucket and
broker, whose local spool (EVIDENCE_TMP_DIR: where a PATCH's bytes gather into an S3 part)
is a small tmpfs mounted by the test. The client talks to it directly: it is the node whose
disk is full, and nginx would otherwise spread the chunks over the two with room."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusUploadFailed
from tusclient.uploader.uploader import Uploader

from tests.support.processes import Service
from tests.support.topology import Topology
from tests.topology.clients import MiB, assert_recovered, item_of, random_file, sha256_of

DISK = 24 * MiB
ROOM = 2 * MiB  # what the filler leaves free


@pytest.fixture
def full_node(topology: Topology, tmp_path: Path) -> Iterator[tuple[Service, Path]]:
    mount = tmp_path / "spool"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mount)], check=True)
    node = topology.api_node("api-full", EVIDENCE_TMP_DIR=str(mount))
    try:
        topology.start_api(node)
        yield node, mount
    finally:
        node.stop()
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def test_a_full_disk_gives_507_and_the_upload_resumes_once_space_is_freed(
        topology: Topology, full_node: tuple[Service, Path], sources: Path) -> None:
    node, mount = full_node
    filler = mount / "filler"
    with open(filler, "wb") as out:
        out.write(b"\0" * (DISK - ROOM))
    source = random_file(sources, "extraction.bin", 12 * MiB)
    sha256 = sha256_of(source)
    client = TusClient(f"{node.url}/files/", headers={"Authorization": f"Bearer {topology.officer}"})
    metadata = {"filename": source.name, "case": topology.case, "sha256": sha256}
    with open(source, "rb") as stream:
        uploader = Uploader(file_stream=stream, client=client, chunk_size=4 * MiB, metadata=metadata)
        with pytest.raises(TusUploadFailed) as refused:
            uploader.upload()
        assert refused.value.status_code == 507, (refused.value.status_code, refused.value.response_content)
        url = str(uploader.url)

    head = requests.head(url, headers={"Authorization": f"Bearer {topology.officer}", "Tus-Resumable": "1.0.0"},
                         timeout=30)
    kept = int(head.headers["Upload-Offset"])
    assert kept < source.stat().st_size  # nothing reported complete
    assert topology.api_get(f"/api/v1/uploads/{url.rsplit('/', 1)[-1]}").get("item") is None

    filler.unlink()
    with open(source, "rb") as stream:
        resumed = Uploader(file_stream=stream, client=client, chunk_size=4 * MiB, metadata=metadata, url=url)
        assert resumed.offset == kept  # from the server's offset, not from the start
        resumed.upload()
    assert_recovered(topology, {source: item_of(topology, url)})
