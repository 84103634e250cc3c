"""The lease of the run in progress, as the code that commits its results sees it.

A step's run holds its item's lease (:mod:`transcode.lease`) in a context variable while it
runs. Whatever commits a result about the item (a derivative and its custody entry, the
hashes, a failure, the item ready) locks the item's row and calls :func:`guard` first: if
another worker has taken the step over meanwhile, this run commits nothing. Kept apart from
:mod:`transcode.lease` so that the modules it guards can import it without a cycle.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from evidence.models import Item


class LeaseLost(Exception):
    """Another worker took this run's step over (its lease ran out): nothing it made counts."""


def new_holder() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def tag_of(holder: str) -> str:
    """The random part of a holder's name: it names the run's working folders."""
    return holder.rsplit(":", 1)[-1]


@dataclass
class Lease:
    """One run's hold on one item. ``holder`` names the run (host, process, a random part),
    a fresh one per delivery: a redelivered copy in the same process is another run."""

    item_id: str
    step: str
    holder: str = field(default_factory=new_holder)
    lost: threading.Event = field(default_factory=threading.Event)

    @property
    def tag(self) -> str:
        return tag_of(self.holder)


_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("lease", default=None)


@contextlib.contextmanager
def entered(lease: Lease) -> Iterator[Lease]:
    """Make ``lease`` the current run's for the block."""
    token = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(token)


def current() -> Lease | None:
    return _current.get()


def check() -> None:
    """Raise LeaseLost if the heartbeat found this run's lease taken over: stop working now."""
    lease = _current.get()
    if lease is not None and lease.lost.is_set():
        raise LeaseLost(f"item {lease.item_id}: the {lease.step} step was taken over by another worker")


def guard(item: Item) -> None:
    """Before committing results about ``item`` (its row locked by the caller): raise
    LeaseLost unless this run still holds its lease. Outside a leased run (a test calling a
    step directly) there is nothing to check."""
    lease = _current.get()
    if lease is None or lease.item_id != item.id:
        return
    if item.lease_holder != lease.holder:
        lease.lost.set()
        raise LeaseLost(f"item {item.id}: the {lease.step} step was taken over by {item.lease_holder or 'the upkeep'}")


def work_prefix() -> str:
    """The prefix of a working folder: it carries the run's tag, so that a run taking a dead
    run's step over on the same host can find what that one left."""
    lease = _current.get()
    return f"work-{lease.tag}-" if lease is not None else "work-"
