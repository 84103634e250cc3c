"""``evidence share`` and ``evidence links``: signed links for reviewers, on the server host or,
with ``--server``, through the API (an officer's laptop); either way as the person whose token
is given, under the API's rules (:mod:`evidence.cli.actor`)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from evidence import cases, custody
from evidence.accounts.access import actor_of
from evidence.cli.actor import acting
from evidence.cli.common import err, friendly, local_runtime
from evidence.cli.remote import api_of, remote_options
from evidence.cli.sizes import DurationType
from evidence.cli.suggest import suggesting
from evidence.cli.table import Column, print_table
from evidence.custody.actions import Action
from evidence.errors import NotFound
from evidence.http.views import link_view
from evidence.links.sharing import Share, create_link, link_url, list_links, revoke_link
from evidence.links.tokens import keyring_for
from evidence.models import utcnow


@click.command("share")
@click.option("--case", "case_ref", required=True, help="Case reference")
@click.option("--item", "item_ids", multiple=True, help="Share only this item (repeat); default: the whole case")
@click.option("--to", "recipient", required=True, help="The reviewer's email address")
@click.option("--expires", "lifetime", type=DurationType(), required=True, help="How long the link lasts: 90m, 12h, 14d")
@click.option("--download", is_flag=True, help="Allow downloading the originals (default: view only)")
@click.option("--passcode", is_flag=True, help="Also require a passcode (printed on stderr; send it separately)")
@click.option("--max-uses", type=click.IntRange(min=1), default=None, help="Browser sessions allowed in all")
@click.option("--include-future", is_flag=True, help="A case-wide share also shows items added later")
@remote_options
@click.pass_context
@friendly
def share(ctx: click.Context, case_ref: str, item_ids: tuple[str, ...], recipient: str, lifetime: timedelta,
          download: bool, passcode: bool, max_uses: int | None, include_future: bool, server: str | None,
          token: str | None) -> None:
    """Share a case, or chosen items, with a reviewer: prints the link's URL."""
    request = Share(case_ref, recipient, lifetime, item_ids, download, passcode, max_uses, include_future)
    api = api_of(server, token)
    if api:
        made = api.share(request)
        url, code = made["url"], made["issued_passcode"]
    else:
        url, code = _local_share(ctx, request, token)
    if code:
        err.print(f"passcode (send it separately from the link): {code}", highlight=False)
    click.echo(url)


def _local_share(ctx: click.Context, request: Share, token: str | None) -> tuple[str | None, str | None]:
    rt = local_runtime(ctx)
    keys = keyring_for(rt.settings)
    with acting(rt, token, *cases.WRITERS) as (session, user):
        try:
            cases.case_for(session, user, request.case_ref)  # officers share only from their own cases
            link, code = create_link(session, keys, request, actor_of(user), user, utcnow())
        except NotFound as error:
            raise suggesting(error, request.case_ref, lambda: cases.visible_refs(session, user)) from None
    return link_url(keys, link, rt.settings.effective_public_url), code


@click.group("links")
def links_group() -> None:
    """Signed links: list, revoke, rotate the signing key."""


@links_group.command("list")
@click.option("--case", "case_ref", required=True)
@click.option("--json", "as_json", is_flag=True, help="The same objects as GET /api/v1/links?case=REF")
@remote_options
@click.pass_context
@friendly
def links_list(ctx: click.Context, case_ref: str, as_json: bool, server: str | None, token: str | None) -> None:
    """A case's links: id, state, access, uses, expiry, recipient, items."""
    api = api_of(server, token)
    found = api.links(case_ref) if api else _local_links(ctx, case_ref, token)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    now = utcnow().isoformat()
    print_table(LINK_COLUMNS, (_link_row(link, now) for link in found))


# In the order the command's help names them.
LINK_COLUMNS = (Column("ID"), Column("STATE", width=7), Column("ACCESS", width=8), Column("USES"),
                Column("EXPIRES"), Column("TO"), Column("ITEMS"))


def _link_row(link: dict[str, Any], now: str) -> tuple[str, ...]:
    state = ("revoked" if link["revoked_at"] else "locked" if link["locked_at"]
             else "expired" if link["expires_at"] <= now else "live")
    uses = f"{link['uses']}/{link['max_uses'] or '-'}"
    return link["id"], state, link["permission"], uses, link["expires_at"], link["to"], f"{len(link['items'])} item(s)"


def _local_links(ctx: click.Context, case_ref: str, token: str | None) -> list[dict[str, Any]]:
    rt = local_runtime(ctx)
    keys = keyring_for(rt.settings)
    public_url = rt.settings.effective_public_url
    with acting(rt, token, *cases.WRITERS) as (session, user):
        try:
            cases.case_for(session, user, case_ref)
        except NotFound as error:
            raise suggesting(error, case_ref, lambda: cases.visible_refs(session, user)) from None
        return [link_view(link, link_url(keys, link, public_url), case_ref).as_json()
                for link in list_links(session, case_ref)]


@links_group.command("revoke")
@click.argument("link_id")
@remote_options
@click.pass_context
@friendly
def links_revoke(ctx: click.Context, link_id: str, server: str | None, token: str | None) -> None:
    """Revoke a link: its next request is refused."""
    api = api_of(server, token)
    revoked = api.revoke(link_id)["revoked_at"] if api else _local_revoke(ctx, link_id, token)
    click.echo(f"{link_id} revoked at {revoked or '?'}")


def _local_revoke(ctx: click.Context, link_id: str, token: str | None) -> str | None:
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.WRITERS) as (session, user):
        cases.link_for(session, user, link_id)
        link = revoke_link(session, link_id, actor_of(user), utcnow())
    return link.revoked_at.isoformat() if link.revoked_at else None


@links_group.command("rotate-key")
@click.pass_context
@friendly
def rotate_key(ctx: click.Context) -> None:
    """Sign new links with a new key; links signed with older keys keep working."""
    rt = local_runtime(ctx)
    kid = keyring_for(rt.settings).rotate()
    with rt.db.transaction() as session:
        custody.record(session, Action.LINK_KEY_ROTATED, {}, custody.SERVICE, {"kid": kid})
    click.echo(kid)
