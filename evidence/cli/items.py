"""``evidence items``: a case's items and one item's state, hashes and working copies,
from the local data dir or, with ``--server``, through the API; either way as the person whose
token is given, seeing what the API would show them (:mod:`evidence.cli.actor`)."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from evidence import cases
from evidence.cli.actor import acting
from evidence.cli.common import friendly, local_runtime
from evidence.cli.remote import api_of, remote_options
from evidence.cli.suggest import suggesting
from evidence.cli.table import Column, print_table
from evidence.errors import NotFound
from evidence.http.views import items_view
from evidence.models import Item

# In the order the command's help names them; widths keep piped rows as they were.
ITEM_COLUMNS = (Column("ID"), Column("STATE", width=11), Column("SIZE", width=14, right=True), Column("FILENAME"))


@click.group("items")
def items_group() -> None:
    """Items (originals) and their state."""


@items_group.command("list")
@click.option("--case", "case_ref", required=True)
@remote_options
@click.pass_context
@friendly
def items_list(ctx: click.Context, case_ref: str, server: str | None, token: str | None) -> None:
    """List a case's items: id, state, size (bytes), filename."""
    api = api_of(server, token)
    found = api.items(case_ref) if api else _local_items(ctx, case_ref, token)
    print_table(ITEM_COLUMNS, ((item["id"], item["state"], item["size"], item["filename"]) for item in found))


@items_group.command("show")
@click.argument("item_id")
@click.option("--json", "as_json", is_flag=True, help="The same object as GET /api/v1/items/{id}")
@remote_options
@click.pass_context
@friendly
def items_show(ctx: click.Context, item_id: str, as_json: bool, server: str | None, token: str | None) -> None:
    """Show one item."""
    api = api_of(server, token)
    data = api.item(item_id) if api else _local_item(ctx, item_id, token)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in ("id", "case", "filename", "size", "state", "reason", "exhibit", "kind", "progress", "client_sha256"):
        click.echo(f"{key:<14}{data[key] if data[key] is not None else '-'}")
    for name, value in data["hashes"].items():
        verified = " (matches the officer's)" if name == "sha256" and value == data["client_sha256"] else ""
        click.echo(f"{name:<14}{value}{verified}")
    for warning in data["warnings"]:
        click.echo(f"{'warning':<14}{warning}")
    fixity = data.get("fixity") or {}
    if fixity.get("state"):  # the last fixity audit: an original that differs must not be missed here
        problems = "; ".join(f"{p.get('object')}{' ' + p['part'] if p.get('part') else ''} {p.get('problem')}"
                             for p in fixity.get("problems") or [])
        checked = f" (checked {fixity['checked_at'][:19].replace('T', ' ')} UTC)" if fixity.get("checked_at") else ""
        click.echo(f"{'fixity':<14}{str(fixity['state']).upper() if fixity['state'] == 'failed' else fixity['state']}"
                   f"{': ' + problems if problems else ''}{checked}")
    for made in data["derivatives"]:
        click.echo(f"{made['kind']:<14}{made['sha256']}  {made['size']} bytes")


def _local_items(ctx: click.Context, case_ref: str, token: str | None) -> list[dict[str, Any]]:
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.READERS) as (session, user):
        try:
            case = cases.case_for(session, user, case_ref)
        except NotFound as error:
            raise suggesting(error, case_ref, lambda: cases.visible_refs(session, user)) from None
        rows = session.scalars(select(Item).where(Item.case_id == case.id).order_by(Item.created_at))
        return [{"id": item.id, "state": str(item.state), "size": item.size, "filename": item.filename}
                for item in rows]


def _local_item(ctx: click.Context, item_id: str, token: str | None) -> dict[str, Any]:
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.READERS) as (session, user):
        item = cases.item_for(session, user, item_id)
        return items_view(session, [item], rt.settings.effective_public_url)[0].as_json()
