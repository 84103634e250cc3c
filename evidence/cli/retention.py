"""``evidence cases outcome|hold|release``, ``evidence retention due`` and ``evidence dispose``:
a case's life after the charging decision (evidence.retention), on the server host or, with
``--server``, through the API; either way as the person whose token is given, under the
API's rules (:mod:`evidence.cli.actor`).

Who may do what: the case's outcome is recorded by its assigned officer or an admin (the
CPIA code makes the officer in charge of the investigation answerable for retaining its
material, and recording an outcome removes nothing); legal holds and disposal are for
admins, and a disposal needs two of them; the list of what is due is for auditors and admins.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from evidence import cases
from evidence.accounts.access import actor_of
from evidence.cli.actor import acting
from evidence.cli.common import err, friendly, local_runtime
from evidence.cli.remote import api_of, remote_options
from evidence.cli.suggest import suggesting
from evidence.cli.table import Column, print_table
from evidence.errors import InvalidInput, NotFound
from evidence.models import Case, Role, utcnow
from evidence.retention import disposal, holds, policy, state
from evidence.retention.due import due
from evidence.runtime import Runtime

DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _case(session: Any, user: Any, ref: str) -> Case:
    try:
        return cases.case_for(session, user, ref)
    except NotFound as error:
        raise suggesting(error, ref, lambda: cases.visible_refs(session, user)) from None


def _show(found: dict[str, Any]) -> None:
    review = found["review_on"] or "none: kept"
    appeal = ", appeal open" if found["appeal_open"] else ""
    hold = f"; HELD: {found['hold_reason']}" if found["held"] else ""
    click.echo(f"{found['case']}  outcome {found['outcome']}{appeal}  review {review}{hold}")


@click.command("outcome")
@click.argument("ref")
@click.option("--nfa", is_flag=True, help="No further action")
@click.option("--charged", is_flag=True, help="Charged: kept until the verdict")
@click.option("--convicted", type=DAY, default=None, metavar="DATE", help="Convicted on DATE (YYYY-MM-DD)")
@click.option("--release", type=DAY, default=None, metavar="DATE", help="With --convicted: release from custody or hospital")
@click.option("--acquitted", is_flag=True, help="Acquitted")
@click.option("--appeal-open", is_flag=True, help="An appeal is in progress: kept until it is determined")
@click.option("--appeal-closed", is_flag=True, help="The appeal is determined")
@click.option("--on", "on", type=DAY, default=None, metavar="DATE", help="The day it was decided [today]")
@remote_options
@click.pass_context
@friendly
def outcome(ctx: click.Context, ref: str, nfa: bool, charged: bool, convicted: datetime | None,
            release: datetime | None, acquitted: bool, appeal_open: bool, appeal_closed: bool, on: datetime | None,
            server: str | None, token: str | None) -> None:
    """Record case REF's outcome (CPIA code); prints the review date it gives (assigned officer, admin)."""
    chosen = [event for event, given in ((policy.Event.NFA, nfa), (policy.Event.CHARGED, charged),
                                         (policy.Event.CONVICTED, convicted is not None),
                                         (policy.Event.ACQUITTED, acquitted), (policy.Event.APPEAL_OPEN, appeal_open),
                                         (policy.Event.APPEAL_CLOSED, appeal_closed)) if given]
    if len(chosen) != 1:
        raise InvalidInput("give one of --nfa, --charged, --convicted DATE, --acquitted, --appeal-open, --appeal-closed")
    event = chosen[0]
    if convicted is not None and on is not None:
        raise InvalidInput("--convicted takes its date; --on is for the other outcomes")
    day = _day(convicted) or _day(on)
    api = api_of(server, token)
    if api:
        found = api.outcome(ref, str(event), day.isoformat() if day else None,
                            release.date().isoformat() if release else None)
    else:
        rt = local_runtime(ctx)
        with acting(rt, token, *cases.WRITERS) as (session, user):
            case = _case(session, user, ref)
            row = state.record_outcome(session, case, event, day or utcnow().date(), _day(release),
                                       state.periods_of(rt.settings), actor_of(user))
            found = state.view(case, row)
    _show(found)


def _local_hold(rt: Runtime, token: str | None, ref: str, reason: str | None) -> dict[str, Any]:
    with acting(rt, token, Role.ADMIN) as (session, user):
        case = _case(session, user, ref)
        if reason is None:
            row = holds.release(session, rt.vault, case, actor_of(user))
        else:
            row = holds.hold(session, rt.vault, case, reason, actor_of(user))
        return state.view(case, row)


