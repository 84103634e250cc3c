"""Every act is done by a person: the command line names the person whose token it was given,
on the server host as through ``--server``, under the API's role and case rules, and the ledger
names them as the API does. Without a token, or with one the API would refuse, nothing is done
and nothing recorded. Maintenance on the host is the service account, with the OS user as a
detail. Real ``evidence serve`` and ``evidence`` processes throughout."""

from __future__ import annotations

import base64
import getpass
from datetime import timedelta
from typing import Any

import requests
from alembic import command
from sqlalchemy import select, update

from evidence import migrate
from evidence.custody import statement
from evidence.db import make_engine
from evidence.models import CustodyEvent, Link, Upload, utcnow
from tests.support.server import ADMIN, Server

OFFICER = "officer@force.police.uk"
SHARE = ("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "7d")


def ledger(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    """Every entry's action, actor and details, in order (read from the database)."""
    rt = server.runtime()
    try:
        with rt.db.sessions() as session:
            return [(e.action, e.actor, e.details) for e in session.scalars(select(CustodyEvent).order_by(CustodyEvent.seq))]
    finally:
        rt.close()


def links(server: Server) -> list[Link]:
    rt = server.runtime()
    try:
        with rt.db.sessions() as session:
            return list(session.scalars(select(Link).order_by(Link.created_at)))
    finally:
        rt.close()


def said(server: Server, *args: str, code: int) -> str:
    """What a refused command said on stderr (rich's line wrapping undone)."""
    result = server.cli(*args, check=False)
    assert result.returncode == code and not result.stdout and "Traceback" not in result.stderr, result
    return " ".join(result.stderr.split())


def acts(server: Server) -> list[tuple[str, str]]:
    """Action and actor of every entry but the server's own checkpoints."""
    return [(action, actor) for action, actor, _ in ledger(server) if actor != "system:ledger"]


def test_the_ledger_names_whoever_acts_on_the_host_or_through_the_api(server: Server) -> None:
    admin, officer = server.token(ADMIN, "admin"), server.token(OFFICER, "officer")
    assert server.cli("cases", "create", "OP-1", "--assign", OFFICER, "--token", admin).stdout == "OP-1\n"
    local = server.cli(*SHARE, "--token", officer).stdout.strip()
    remote = server.cli(*SHARE, "--server", server.url, "--token", officer).stdout.strip()
    assert local.startswith(f"{server.url}/s/") and remote.startswith(f"{server.url}/s/")
    first, second = links(server)
    server.cli("links", "revoke", first.id, "--token", officer)
    server.cli("links", "revoke", second.id, "--server", server.url, "--token", officer)

    by_admin, by_officer = f"user:{ADMIN}", f"user:{OFFICER}"
    assert acts(server) == [("case.created", by_admin), ("case.assigned", by_admin),
                            ("link.created", by_officer), ("link.created", by_officer),
                            ("link.revoked", by_officer), ("link.revoked", by_officer)]
    # The rows say so too, whichever way the act came.
    assert [(link.created_by, link.revoked_by, link.creator_id is not None) for link in links(server)] == [
        (by_officer, by_officer, True)] * 2
    case = requests.get(f"{server.url}/api/v1/cases/OP-1", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert case.json()["created_by"] == by_admin


def test_an_officer_not_on_the_case_cannot_share_it_either_way(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    server.case("OP-1", OFFICER)
    server.cli(*SHARE, "--token", server.token(OFFICER, "officer"))
    [link] = links(server)
    before = ledger(server)
    stranger = server.token("stranger@force.police.uk", "officer")
    reviewer = server.token("cps@cps.gov.uk", "reviewer")

    # The API's words and exit codes, on the host as through it: the case is not theirs to see.
    not_theirs = "error: case OP-1 not found among the cases you are assigned to"
    for remote in ((), ("--server", server.url)):
        assert said(server, *SHARE, *remote, "--token", stranger, code=3) == not_theirs
        assert said(server, "links", "list", "--case", "OP-1", *remote, "--token", stranger, code=3) == not_theirs
        assert said(server, "links", "revoke", link.id, *remote, "--token", stranger, code=3) == \
            f"error: link {link.id} does not exist"
        assert "this needs one of the roles: officer, admin" in said(server, *SHARE, *remote, "--token", reviewer,
                                                                      code=4)
    # Nothing was done and nothing recorded.
    assert [(found.id, found.revoked_at) for found in links(server)] == [(link.id, None)]
    assert [entry for entry in ledger(server) if entry[1] != "system:ledger"] == [
        entry for entry in before if entry[1] != "system:ledger"]


def test_a_token_is_needed_and_checked_as_the_api_checks_it(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    server.case("OP-1", OFFICER)
    old = server.token(OFFICER, "officer")
    for args in (SHARE, ("cases", "create", "OP-2"), ("links", "list", "--case", "OP-1"), ("links", "revoke", "0" * 32),
                 ("items", "list", "--case", "OP-1"), ("cases", "list"), (*SHARE, "--server", server.url)):
        refused = server.cli(*args, check=False)  # one line, as the person reads it: what to do, and why
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2, "", "error: give --token or set EVIDENCE_TOKEN: the custody record names who acts\n"), args
    assert "invalid token" in said(server, *SHARE, "--token", old[:-4] + "AAAA", code=4)

    server.cli("users", "revoke", OFFICER)
    assert said(server, *SHARE, "--token", old, code=4) == \
        "error: the token was refused: this token has been revoked; get a new one"
    assert "the server refused the token: this token has been revoked" in said(
        server, *SHARE, "--server", server.url, "--token", old, code=4)
    fresh = server.token(OFFICER, "officer")
    server.cli("users", "disable", OFFICER)
    for remote in ((), ("--server", server.url)):
        assert "this account is disabled" in said(server, *SHARE, *remote, "--token", fresh, code=4)
    assert links(server) == []
    assert [action for action, _ in acts(server)] == ["case.created", "case.assigned", "user.revoked", "user.disabled"]


def test_maintenance_on_the_host_is_the_service_account_with_the_os_user(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    case = server.case("OP-1", OFFICER)
    token = server.token(OFFICER, "officer")
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"filename": "a.bin", "case": case}.items())
    made = requests.post(f"{server.url}/files/", data=b"12345", timeout=10, headers={
        "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": metadata,
        "Content-Type": "application/offset+octet-stream"})
    assert made.status_code == 201, made.text
    server.stop()  # so its own schedule does not sweep first
    rt = server.runtime()
    try:
        with rt.db.transaction() as session:  # abandoned a while ago
            session.execute(update(Upload).values(expires_at=utcnow() - timedelta(hours=1)))
    finally:
        rt.close()

    assert server.cli("uploads", "cleanup").stdout.startswith("removed 1 expired upload(s)\n")
    server.cli("users", "revoke", OFFICER)
    server.cli("audit", "checkpoint")

    run_by = f"operator:{getpass.getuser()}"
    done = [(action, actor, details.get("run_by")) for action, actor, details in ledger(server)
            if action in ("upload.expired", "user.revoked", "checkpoint.signed")]
    assert done == [("upload.expired", "operator:service", run_by), ("user.revoked", "operator:service", run_by),
                    ("checkpoint.signed", "operator:service", run_by)]
    # A continuity statement reads both as the service account, and names no OS user.
    assert statement.who("operator:service") == "service account"
    assert statement.detail_lines({"run_by": run_by}) == ["run_by: service account"]


def test_migrations_and_key_rotation_are_the_service_accounts(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(start=False)
    server.cli("users", "add", ADMIN, "--role", "admin")
    assert ledger(server) == []  # a new database: there was nothing on the record an upgrade could touch
    engine = make_engine(f"sqlite:///{server.data_dir / 'evidence.db'}")
    try:
        with engine.begin() as connection:  # as an older release left it
            config = migrate.alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
    finally:
        engine.dispose()

    kid = server.cli("links", "rotate-key").stdout.strip()  # any command on the host upgrades first
    run_by = f"operator:{getpass.getuser()}"
    assert ledger(server) == [
        ("schema.upgraded", "operator:service", {"from": "0007", "to": migrate.HEAD, "run_by": run_by}),
        ("link_key.rotated", "operator:service", {"kid": kid, "run_by": run_by})]
    server.cli("links", "rotate-key")
    assert [action for action, _, _ in ledger(server)] == ["schema.upgraded", "link_key.rotated", "link_key.rotated"]
