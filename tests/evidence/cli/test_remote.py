"""The officer's commands through the API (evidence.cli.remote): a real ``evidence serve``,
and the real CLI on a laptop that has a different data dir, only ``--server`` and ``--token``.
What they print is what the API answers, every URL is the server's, and each refusal is a
plain message with an exit code. Last, the client's reading of refusals, as pure functions."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from evidence.cli.remote import message_of, refusal
from evidence.errors import EvidenceError, Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from tests.support.files import random_file
from tests.support.server import EVIDENCE, Server

# The laptop's own idea of a public URL: a URL built from the CLI's settings would show it.
LAPTOP_URL = "https://laptop.invalid"


class Laptop:
    """The CLI with its own (empty) data dir: it can reach the server only over HTTP."""

    def __init__(self, root: Path, server: Server, token: str) -> None:
        self.server = server
        self.token = token
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")},
            "EVIDENCE_DATA_DIR": str(root / "laptop"),
            "EVIDENCE_PUBLIC_URL": LAPTOP_URL,
            "XDG_STATE_HOME": str(root / "laptop-state"),
        }

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([EVIDENCE, *args], env={**self.env, **(env or {})}, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == code, f"{args} exited {result.returncode}:\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """A command with --server and --token."""
        return self.run(*args, "--server", self.server.url, "--token", self.token, code=code)

    def said(self, *args: str, code: int) -> str:
        """What a refused command told the officer, with rich's line wrapping undone."""
        return " ".join(self(*args, code=code).stderr.split())

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, f"{self.server.url}{path}", timeout=30,
                                  headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json()


@pytest.fixture
def laptop(make_server: Callable[..., Server], tmp_path: Path) -> Laptop:
    """A server with case OP-1 (its officer assigned), and the officer's laptop."""
    server = make_server()
    token = server.token()
    server.case("OP-1")
    return Laptop(tmp_path, server, token)


def upload(laptop: Laptop, tmp_path: Path, name: str, size: int, seed: int = 0) -> str:
    random_file(tmp_path / name, size, seed=seed)
    return laptop("upload", str(tmp_path / name), "--case", "OP-1").stdout.split()[0]


def test_items_list_and_show_print_what_the_api_answers(laptop: Laptop, tmp_path: Path) -> None:
    first = upload(laptop, tmp_path, "cam 1.mp4", 3000, seed=1)
    second = upload(laptop, tmp_path, "statement.pdf", 1234, seed=2)
    assert laptop("items", "list", "--case", "OP-1").stdout.splitlines() == [
        f"{first}  {'received':<11}  {3000:>14}  cam 1.mp4", f"{second}  {'received':<11}  {1234:>14}  statement.pdf"]

    shown = json.loads(laptop("items", "show", first, "--json").stdout)
    assert shown == laptop.api("GET", f"/api/v1/items/{first}")
    assert shown["url"].startswith(f"{laptop.server.url}/api/v1/items/")
    lines = laptop("items", "show", first).stdout.splitlines()
    assert f"id            {first}" in lines and "filename      cam 1.mp4" in lines
    # From the environment, as `evidence upload` takes them.
    by_env = laptop.run("items", "show", first, "--json",
                        env={"EVIDENCE_SERVER": laptop.server.url, "EVIDENCE_TOKEN": laptop.token})
    assert json.loads(by_env.stdout) == shown
    # Without --server the laptop has only its own, empty, data dir, whose server never issued the token.
    refused = laptop.run("items", "list", "--case", "OP-1", "--token", laptop.token, code=4).stderr
    assert "the token was refused: invalid token" in refused


