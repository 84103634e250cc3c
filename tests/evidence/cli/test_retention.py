"""``evidence cases outcome|hold|release``, ``evidence retention due`` and ``evidence dispose``
(evidence.cli.retention), on the server host and with ``--server`` through the API: who may
do each, every refusal in plain words with its exit code, and what a reviewer's link shows of
an item once it is disposed of."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from evidence import cases
from evidence.cli.main import main
from evidence.http.app import create_app
from evidence.models import User
from evidence.runtime import Runtime
from evidence.settings import Settings
from evidence.vault.local import LocalVault
from tests.evidence.retention.stored import stored_item
from tests.support.inprocess import serving

CASE = "OP-CLI-RETAIN"
BYTES = b"same bytes" * 300


@dataclass
class World:
    data: Path
    tokens: dict[str, str]
    items: list[str]

    def run(self, who: str, *args: str, code: int = 0, server: str | None = None) -> Result:
        remote = ["--server", server] if server else []
        result = CliRunner().invoke(main, ["--data-dir", str(self.data), *args, *remote, "--token", self.tokens[who]],
                                    catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        return result


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    data = tmp_path / "data"

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    tokens = {name: run("users", "add", f"{name}@force.police.uk", "--role", role)
              for name, role in (("first", "admin"), ("second", "admin"), ("pc", "officer"), ("auditor", "auditor"),
                                 ("other", "officer"))}
    run("cases", "create", CASE, "--assign", "pc@force.police.uk", "--token", tokens["first"])
    rt = Runtime.build(Settings(data_dir=data))
    try:
        with rt.db.transaction() as session:
            officer = session.query(User).filter_by(email="pc@force.police.uk").one()
            case = cases.get_case(session, CASE)
            items = [stored_item(session, rt.vault, case, officer, BYTES, f"{n}.mp4").id for n in ("one", "two")]
    finally:
        rt.close()
    yield World(data, tokens, items)


def flow(world: World, item: str, server: str | None = None) -> None:
    """Hold, refusals, release, four eyes: the same words and exit codes either way."""
    run = world.run
    assert "HELD: court order" in run("first", "cases", "hold", CASE, "--reason", "court order", server=server).stdout
    said = run("first", "dispose", item, "--reason", "over", code=5, server=server).output
    assert "under a legal hold (court order)" in " ".join(said.split())
    assert "not held" not in run("second", "cases", "release", CASE, server=server).output
    assert "is not held" in run("second", "cases", "release", CASE, code=5, server=server).output
    assert "HELD" not in run("first", "cases", "outcome", CASE, "--nfa", "--on", "2020-01-06", server=server).stdout
    proposed = run("first", "dispose", item, "--reason", "NFA period over", server=server).stdout
    assert f"another admin approves it with `evidence dispose {item} --approve`" in " ".join(proposed.split())
    assert "four eyes" in run("first", "dispose", item, "--approve", code=4, server=server).output
    done = run("second", "dispose", item, "--approve", server=server)
    assert done.stdout.strip() == f"item {item} disposed of: 2 working cop(ies) removed; original removed"
    assert "already been disposed of" in run("second", "dispose", item, "--approve", code=5, server=server).output


def test_a_case_from_outcome_to_disposal_locally_and_through_the_api(world: World) -> None:
    run, (one, two) = world.run, world.items
    # The assigned officer records the outcome; another officer may not even see the case.
    shown = run("pc", "cases", "outcome", CASE, "--convicted", "2020-01-06", "--release", "2020-03-01").stdout
    assert shown.strip() == f"{CASE}  outcome convicted  review 2020-07-06"
    assert "not found among the cases you are assigned to" in run("other", "cases", "outcome", CASE, "--nfa", code=3).output
    assert "admin" in run("pc", "cases", "hold", CASE, "--reason", "r", code=4).output
    assert "admin" in run("auditor", "dispose", one, "--reason", "r", code=4).output
    assert "admin" in run("pc", "retention", "due", code=4).output
    due = run("auditor", "retention", "due").stdout.splitlines()  # piped: rows alone
    assert [line.split()[:4] for line in due] == [[CASE, "convicted", "2020-07-06", one], [CASE, "convicted", "2020-07-06", two]]

    flow(world, one)
    vault = LocalVault(world.data / "vault")
    assert not (vault.root / "derivatives" / one).exists()
    assert [line.split()[3] for line in run("auditor", "retention", "due").stdout.splitlines()] == [two]

    app = create_app(Settings(data_dir=world.data))
    with serving(app) as url:
        officer = {"Authorization": f"Bearer {world.tokens['pc']}"}
        link = requests.post(f"{url}/api/v1/links", headers=officer, timeout=30,
                             json={"case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600, "download": True})
        assert link.status_code == 201, link.text
        page = link.json()["url"].replace(app.state.runtime.settings.effective_public_url, url)
        assert requests.get(f"{page}/items/{two}/original", timeout=30).status_code == 200

        run("pc", "cases", "outcome", CASE, "--convicted", "2020-01-06", server=url)
        shown = run("pc", "cases", "outcome", CASE, "--appeal-open", server=url).stdout
        assert shown.strip() == f"{CASE}  outcome convicted, appeal open  review none: kept"
        assert "no appeal is open" not in run("pc", "cases", "outcome", CASE, "--appeal-closed", "--on", "2020-09-01",
                                              server=url).output
        assert run("auditor", "retention", "due", server=url).stdout.split()[:4] == [CASE, "convicted", "2020-09-01", two]
        flow(world, two, server=url)

        # Nothing of a disposed item is served: not its original, not its copies; the link says so.
        reviewer = requests.get(page, timeout=30).text
        assert reviewer.count("Disposed of at the end of its retention") == 2 and "/original" not in reviewer
        assert requests.get(f"{page}/items/{two}/original", timeout=30).status_code == 404
        item = requests.get(f"{url}/api/v1/items/{two}", headers=officer, timeout=30).json()
        assert item["state"] == "disposed" and item["derivatives"] == []
        assert item["hashes"]["sha256"] == hashlib.sha256(BYTES).hexdigest()
        assert requests.get(f"{url}/api/v1/items/{two}/derivatives/proxy", headers=officer, timeout=30).status_code == 404


@pytest.mark.parametrize(("args", "said"), [
    (("cases", "outcome", CASE), "give one of --nfa"),
    (("cases", "outcome", CASE, "--nfa", "--acquitted"), "give one of --nfa"),
    (("cases", "outcome", CASE, "--nfa", "--release", "2030-01-01"), "a release date goes with --convicted"),
    (("cases", "outcome", CASE, "--convicted", "2020-01-01", "--release", "2019-01-01"), "before the date of conviction"),
    (("cases", "outcome", CASE, "--nfa", "--on", "2999-01-01"), "is in the future"),
    (("cases", "outcome", CASE, "--appeal-closed"), "no appeal is open"),
    (("dispose", "0" * 32), "give --reason R to propose a disposal, or --approve"),
    (("dispose", "0" * 32, "--approve"), "item not found"),
])
def test_refusals_are_plain(world: World, args: tuple[str, ...], said: str) -> None:
    result = world.run("first", *args, code=3 if said == "item not found" else 2)
    assert said in " ".join(result.output.split())
    assert re.search(r"error:", result.output)


def test_a_token_is_needed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVIDENCE_TOKEN", raising=False)
    for args in (("cases", "outcome", CASE, "--nfa"), ("cases", "hold", CASE, "--reason", "r"), ("cases", "release", CASE),
                 ("retention", "due"), ("dispose", world.items[0], "--reason", "r"), ("dispose", world.items[0], "--approve"),
                 ("dispose", world.items[0], "--approve", "--server", "http://127.0.0.1:9")):
        refused = CliRunner().invoke(main, ["--data-dir", str(world.data), *args], catch_exceptions=False)
        assert (refused.exit_code, refused.stdout, refused.stderr) == (
            2, "", "error: give --token or set EVIDENCE_TOKEN: the custody record names who acts\n"), args
