"""``evidence share`` and ``evidence links`` (evidence.cli.links) on an embedded data dir:
the URL alone on stdout, the passcode apart on stderr, ``links list --json`` printing what
``GET /api/v1/links`` answers, revocation, and a new signing key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import pytest
import requests
from click.testing import CliRunner, Result

from evidence.accounts import users
from evidence.cli.main import main
from evidence.http.app import create_app
from evidence.settings import Settings
from tests.support.inprocess import serving

PUBLIC = "https://evidence.example"


class Run(Protocol):
    def __call__(self, *args: str, code: int = 0) -> Result: ...


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Run]:
    """The data dir, and the command line on it as the officer of case OP-1 (their token in
    EVIDENCE_TOKEN, as on their shell)."""
    monkeypatch.setenv("EVIDENCE_PUBLIC_URL", PUBLIC)
    data = tmp_path / "data"

    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result

    admin = run("users", "add", "admin@force.police.uk", "--role", "admin").stdout.strip()
    run("cases", "create", "OP-1", "--assign", "pc@force.police.uk", "--token", admin)
    monkeypatch.setenv("EVIDENCE_TOKEN", run("users", "add", "pc@force.police.uk", "--role", "officer").stdout.strip())
    return data, run


def test_share_prints_the_url_alone_and_the_passcode_apart(cli: tuple[Path, Run]) -> None:
    _, run = cli
    made = run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "14d", "--passcode")
    assert made.stdout.startswith(f"{PUBLIC}/s/") and made.stdout.count("\n") == 1
    said = " ".join(made.stderr.split())
    assert said.startswith("passcode (send it separately from the link): ") and len(said.rsplit(" ", 1)[1]) == 10
    plain = run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "90m")
    assert plain.stderr == ""


@pytest.mark.parametrize(("args", "code", "said"), [
    (("--expires", "14x"), 2, "is not a duration"),
    (("--expires", "1000000000d"), 2, "far too long"),
    (("--expires", "30s"), 2, "between one minute and 366 days"),
    (("--expires", "14d", "--max-uses", "0"), 2, "--max-uses"),
    (("--expires", "14d", "--item", "0" * 32), 3, "not items of case OP-1"),
])
def test_share_refuses_plainly(cli: tuple[Path, Run], args: tuple[str, ...], code: int, said: str) -> None:
    _, run = cli
    result = run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", *args, code=code)
    assert said in " ".join(result.output.split()) and "Traceback" not in result.output


def test_links_list_json_is_what_the_api_answers(cli: tuple[Path, Run]) -> None:
    data, run = cli
    run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "7d", "--download", "--max-uses", "3")
    run("share", "--case", "OP-1", "--to", "other@cps.gov.uk", "--expires", "1h")
    listed = json.loads(run("links", "list", "--case", "OP-1", "--json").stdout)
    app = create_app(Settings(data_dir=data, public_url=PUBLIC))
    with serving(app) as url:
        rt = app.state.runtime
        with rt.db.transaction() as session:
            token = rt.signer.issue(users.user_by_email(session, "pc@force.police.uk"))
        answer = requests.get(f"{url}/api/v1/links", params={"case": "OP-1"}, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == listed
    assert [link["to"] for link in listed] == ["cps@cps.gov.uk", "other@cps.gov.uk"]
    lines = run("links", "list", "--case", "OP-1").stdout.splitlines()
    assert lines[0].split()[:4] == [listed[0]["id"], "live", "download", "0/3"]
    assert lines[1].endswith("other@cps.gov.uk  0 item(s)")


def test_revoke_and_rotate(cli: tuple[Path, Run]) -> None:
    _, run = cli
    run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "7d")
    [link] = json.loads(run("links", "list", "--case", "OP-1", "--json").stdout)
    assert run("links", "revoke", link["id"]).stdout.startswith(f"{link['id']} revoked at ")
    assert "revoked" in run("links", "list", "--case", "OP-1").stdout
    assert "does not exist" in run("links", "revoke", "0" * 32, code=3).output
    old_kid = link["kid"]
    new_kid = run("links", "rotate-key").stdout.strip()
    assert new_kid > old_kid
    run("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "7d")
    kids = [entry["kid"] for entry in json.loads(run("links", "list", "--case", "OP-1", "--json").stdout)]
    assert kids == [old_kid, new_kid]