def test_share_list_and_revoke_with_the_servers_urls(laptop: Laptop, tmp_path: Path) -> None:
    item = upload(laptop, tmp_path, "cam 1.mp4", 3000)
    made = laptop("share", "--case", "OP-1", "--to", "cps@cps.gov.uk", "--expires", "7d", "--download",
                  "--max-uses", "3")
    url = made.stdout.strip()
    assert made.stdout.count("\n") == 1 and made.stderr == ""
    assert url.startswith(f"{laptop.server.url}/s/")
    assert requests.get(url, timeout=30).status_code == 200

    with_code = laptop("share", "--case", "OP-1", "--item", item, "--to", "other@cps.gov.uk", "--expires", "90m",
                       "--passcode")
    said = " ".join(with_code.stderr.split())
    assert said.startswith("passcode (send it separately from the link): ") and len(said.rsplit(" ", 1)[1]) == 10
    assert with_code.stdout.startswith(f"{laptop.server.url}/s/")

    listed = json.loads(laptop("links", "list", "--case", "OP-1", "--json").stdout)
    assert listed == laptop.api("GET", "/api/v1/links", params={"case": "OP-1"})
    assert [(link["url"], link["to"], link["items"]) for link in listed] == [
        (url, "cps@cps.gov.uk", [item]), (with_code.stdout.strip(), "other@cps.gov.uk", [item])]
    assert all(link["revoked_at"] is None and link["expires_at"] for link in listed)
    lines = laptop("links", "list", "--case", "OP-1").stdout.splitlines()
    assert lines[0].split()[:4] == [listed[0]["id"], "live", "download", "1/3"]  # the GET above and lines[0].endswith("  1 item(s)")

    revoked = laptop("links", "revoke", listed[0]["id"]).stdout
    [after] = [link for link in laptop.api("GET", "/api/v1/links", params={"case": "OP-1"})
               if link["id"] == listed[0]["id"]]
    assert revoked == f"{listed[0]['id']} revoked at {after['revoked_at']}\n"
    assert requests.get(url, timeout=30).status_code == 410
    assert laptop("links", "list", "--case", "OP-1").stdout.splitlines()[0].startswith(f"{listed[0]['id']}  revoked ")


def test_refusals_are_plain_messages(laptop: Laptop, tmp_path: Path) -> None:
    server = laptop.server
    assert laptop.said("items", "show", "0" * 32, code=3) == "error: item not found"
    assert "OP-9 not found" in laptop.said("items", "list", "--case", "OP-9", code=3)
    assert "does not exist" in laptop.said("links", "revoke", "0" * 32, code=3)
    share = ("share", "--case", "OP-1", "--to", "cps@cps.gov.uk")
    assert "not items of case OP-1" in laptop.said(*share, "--expires", "7d", "--item", "0" * 32, code=3)
    assert "between one minute and 366 days" in laptop.said(*share, "--expires", "30s", code=2)
    assert "is not an email address" in laptop.said("share", "--case", "OP-1", "--to", "cps", "--expires", "7d", code=2)
    assert "give --token or set EVIDENCE_TOKEN" in " ".join(
        laptop.run("items", "list", "--case", "OP-1", "--server", server.url, code=2).stderr.split())

    for token, said in ((laptop.token[:-4] + "AAAA", "the server refused the token: invalid token"),
                        (server.token("cps@cps.gov.uk", "reviewer"), "this needs one of the roles")):
        refused = " ".join(laptop.run("links", "list", "--case", "OP-1", "--server", server.url, "--token", token,
                                      code=4).stderr.split())
        assert said in refused, refused

    server.stop()
    for args in (("items", "list", "--case", "OP-1"), (*share, "--expires", "7d"), ("links", "revoke", "0" * 32)):
        assert f"the server at {server.url} is not reachable" in laptop.said(*args, code=6)
    assert "is not a server address" in " ".join(laptop.run(
        "items", "list", "--case", "OP-1", "--server", "127.0.0.1:1", "--token", "t", code=2).stderr.split())


@pytest.mark.parametrize(("status", "body", "kind", "said"), [
    (401, {"error": "token expired"}, Unauthorized, "the server refused the token: token expired"),
    (403, {"error": "this needs one of the roles: officer"}, Forbidden, "this needs one of the roles: officer"),
    (404, {"error": "item not found"}, NotFound, "item not found"),
    (422, {"detail": [{"loc": ["body", "expires_in"], "msg": "Input should be less than 100"}]}, InvalidInput,
     "expires_in: Input should be less than 100"),
    (503, None, Unavailable, "<html> busy </html>"),
    (500, None, EvidenceError, "the server answered 500: <html> busy </html>"),
    (418, ["odd"], EvidenceError, "the server answered 418: <html> busy </html>"),
])
def test_a_refusal_is_the_error_it_means(status: int, body: Any, kind: type[EvidenceError], said: str) -> None:
    error = refusal(status, body, "<html>\n busy </html>")
    assert type(error) is kind and error.message == said


def test_message_of_reads_only_what_the_api_says() -> None:
    assert message_of({"error": "no"}) == "no"
    assert message_of({"detail": "Not Found"}) == "Not Found"
    assert message_of({"detail": [{"loc": ["query", "case"], "msg": "Field required"}, {"msg": "bad"}]}) == (
        "case: Field required; request: bad")
    assert message_of({"other": 1}) == message_of("text") == message_of(None) == ""
