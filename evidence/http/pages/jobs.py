"""Ledger verification as a background job, so the page answers at once and shows progress
(a million entries take seconds). One check runs at a time per API process: asking again
while one runs joins it, so a page cannot be used to load the database. Finished jobs are
kept briefly for their pages to read.

Jobs live in the process that started them. Behind a load balancer with several API
processes, the status requests must reach the same one (sticky sessions), or a job id is
not found and the page says so."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from evidence.custody import verify as ledger_check
from evidence.runtime import Runtime

KEEP = 20


@dataclass
class Job:
    id: str
    started: float = field(default_factory=time.monotonic)
    checked: int = 0
    total: int = 0
    done: bool = False
    message: str = ""
    ok: bool | None = None

    def view(self) -> dict[str, object]:
        return {"job": self.id, "state": "done" if self.done else "running", "checked": self.checked,
                "total": self.total, "message": self.message or self.running_text(), "ok": self.ok}

    def running_text(self) -> str:
        return f"Verifying: {self.checked} of {self.total} entries" if self.total else "Verifying the ledger"


class VerifyJobs:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self) -> Job:
        with self._lock:
            for job in self._jobs.values():
                if not job.done:
                    return job
            job = Job(secrets.token_urlsafe(12))
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(job,), name=f"verify-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job) -> None:
        keys = self.rt.ledger_keys

        def progress(checked: int, total: int) -> None:
            job.checked, job.total = checked, total

        try:
            with self.rt.db.sessions() as session:
                result = ledger_check.verify(session, keys.verifier, keys.origin, progress)
        except Exception as error:  # the page must say something, never spin for ever
            job.ok, job.message = False, f"Ledger could not be checked: {type(error).__name__}"
        else:
            job.checked = job.total = result.entries
            job.ok = result.ok
            if result.ok:
                job.message = f"Ledger verified: {result.entries} entries"
            elif result.seq is not None:
                job.message = f"Ledger broken at entry {result.seq}: {result.problem}"
            else:
                job.message = f"Ledger broken: {result.problem}"
        job.done = True
