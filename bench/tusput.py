"""One timed tus upload with tuspy (a file, in fixed chunks, ``Upload-Checksum`` on every
chunk) into any :class:`~bench.peers.TusTarget`, with the server's memory and CPU beside it
and the stored bytes checked afterwards."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tusclient.client import TusClient

from bench.measure import MB, BenchFailed, MiB, RssSampler, check_stored, human, own_cpu_seconds
from bench.peers import TusTarget
from bench.pyspy import profiled


@dataclass
class Upload:
    server: str
    size: int
    chunk_size: int
    seconds: float
    mb_per_s: float
    peak_rss_bytes: int  # the server and its children
    idle_rss_bytes: int  # the same, just before the upload
    server_cpu_seconds: float
    client_cpu_seconds: float
    load_average_1m: float  # at the end: how busy the shared machine was
    verified: bool  # the stored bytes hash to the source's SHA-256 (else the run stops)
    round: int = 0
    purpose: str = "throughput"
    profile_top: list[dict[str, Any]] = field(default_factory=list)

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_bytes / MiB


def tus_upload(
    target: TusTarget, source: Path, digest: str, chunk_size: int, *, profile: Path | None = None
) -> Upload:
    size = source.stat().st_size
    sampler = RssSampler(target.pid)
    idle, _ = sampler.sample()
    cpu_before, client_before = sampler.cpu_seconds(), own_cpu_seconds()
    client = TusClient(target.files_url, headers=target.headers)
    try:
        with open(source, "rb") as stream, sampler, profiled(target.pid, profile) as top:
            uploader = client.uploader(
                file_stream=stream,
                chunk_size=chunk_size,
                metadata=target.metadata(source.name, digest),
                upload_checksum=True,
            )
            started = time.perf_counter()
            uploader.upload()
            seconds = time.perf_counter() - started
    except Exception as error:
        raise BenchFailed(f"{target.name}: upload of {human(size)} in {human(chunk_size)} chunks failed: "
                          f"{error!r}\n{target.log_tail()}") from error
    server_cpu, client_cpu = sampler.cpu_seconds() - cpu_before, own_cpu_seconds() - client_before
    check_stored(target.name, target.stored(str(uploader.url)), digest, size)
    return Upload(
        server=target.name,
        size=size,
        chunk_size=chunk_size,
        seconds=round(seconds, 3),
        mb_per_s=round(size / seconds / MB, 1),
        peak_rss_bytes=sampler.peak,
        idle_rss_bytes=idle,
        server_cpu_seconds=round(server_cpu, 2),
        client_cpu_seconds=round(client_cpu, 2),
        load_average_1m=round(os.getloadavg()[0], 2),
        verified=True,
        profile_top=top,
    )
