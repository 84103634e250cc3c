"""Timings for the ledger's pure parts at 1 million entries (not a test; run by hand).

    .venv/bin/python -m tests.audit.timing [entries]

Builds a real tree of N entries, then times: canonical encoding and strict decoding of a typical
entry; the full-log recomputation an auditor's `verify` does (decode every entry, recompute its
leaf, rebuild the tree, compare the root); and inclusion/consistency proofs at size N, from the
stored nodes a single query would return (an in-memory dict) to a verified proof.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Mapping

import rfc8785

from audit import (
    Entry,
    TreeBuilder,
    consistency_nodes,
    consistency_proof_from,
    inclusion_nodes,
    inclusion_proof_from,
    root_from,
    verify_consistency,
    verify_inclusion,
)
from audit.merkle import NodeId, leaf_hash, root_nodes


def typical_entry(seq: int) -> Entry:
    return Entry(
        seq=seq,
        time=f"2026-11-22T21:{seq // 60 % 60:02d}:{seq % 60:02d}.{seq % 1000000:06d}Z",
        actor="system:transcode@worker-3",
        action="derivative.created",
        subject={"case": "OP-2026-0042", "item": f"3f2a9c1e-6b7d-4c1a-9e2f-{seq:012d}"},
        details={
            "kind": "proxy",
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 73400320 + seq,
            "object_key": f"derivatives/{seq}/proxy.mp4",
        },
    )


class Levels(Mapping[NodeId, bytes]):
    """Every complete node of the tree, 32 bytes each in one bytearray per level."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = []

    def add(self, level: int, index: int, value: bytes) -> None:
        if level == len(self.levels):
            self.levels.append(bytearray())
        assert len(self.levels[level]) == 32 * index
        self.levels[level] += value

    def __getitem__(self, key: NodeId) -> bytes:
        level, index = key
        if level >= len(self.levels) or 32 * index >= len(self.levels[level]):
            raise KeyError(key)
        return bytes(self.levels[level][32 * index : 32 * index + 32])

    def __iter__(self) -> Iterator[NodeId]:
        raise NotImplementedError

    def __len__(self) -> int:
        return sum(len(level) // 32 for level in self.levels)


def per_call(func: Callable[[], object], number: int = 20000) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number


def main(n: int) -> None:
    sample = typical_entry(123456)
    data = sample.encode()
    doc = sample.as_dict()
    print(f"typical entry: {len(data)} bytes")
    for name, func in [
        ("rfc8785.dumps", lambda: rfc8785.dumps(doc)),
        ("canonical (Entry().encode())", lambda: Entry(**doc).encode()),
        ("Entry.decode (strict)", lambda: Entry.decode(data)),
        ("Entry.decode + leaf_hash", lambda: Entry.decode(data).leaf_hash()),
    ]:
        print(f"  {name:26s} {per_call(func) * 1e6:6.2f} us/entry")

    print(f"encoding {n:,} entries ...")
    started = time.perf_counter()
    log = [typical_entry(seq).encode() for seq in range(n)]
    print(f"  {time.perf_counter() - started:.1f} s ({(time.perf_counter() - started) / n * 1e6:.1f} us/entry)")

    # What `evidence audit verify` does with the entries: decode strictly, recompute the leaf,
    # rebuild the tree; the nodes it completes are kept here for the proof timings.
    store = Levels()
    started = time.perf_counter()
    builder = TreeBuilder()
    for seq, raw in enumerate(log):
        entry = Entry.decode(raw)
        if entry.seq != seq:
            raise SystemExit(f"entry {seq} has seq {entry.seq}")
        for level, index, value in builder.append(entry.leaf_hash()):
            store.add(level, index, value)
    root = builder.root()
    full = time.perf_counter() - started
    print(f"full recomputation of {n:,} entries (decode + leaf + tree): {full:.1f} s")
    assert root_from(n, store) == root

    started = time.perf_counter()
    builder = TreeBuilder()
    for raw in log:
        builder.append(Entry.decode(raw).leaf_hash())
    print(f"  same without keeping nodes: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    builder = TreeBuilder()
    for raw in log:
        builder.append(leaf_hash(raw))
    print(f"  leaves from raw bytes only (no decode): {time.perf_counter() - started:.1f} s")
    del log

    rng = random.Random(1)
    timings: dict[str, list[float]] = {
        "inclusion": [], "consistency": [], "nodes per inclusion": [], "nodes per consistency": []
    }
    for _ in range(2000):
        index = rng.randrange(n)
        t0 = time.perf_counter()
        needed = inclusion_nodes(index, n)
        fetched = {node: store[node] for node in needed}  # the one query's result
        t1 = time.perf_counter()
        inclusion_proof = inclusion_proof_from(index, n, fetched)
        t2 = time.perf_counter()
        verify_inclusion(index, n, store[(0, index)], inclusion_proof, root)
        timings["inclusion"].append((t1 - t0) + (t2 - t1))
        timings["nodes per inclusion"].append(len(needed))

        size1 = rng.randrange(1, n)
        t0 = time.perf_counter()
        needed = consistency_nodes(size1, n)
        fetched = {node: store[node] for node in needed}
        root1_nodes = {node: store[node] for node in root_nodes(size1)}
        proof = consistency_proof_from(size1, n, fetched)
        t2 = time.perf_counter()
        verify_consistency(size1, n, proof, root_from(size1, root1_nodes), root)
        timings["consistency"].append(t2 - t0)
        timings["nodes per consistency"].append(len(needed))
    for name in ("inclusion", "consistency"):
        values = sorted(timings[name])
        print(
            f"{name} proof at {n:,} (node list + fetch from dict + build):"
            f" median {statistics.median(values) * 1e3:.3f} ms,"
            f" p99 {values[int(len(values) * 0.99)] * 1e3:.3f} ms, max {values[-1] * 1e3:.3f} ms;"
            f" nodes per proof: max {max(timings['nodes per ' + name])}"
        )
    verify_time = per_call(lambda: verify_inclusion(index, n, store[(0, index)], inclusion_proof, root), 2000)
    print(f"verify_inclusion at {n:,}: {verify_time * 1e6:.1f} us")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
