"""One fixity audit run: choose the objects, check them at the paced rate, record the outcome.

What is checked: stored, complete objects only. An original once its SHA-256 has been recorded
(an upload still in progress has no item yet; an item not yet hashed has nothing to compare
with, and is taken up once it has); every working copy (a derivative row is written only after
its object is stored), with its parts. Reading shares the storage with uploads and processing:
nothing is locked, nothing waits on the audit, and the audit's own reading is paced.

The record: one ``fixity.checked`` entry per run, a summary (counts, bytes, the period the run
covered), so the ledger does not grow with the number of objects; one ``fixity.failed`` entry
per object found different, missing or (an original) no longer write-once, naming the item,
with what was expected and what was found. The flag on the item, its findings and each
object's check and due times are written in the transaction that records the failures, in
batches as the run goes, so a run that is stopped keeps what it has done.

Runs do not lock each other out: two runs at once (an operator's ``--due`` while the schedule
runs) may check an object twice, which costs reading, never correctness.
"""

from __future__ import annotations

import heapq
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from evidence import custody
from evidence.custody.actions import Action
from evidence.fixity import schedule
from evidence.fixity.check import ORIGINAL, Checked, Policy, Problem, Target, check
from evidence.fixity.pace import Pace
from evidence.models import Case, Derivative, FixityState, Item, utcnow
from evidence.runtime import Runtime
from evidence.vault.readback import readback_for

DUE, ALL = "due", "all"
COMMAND, SCHEDULE = "command", "schedule"
PAGE = 200
# An approved disposal removes the item's objects (evidence.retention): nothing left to check.
DISPOSED = "disposed"
# Results are written at least this often (and every FLUSH_COUNT objects).
FLUSH_SECONDS, FLUSH_COUNT = 5.0, 100


@dataclass(frozen=True)
class Options:
    scope: str = DUE
    limit: int | None = None  # objects (originals and working copies), parts not counted
    time_budget: float | None = None  # seconds after which no new object is taken
    trigger: str = COMMAND
    actor: str = custody.SERVICE
    # A run that found nothing to check is recorded only when asked (a command is; the schedule's
    # empty runs are not, or a quiet vault would add an entry every interval).
    record_empty: bool = True


@dataclass(frozen=True)
class Finding:
    item_id: str
    case_ref: str
    problem: Problem


@dataclass
class Outcome:
    run: str
    scope: str
    started_at: datetime
    finished_at: datetime | None = None
    originals: int = 0
    working_copies: int = 0
    parts: int = 0
    bytes: int = 0
    items: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    left_due: int | None = None
    stopped: str | None = None
    recorded: bool = False
    reader: str = ""
    seconds: float = 0.0

    @property
    def objects(self) -> int:
        return self.originals + self.working_copies

    @property
    def failed_items(self) -> list[str]:
        return sorted({finding.item_id for finding in self.findings})


def audit(rt: Runtime, options: Options, on_finding: Callable[[Finding], None] | None = None) -> Outcome:
    """Run one audit; its outcome (also recorded in the ledger)."""
    if options.scope not in (DUE, ALL):
        raise ValueError(f"scope must be {DUE} or {ALL}")
    settings = rt.settings
    cycle = timedelta(days=settings.fixity_cycle_days)
    reader = readback_for(rt.vault, settings.s3_access_key, settings.s3_secret_key)
    outcome = Outcome(run=uuid.uuid4().hex, scope=options.scope, started_at=utcnow(), reader=reader.client)
    pace = Pace(settings.fixity_bytes_per_second)
    writer = _Writer(rt, options, outcome, cycle)
    policy = Policy(settings.retention_days)
    try:
        assign_due_dates(rt, cycle, outcome.started_at)
        targets = _due(rt, outcome.started_at) if options.scope == DUE else _everything(rt)
        for target in targets:
            if options.limit is not None and outcome.objects >= options.limit:
                outcome.stopped = "limit reached"
                break
            if options.time_budget is not None and pace.elapsed() >= options.time_budget:
                outcome.stopped = "run time used"
                break
            checked = check(target, reader, pace, policy, utcnow())
            _count(outcome, checked)
            for problem in checked.problems:
                finding = Finding(target.item_id, target.case_ref, problem)
                outcome.findings.append(finding)
                if on_finding is not None:
                    on_finding(finding)
            writer.add(checked)
    except BaseException as error:  # the storage went away, an interrupt, a time limit: keep what was done
        outcome.stopped = _why(error)
        _finish(rt, writer, outcome, options, pace)
        raise
    finally:
        reader.close()
    _finish(rt, writer, outcome, options, pace)
    return outcome


