"""The operator's commands (evidence.cli.main) against an embedded data dir, run in-process
by click's runner: accounts, cases and their officers, items; messages and exit codes
instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from evidence.cli.main import main
from evidence.http.views import item_view
from evidence.models import Case, Item, Upload, User
from evidence.runtime import Runtime
from evidence.settings import Settings


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(main, ["--data-dir", str(self.data_dir), *args], catch_exceptions=False)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    def said(self, *args: str, code: int = 0) -> str:
        """What the command told the person on stderr, with rich's line wrapping undone."""
        return " ".join(self(*args, code=code).stderr.split())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("EVIDENCE_PUBLIC_URL", "https://evidence.example")
    return Cli(tmp_path / "data")


def test_users_add_prints_a_token_alone(cli: Cli) -> None:
    token = cli("users", "add", "PC@force.police.uk", "--role", "officer").stdout
    assert token.count("\n") == 1 and " " not in token.strip()
    assert jwt.decode(token.strip(), options={"verify_signature": False})["role"] == "officer"
    # Again: a fresh token for the same account.
    assert cli("users", "add", "pc@force.police.uk", "--role", "officer").stdout != token


def test_users_add_refuses_another_role_plainly(cli: Cli) -> None:
    cli("users", "add", "pc@force.police.uk", "--role", "officer")
    refused = cli.said("users", "add", "pc@force.police.uk", "--role", "admin", code=5)
    assert refused == "error: pc@force.police.uk already exists with role officer"
    assert cli("users", "add", "pc@force.police.uk", "--role", "chief", code=2).stdout == ""


def test_users_revoke_disable_enable(cli: Cli) -> None:
    cli("users", "add", "pc@force.police.uk", "--role", "officer")
    assert cli.said("users", "revoke", "PC@force.police.uk").endswith("no longer work")
    assert cli.said("users", "disable", "pc@force.police.uk") == "pc@force.police.uk disabled"
    assert cli.said("users", "disable", "pc@force.police.uk") == "pc@force.police.uk was already disabled"
    assert cli.said("users", "enable", "pc@force.police.uk") == "pc@force.police.uk enabled"
    assert cli.said("users", "revoke", "nobody@force.police.uk", code=3) == "error: no account nobody@force.police.uk"


def test_cases_create_assign_list_unassign(cli: Cli) -> None:
    assert cli("cases", "create", "OP-1", "--title", "Burglary", "--assign", "pc@force.police.uk").stdout == "OP-1\n"
    cli("cases", "create", "OP-2")
    assert cli.said("cases", "assign", "OP-2", "colleague@force.police.uk") == "colleague@force.police.uk assigned to OP-2"
    assert "was already assigned" in cli.said("cases", "assign", "OP-2", "colleague@force.police.uk")
    assert cli("cases", "list").stdout.splitlines() == [
        "OP-1\tBurglary\tpc@force.police.uk", "OP-2\t\tcolleague@force.police.uk"]
    cli("cases", "unassign", "OP-2", "Colleague@force.police.uk")
    assert "is not assigned to case OP-2" in cli.said("cases", "unassign", "OP-2", "colleague@force.police.uk", code=3)
    assert cli.said("cases", "create", "OP-1", code=5) == "error: case OP-1 already exists"
    assert cli.said("cases", "assign", "OP-9", "pc@force.police.uk", code=3) == "error: case OP-9 does not exist"


def test_items_list_and_show(cli: Cli) -> None:
    cli("cases", "create", "OP-1", "--assign", "pc@force.police.uk")
    rt = Runtime.build(Settings(data_dir=cli.data_dir))
    try:
        with rt.db.transaction() as session:
            officer, case = session.scalars(select(User)).one(), session.scalars(select(Case)).one()
            upload = Upload(id="1" * 32, owner_id=officer.id, case_id=case.id, storage_key="k")
            session.add(upload)
            session.flush()
            item = Item(case_id=case.id, upload_id=upload.id, officer_id=officer.id, filename="cam 1.mp4", size=1234,
                        storage_key="k", state="ready", hashes={"sha256": "a" * 64}, client_sha256="a" * 64,
                        warnings=["a warning"])
            session.add(item)
            session.flush()
            item_id = item.id
            expected = item_view(item, "OP-1", "https://evidence.example").as_json()
    finally:
        rt.close()
    assert cli("items", "list", "--case", "OP-1").stdout == f"{item_id}  {'ready':<11}  {1234:>14}  cam 1.mp4\n"
    assert json.loads(cli("items", "show", item_id, "--json").stdout) == expected
    shown = cli("items", "show", item_id).stdout.splitlines()
    assert f"sha256        {'a' * 64} (matches the officer's)" in shown
    assert "warning       a warning" in shown and "reason        -" in shown
    assert cli.said("items", "show", "0000", code=3) == "error: item 0000 does not exist"
    assert cli.said("items", "list", "--case", "OP-9", code=3) == "error: case OP-9 does not exist"