@click.command("hold")
@click.argument("ref")
@click.option("--reason", required=True, help="Why (a court order, a complaint, a review...)")
@remote_options
@click.pass_context
@friendly
def hold(ctx: click.Context, ref: str, reason: str, server: str | None, token: str | None) -> None:
    """Place a legal hold on case REF: nothing of it may be disposed of (admins)."""
    api = api_of(server, token)
    _show(api.hold(ref, reason) if api else _local_hold(local_runtime(ctx), token, ref, reason))


@click.command("release")
@click.argument("ref")
@remote_options
@click.pass_context
@friendly
def release(ctx: click.Context, ref: str, server: str | None, token: str | None) -> None:
    """Release case REF's legal hold (admins)."""
    api = api_of(server, token)
    _show(api.release(ref) if api else _local_hold(local_runtime(ctx), token, ref, None))


@click.group("retention")
def retention_group() -> None:
    """Retention under the CPIA code: what may be reviewed for disposal."""


DUE_COLUMNS = (Column("CASE"), Column("OUTCOME", width=9), Column("REVIEW", width=10), Column("ITEM"),
               Column("STATE", width=11), Column("SIZE", right=True), Column("PROPOSED BY"), Column("FILENAME"))


@retention_group.command("due")
@remote_options
@click.pass_context
@friendly
def retention_due(ctx: click.Context, server: str | None, token: str | None) -> None:
    """Cases past their review date with no legal hold, one row per item not yet disposed of
    (auditors, admins)."""
    api = api_of(server, token)
    if api:
        found = api.retention_due()
    else:
        rt = local_runtime(ctx)
        with acting(rt, token, Role.AUDITOR, Role.ADMIN) as (session, _user):
            found = due(session, utcnow().date())
    print_table(DUE_COLUMNS, ((row["case"], row["outcome"], row["review_on"], row["item"] or "-", row["state"] or "-",
                               row["size"] if row["size"] is not None else "-", row["proposed_by"] or "-",
                               row["filename"] or "-") for row in found))


@click.command("dispose")
@click.argument("item_id")
@click.option("--reason", default=None, help="Propose the item's disposal, saying why (an admin)")
@click.option("--approve", is_flag=True, help="Approve another admin's proposal: then it happens")
@remote_options
@click.pass_context
@friendly
def dispose(ctx: click.Context, item_id: str, reason: str | None, approve: bool, server: str | None,
            token: str | None) -> None:
    """Dispose of an item, four eyes: one admin proposes (--reason), another approves (--approve)."""
    if (reason is None) == (not approve):
        raise InvalidInput("give --reason R to propose a disposal, or --approve to approve one")
    api = api_of(server, token)
    if reason is not None:
        proposed = api.propose_disposal(item_id, reason) if api else _local_propose(ctx, token, item_id, reason)
        click.echo(f"disposal of item {item_id} proposed by {proposed['proposed_by']}; another admin approves "
                   f"it with `evidence dispose {item_id} --approve`")
        return
    result = api.approve_disposal(item_id) if api else _local_approve(ctx, token, item_id)
    click.echo(disposal.disposal_message(result))
    if not result["original_removed"]:
        err.print(f"[yellow]the original is still stored:[/] {result['original_kept_because']}", highlight=False)


def _local_propose(ctx: click.Context, token: str | None, item_id: str, reason: str) -> dict[str, Any]:
    rt = local_runtime(ctx)
    with acting(rt, token, Role.ADMIN) as (session, user):
        item = cases.item_for(session, user, item_id)
        found = disposal.propose(session, item, user, actor_of(user), reason, utcnow().date())
        return {"item": found.item_id, "proposed_by": found.proposed_by, "reason": found.reason}


def _local_approve(ctx: click.Context, token: str | None, item_id: str) -> dict[str, Any]:
    rt = local_runtime(ctx)
    with acting(rt, token, Role.ADMIN) as (session, user):
        item = cases.item_for(session, user, item_id)
        finished = disposal.approve(session, rt.vault, item, user, actor_of(user), utcnow().date())
    if finished is not None:
        return finished
    with acting(rt, token, Role.ADMIN) as (session, user):  # the decision is committed: now the removal
        return disposal.carry_out(session, rt.vault, item_id, actor_of(user))