def _why(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    message = getattr(error, "message", None)
    return f"stopped: {message}" if isinstance(message, str) else f"stopped: {type(error).__name__}"


def _count(outcome: Outcome, checked: Checked) -> None:
    if checked.target.table == "item":
        outcome.originals += 1
    else:
        outcome.working_copies += 1
    outcome.parts += checked.parts
    outcome.bytes += checked.bytes
    outcome.items.add(checked.target.item_id)


def _finish(rt: Runtime, writer: _Writer, outcome: Outcome, options: Options, pace: Pace) -> None:
    writer.flush()
    outcome.finished_at = utcnow()
    outcome.seconds = pace.elapsed()
    if options.scope == DUE:
        outcome.left_due = count_due(rt, outcome.started_at)
    if outcome.objects or options.record_empty:
        with rt.db.transaction() as session:
            custody.record(session, Action.FIXITY_CHECKED, {}, options.actor, summary(rt, outcome, options))
        outcome.recorded = True


def summary(rt: Runtime, outcome: Outcome, options: Options) -> dict[str, Any]:
    """The run's ``fixity.checked`` details: what was covered, not one line per object."""
    settings = rt.settings
    return {
        "run": outcome.run,
        "scope": outcome.scope,
        "trigger": options.trigger,
        "started_at": outcome.started_at.isoformat(),
        "finished_at": (outcome.finished_at or utcnow()).isoformat(),
        "storage": rt.vault.describe(),
        "reader": outcome.reader,
        "objects": {"originals": outcome.originals, "working_copies": outcome.working_copies,
                    "parts": outcome.parts, "failed": len(outcome.findings)},
        "items": len(outcome.items),
        "items_failed": len(outcome.failed_items),
        "bytes": outcome.bytes,
        "limit": options.limit,
        "left_due": outcome.left_due,
        "stopped": outcome.stopped,
        "cycle_seconds": round(settings.fixity_cycle_days * 86400),
        "bytes_per_second": settings.fixity_bytes_per_second,
    }


# -- what to check -------------------------------------------------------------------------------

def _hashed() -> ColumnElement[bool]:
    """Originals with a SHA-256 to compare with (an item is hashed first thing after its upload)."""
    return cast(ColumnElement[bool], Item.hashes["sha256"].as_string().is_not(None) & (Item.state != DISPOSED))


def _original(row: Any) -> Target:
    return Target("item", row.id, row.id, row.ref, row.storage_key, str(row.hashes["sha256"]), row.size,
                  row.created_at)


def _copy(row: Any) -> Target:
    return Target("derivative", row.id, row.item_id, row.ref, row.key, row.sha256, row.size, row.created_at,
                  row.kind, dict(row.method or {}))


_ORIGINALS = (Item.id, Item.storage_key, Item.hashes, Item.size, Item.created_at, Case.ref, Item.fixity_due_at)
_COPIES = (Derivative.id, Derivative.item_id, Derivative.key, Derivative.sha256, Derivative.size,
           Derivative.created_at, Derivative.kind, Derivative.method, Case.ref, Derivative.fixity_due_at)


def _pages(rt: Runtime, query: Any, due: Any, ident: Any, make: Callable[[Any], Target],
           by_due: bool) -> Iterator[tuple[Any, Target]]:
    """The query's rows in (due, id) or id order, a page per short transaction (nothing is held
    open while objects are read: on SQLite every transaction holds the write lock)."""
    after: tuple[Any, str] | None = None
    while True:
        page = query
        if after is not None:
            page = page.where(or_(due > after[0], and_(due == after[0], ident > after[1]))) if by_due \
                else page.where(ident > after[1])
        page = page.order_by(due, ident) if by_due else page.order_by(ident)
        with rt.db.sessions() as session:
            rows = list(session.execute(page.limit(PAGE)))
        for row in rows:
            yield (row.fixity_due_at if by_due else None, row.id), make(row)
        if len(rows) < PAGE:
            return
        last = rows[-1]
        after = (last.fixity_due_at, last.id)


def _due(rt: Runtime, now: datetime) -> Iterator[Target]:
    """Originals and working copies due by ``now``, the longest due first."""
    originals = _pages(rt, select(*_ORIGINALS).join(Case, Case.id == Item.case_id)
                       .where(_hashed(), Item.fixity_due_at <= now), Item.fixity_due_at, Item.id, _original, True)
    copies = _pages(rt, select(*_COPIES).join(Item, Item.id == Derivative.item_id).join(Case, Case.id == Item.case_id)
                    .where(Derivative.fixity_due_at <= now, Item.state != DISPOSED), Derivative.fixity_due_at, Derivative.id, _copy, True)
    for _, target in heapq.merge(originals, copies, key=lambda pair: pair[0]):
        yield target


def _everything(rt: Runtime) -> Iterator[Target]:
    """Every original, then every working copy."""
    for _, target in _pages(rt, select(*_ORIGINALS).join(Case, Case.id == Item.case_id).where(_hashed()),
                            Item.fixity_due_at, Item.id, _original, False):
        yield target
    for _, target in _pages(rt, select(*_COPIES).join(Item, Item.id == Derivative.item_id)
                            .join(Case, Case.id == Item.case_id).where(Item.state != DISPOSED),
                            Derivative.fixity_due_at, Derivative.id, _copy, False):
        yield target


def count_due(rt: Runtime, now: datetime) -> int:
    with rt.db.sessions() as session:
        originals = session.scalar(select(func.count()).select_from(Item).where(_hashed(), Item.fixity_due_at <= now))
        copies = session.scalar(select(func.count()).select_from(Derivative).join(Item, Item.id == Derivative.item_id)
                                .where(Derivative.fixity_due_at <= now, Item.state != DISPOSED))
    return int(originals or 0) + int(copies or 0)


def assign_due_dates(rt: Runtime, cycle: timedelta, now: datetime) -> int:
    """Give each object with no due date yet (stored since the last run, or before audits
    existed) its first: its next turn in the cycle after it was hashed. One due further off
    than a cycle (the cycle was shortened) is brought to its turn in the new cycle."""
    assigned = 0
    for model, extra in ((Item, _hashed()), (Derivative, None)):
        since = func.coalesce(model.fixity_checked_at, model.created_at)
        pending = or_(model.fixity_due_at.is_(None), model.fixity_due_at > now + cycle)
        while True:
            with rt.db.transaction() as session:
                query = select(model.id, since.label("since")).where(pending)
                if extra is not None:
                    query = query.where(extra)
                rows = list(session.execute(query.limit(1000)))
                if not rows:
                    break
                session.execute(update(model), [
                    {"id": row.id, "fixity_due_at": schedule.next_due(_aware(row.since), row.id, cycle)}
                    for row in rows])
                assigned += len(rows)
    return assigned


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# -- writing results ---------------------------------------------------------------------------


class _Writer:
    """Writes checks in batches: each object's check and next due time, the items' flags and
    findings, and a ``fixity.failed`` entry per finding, in one transaction per batch."""

    def __init__(self, rt: Runtime, options: Options, outcome: Outcome, cycle: timedelta) -> None:
        self.rt, self.options, self.outcome, self.cycle = rt, options, outcome, cycle
        self.pending: list[Checked] = []
        self.last = time.monotonic()

    def add(self, checked: Checked) -> None:
        self.pending.append(checked)
        if len(self.pending) >= FLUSH_COUNT or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        with self.rt.db.transaction() as session:
            copies = [c for c in batch if c.target.table == "derivative"]
            if copies:
                session.execute(update(Derivative), [
                    {"id": c.target.id, "fixity_checked_at": c.at,
                     "fixity_due_at": schedule.next_due(c.at, c.target.id, self.cycle)} for c in copies])
            by_item: dict[str, list[Checked]] = defaultdict(list)
            for checked in batch:
                by_item[checked.target.item_id].append(checked)
            for item_id, checks in sorted(by_item.items()):
                self._flag(session, item_id, checks)

    def _flag(self, session: Session, item_id: str, checks: list[Checked]) -> None:
        item = session.get(Item, item_id, with_for_update=True)
        if item is None or item.state == DISPOSED:
            return  # disposed of while it was being read: its objects were removed on purpose
        for checked in checks:
            if checked.target.table == "item":
                item.fixity_checked_at = checked.at
                item.fixity_due_at = schedule.next_due(checked.at, item.id, self.cycle)
        # The findings of the objects checked now replace theirs from earlier checks; the
        # others' stand until those objects are checked again.
        subjects = {c.target.subject for c in checks}
        kept = [p for p in item.fixity_problems or [] if (p.get("object"), p.get("kind")) not in subjects]
        new = [{**p.as_json(), "at": c.at.isoformat()} for c in checks for p in c.problems]
        item.fixity_problems = kept + new
        item.fixity_state = FixityState.FAILED if item.fixity_problems else FixityState.OK
        if new and item.fixity_failed_at is None:
            item.fixity_failed_at = min(c.at for c in checks if c.problems)
        for checked in checks:
            for problem in checked.problems:
                custody.record(session, Action.FIXITY_FAILED, {"case": checked.target.case_ref, "item": item_id},
                               self.options.actor, failure_details(self.outcome.run, checked, problem))


def failure_details(run: str, checked: Checked, problem: Problem) -> dict[str, Any]:
    details = {"run": run, **problem.as_json(), "checked_at": checked.at.isoformat()}
    if problem.object == ORIGINAL:
        details.pop("kind")
    return details
