"""Long-running processes for the topology tests, each in a process group of its own (so a
signal reaches it and everything it started, such as a Celery worker's pool or ffmpeg) and
each logging to a file that outlives the run (a CI failure can be read from the artifacts)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class Service:
    """One process (and its children), started, signalled and stopped by the tests."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 user: str | None = None, stop_signal: signal.Signals = signal.SIGTERM, url: str = "") -> None:
        self.name = name
        self.url = url  # where it answers HTTP, if it does
        self.argv = argv
        self.log = log
        self.env = env
        self.user = user
        self.stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where this run's output begins in the log

    def start(self, ready: Callable[[], bool] | None = None, timeout: float = 60) -> Service:
        """Starts it; with ``ready``, waits until that returns true (failing if it exits first)."""
        assert not self.running, f"{self.name} is already running"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._log_start = log.tell()
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, user=self.user)
        if ready is not None:
            self.wait_for(ready, timeout)
        return self

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None, f"{self.name} is not running"
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass  # the whole group has already gone

    def kill(self) -> None:
        """SIGKILL to the process and everything it started: a machine losing power."""
        self.signal_group(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(30)
        self._note("killed")
        self.process = None

    def stop(self, timeout: float = 20) -> None:
        """Its own clean shutdown, or SIGKILL once ``timeout`` has passed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.signal_group(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(30)
        # Anything the leader left behind in its group (a pool child, an encoder) goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._note(f"stopped ({self.process.returncode})")
        self.process = None

    def output(self) -> str:
        """What the current (or last) run has logged."""
        with open(self.log, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def tail(self, size: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return "(no log)"

    def _note(self, what: str) -> None:
        with open(self.log, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} {what}\n".encode())
