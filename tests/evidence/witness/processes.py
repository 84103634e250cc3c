"""Witnesses as another force runs them: ``evidence witness keygen`` and ``evidence witness
serve`` in their own processes, on free ports, over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.support.s3 import free_port
from tests.support.server import EVIDENCE


def keygen(name: str, out: Path) -> str:
    """Its verifier key, as the command prints it."""
    done = subprocess.run([EVIDENCE, "witness", "keygen", name, "--out", str(out)], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


class WitnessProcess:
    def __init__(self, root: Path, name: str, logs: list[str]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.key_file = root / "witness.key"
        self.vkey = keygen(name, self.key_file)
        self.state = root / "state"
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> WitnessProcess:
        args = [EVIDENCE, "witness", "serve", "--key", str(self.key_file), "--port", str(self.port),
                "--state", str(self.state)]
        for spec in self.logs:
            args += ["--log", spec]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
        with open(self.root / "witness.log", "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"witness exited: {(self.root / 'witness.log').read_text()[-2000:]}")
            try:
                requests.post(f"{self.url}/add-checkpoint", data=b"", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the witness did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def add_checkpoint(self, body: bytes) -> requests.Response:
        return requests.post(f"{self.url}/add-checkpoint", data=body, timeout=10)
