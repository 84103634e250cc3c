"""The scheduled fixity audit: a periodic Celery task (beat sends it every
``fixity_interval_seconds``; in the embedded mode the worker that `evidence serve` starts runs
beat itself).

Each run checks what is due (evidence.fixity), paced to ``fixity_bytes_per_second``, and takes
no new object after ``fixity_run_seconds``: a worker that also processes uploads (the embedded
one) is back to them soon, and what is left stays due for the next run. The service account
acts, as for the operator's ``evidence audit fixity``; a run that found nothing due is not
recorded. Acknowledged on receipt, not on completion: a run lost with its worker is not run
again, the next one takes up what it left (a redelivered copy of a long run would only read
the same objects twice).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from evidence import fixity
from transcode.app import FIXITY_TASK, EvidenceCelery

log = logging.getLogger(__name__)


@shared_task(name=FIXITY_TASK, bind=True, acks_late=False, ignore_result=True)
def fixity_audit(self: Task[[], None]) -> None:
    app = self.app
    if not isinstance(app, EvidenceCelery):
        raise TypeError(f"{self.name} is bound to a Celery app without the evidence settings: use make_celery()")
    rt = app.runtime()
    options = fixity.Options(scope=fixity.DUE, time_budget=rt.settings.fixity_run_seconds, trigger=fixity.SCHEDULE,
                             record_empty=False)
    outcome = fixity.audit(rt, options)
    for finding in outcome.findings:
        log.error("fixity audit: item %s (case %s): %s", finding.item_id, finding.case_ref, finding.problem.describe())
    log.info("fixity audit %s: %d object(s), %d byte(s) in %.1f s, %d finding(s), %s still due", outcome.run,
             outcome.objects, outcome.bytes, outcome.seconds, len(outcome.findings), outcome.left_due)
