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

    def __call__(self, *args: str, code: int = 0, token: str | None = None) -> Result:
        given = ["--token", token] if token else []
        result = CliRunner().invoke(main, ["--data-dir", str(self.data_dir), *args, *given], catch_exceptions=False)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    def said(self, *args: str, code: int = 0, token: str | None = None) -> str:
        """What the command told the person on stderr, with rich's line wrapping undone."""
        return " ".join(self(*args, code=code, token=token).stderr.split())

    def token(self, email: str = "admin@force.police.uk", role: str = "admin") -> str:
        return self("users", "add", email, "--role", role).stdout.strip()


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
    admin = cli.token()
    made = cli("cases", "create", "OP-1", "--title", "Burglary case", "--assign", "pc@force.police.uk", token=admin)
    assert made.stdout == "OP-1\n"
    cli("cases", "create", "OP-2", token=admin)
    said = cli.said("cases", "assign", "OP-2", "colleague@force.police.uk", token=admin)
    assert said == "colleague@force.police.uk assigned to OP-2"
    assert "was already assigned" in cli.said("cases", "assign", "OP-2", "colleague@force.police.uk", token=admin)
    # Piped, the rows alone (the header row is for a terminal), in the columns --help names.
    assert "reference, title, assigned officers" in " ".join(cli("cases", "list", "--help").stdout.split())
    assert cli("cases", "list", token=admin).stdout.splitlines() == [
        "OP-1  Burglary case  pc@force.police.uk", "OP-2  -              colleague@force.police.uk"]
    # An officer lists the cases they work on; who else does is for admins to see, as in the API.
    colleague = cli.token("colleague@force.police.uk", "officer")
    assert cli("cases", "list", token=colleague).stdout.splitlines() == ["OP-2  -  -"]
    cli("cases", "unassign", "OP-2", "Colleague@force.police.uk", token=admin)
    assert cli("cases", "list", token=colleague).stdout == ""
    refused = cli.said("cases", "unassign", "OP-2", "colleague@force.police.uk", code=3, token=admin)
    assert "is not assigned to case OP-2" in refused
    assert cli.said("cases", "create", "OP-1", code=5, token=admin) == "error: case OP-1 already exists"
    assert cli.said("cases", "assign", "OP-9", "pc@force.police.uk", code=3, token=admin) == \
        "error: case OP-9 does not exist"


def test_cases_take_the_api_roles(cli: Cli) -> None:
    officer, auditor = cli.token("pc@force.police.uk", "officer"), cli.token("audit@force.police.uk", "auditor")
    # An officer opens a case and is assigned to it; assigning others is for admins.
    assert cli("cases", "create", "OP-1", token=officer).stdout == "OP-1\n"
    assert cli("cases", "list", token=officer).stdout.splitlines() == ["OP-1  -  -"]
    roles = "error: this needs one of the roles: admin"
    assert cli.said("cases", "create", "OP-2", "--assign", "x@force.police.uk", code=4, token=officer) == roles
    assert cli.said("cases", "assign", "OP-1", "x@force.police.uk", code=4, token=officer) == roles
    assert cli.said("cases", "create", "OP-2", code=4, token=auditor) == "error: this needs one of the roles: officer, admin"
    assert cli("cases", "list", token=auditor).stdout.splitlines() == ["OP-1  -  -"]
    assert "OP-2" not in cli("cases", "list", token=cli.token()).stdout  # refused: nothing was made


def test_items_list_and_show(cli: Cli) -> None:
    cli("cases", "create", "OP-1", "--assign", "pc@force.police.uk", token=cli.token())
    token = cli.token("pc@force.police.uk", "officer")
    rt = Runtime.build(Settings(data_dir=cli.data_dir))
    try:
        with rt.db.transaction() as session:
            case = session.scalars(select(Case)).one()
            officer = session.scalars(select(User).where(User.email == "pc@force.police.uk")).one()
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
    listed = cli("items", "list", "--case", "OP-1", token=token).stdout
    assert listed == f"{item_id}  {'ready':<11}  {1234:>14}  cam 1.mp4\n"
    assert json.loads(cli("items", "show", item_id, "--json", token=token).stdout) == expected
    shown = cli("items", "show", item_id, token=token).stdout.splitlines()
    assert f"sha256        {'a' * 64} (matches the officer's)" in shown
    assert "warning       a warning" in shown and "reason        -" in shown
    # The API's words, and its rule: another case's item reads as missing.
    assert cli.said("items", "show", "0000", code=3, token=token) == "error: item not found"
    stranger = cli.token("other@force.police.uk", "officer")
    assert cli.said("items", "show", item_id, code=3, token=stranger) == "error: item not found"
    assert cli.said("items", "list", "--case", "OP-1", code=3, token=stranger) == \
        "error: case OP-1 not found among the cases you are assigned to"
    assert cli.said("items", "list", "--case", "OP-9", code=3, token=cli.token()) == "error: case OP-9 does not exist"
