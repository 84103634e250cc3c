"""A real ``evidence serve`` process on an ephemeral port, and the CLI beside it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import requests

from evidence.runtime import Runtime
from tests.support.s3 import free_port

EVIDENCE = str(Path(sys.executable).with_name("evidence"))
# The admin :meth:`Server.case` acts as, and whose token reads items back.
ADMIN = "admin@force.police.uk"


class Server:
    def __init__(self, root: Path, env: dict[str, str] | None = None, port: int | None = None,
                 serve_args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.serve_args = serve_args  # e.g. ("--workers", "2")
        self.data_dir = root / "data"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"server-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")},
            "EVIDENCE_DATA_DIR": str(self.data_dir),
            "EVIDENCE_PORT": str(self.port),
            "EVIDENCE_PUBLIC_URL": self.url,
            "XDG_STATE_HOME": str(root / "client-state"),
            # Most tests exercise the API alone; pipeline tests turn the worker on.
            "EVIDENCE_EMBEDDED_WORKER": "false",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Server:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([EVIDENCE, "serve", *self.serve_args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flushing, like a power cut to the process."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # -- the CLI against the same data dir ----------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 600, token: str | None = None,
            **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
        """``evidence ARGS...`` on this server's data dir; ``token``: the person who acts (``--token``)."""
        given = ["--token", token] if token else []
        result = subprocess.run([EVIDENCE, *args, *given], env=self.env, capture_output=True, text=True, timeout=timeout,
                                **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"evidence {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    # -- set-up without a process each: what `evidence users add` and `cases create` do ----
    # (tests/evidence/cli and tests/evidence/accounts run those commands themselves). A CLI
    # process costs most of a second to start; a test's accounts and cases are its set-up.

    def runtime(self) -> Runtime:
        """The runtime the CLI would build from this server's environment (close it after)."""
        from evidence import migrate
        from evidence.settings import Settings

        with mock.patch.dict(os.environ, self.env, clear=True):  # the environment the CLI would see
            settings = Settings()
        rt = Runtime.build(settings)
        try:
            migrate.upgrade(rt.db.engine)
        except BaseException:
            rt.close()
            raise
        return rt

    def token(self, email: str = "officer@force.police.uk", role: str = "officer") -> str:
        """A bearer token for ``email`` (added as ``role`` if new), as `evidence users add` gives."""
        from evidence.accounts import users

        rt = self.runtime()
        try:
            with rt.db.transaction() as session:
                return rt.signer.issue(users.add_user(session, email, role))
        finally:
            rt.close()

    def settled_item(self, item_id: str, timeout: float = 90) -> dict[str, Any]:
        """``evidence items show --json`` once the item is ready, failed or quarantined (its
        state is polled from the database meanwhile, not with a CLI process each time)."""
        from evidence.models import Item

        settled = ("ready", "failed", "quarantined")
        deadline = time.monotonic() + timeout
        rt = self.runtime()
        try:
            while True:
                with rt.db.sessions() as session:
                    found = session.get(Item, item_id)
                    state = None if found is None else str(found.state)
                if state in settled:
                    break
                assert time.monotonic() < deadline, f"item {item_id} still {state} after {timeout} s"
                time.sleep(0.2)
        finally:
            rt.close()
        shown = self.cli("items", "show", item_id, "--json", token=self.token(ADMIN, "admin"))
        item: dict[str, Any] = json.loads(shown.stdout)
        assert item["state"] in settled, item
        return item

    def case(self, ref: str = "OP-TEST", officer: str | None = "officer@force.police.uk") -> str:
        """A case, with ``officer`` (the default account of :meth:`token`) assigned to it, as
        an admin's `evidence cases create REF --assign OFFICER --token ADMIN_TOKEN` makes it."""
        from evidence import cases
        from evidence.accounts import access, users

        rt = self.runtime()
        try:
            with rt.db.transaction() as session:
                actor = access.actor_of(users.add_user(session, ADMIN, "admin"))
                case = cases.create_case(session, ref, None, actor)
                if officer:
                    cases.assign(session, case, cases.officer_account(session, officer), actor)
        finally:
            rt.close()
        return ref


def sign_in(server: Server, token: str) -> requests.Session:
    """A browser session on the pages, signed in with ``token`` through the login form (its CSRF field included)."""
    browser = requests.Session()
    form = browser.get(f"{server.url}/app/login", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    answer = browser.post(f"{server.url}/app/login", data={"token": token, "csrf": csrf.group(1), "next": "/app/"},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    return browser
