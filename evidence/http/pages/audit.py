"""The auditor's page: the latest signed checkpoint and the verifier key, ledger
verification as a background job with its result in a status region, and finding an
item's custody timeline by its id (auditors and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from evidence.custody import ledger
from evidence.errors import NotFound
from evidence.http.deps import Db, runtime
from evidence.http.pages.jobs import VerifyJobs
from evidence.http.pages.render import page
from evidence.http.pages.session import Page, Script, check_csrf, require
from evidence.models import Item, Role

router = APIRouter(include_in_schema=False)
AUDITORS = (Role.AUDITOR, Role.ADMIN)


def _jobs(request: Request) -> VerifyJobs:
    jobs: VerifyJobs = request.app.state.verify_jobs
    return jobs


@router.get("/app/audit")
def audit_page(request: Request, db: Db, signed: Page, job: str = "", item: str = "") -> Response:
    require(signed, *AUDITORS)
    rt = runtime(request)
    found = _jobs(request).get(job[:64]) if job else None
    missing = ""
    if item:
        if db.get(Item, item.strip()[:64]) is not None:
            return RedirectResponse(f"/app/items/{item.strip()[:64]}", status_code=303)
        missing = f"No item has the id {item.strip()[:64]!r}."
    return page("audit.html", signed=signed, checkpoint=ledger.latest_checkpoint(db),
                public_key=rt.ledger_keys.signer.verifier_key(), job=found, unknown_job=bool(job) and found is None,
                item_query=item[:64], missing=missing)


@router.post("/app/audit/verify")
def start_verify(request: Request, signed: Page, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, signed, csrf)
    require(signed, *AUDITORS)
    job = _jobs(request).start()
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"job": job.id, "status_url": f"/app/audit/jobs/{job.id}"}, status_code=202)
    return RedirectResponse(f"/app/audit?job={job.id}", status_code=303)


@router.get("/app/audit/jobs/{job_id}")
def job_status(request: Request, job_id: str, signed: Script) -> JSONResponse:
    require(signed, *AUDITORS)
    job = _jobs(request).get(job_id[:64])
    if job is None:
        raise NotFound("no such verification (it ran on another server, or long ago): start it again")
    return JSONResponse(job.view())
