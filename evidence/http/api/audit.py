"""/api/v1/audit: the ledger's checkpoint, entries and proofs (auditors and admins)."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.custody import ledger
from evidence.errors import InvalidInput, NotFound
from evidence.http.deps import role, session
from evidence.models import CustodyEvent, User

router = APIRouter(prefix="/api/v1/audit")
AUDIT = ("auditor", "admin")
# Sequence numbers and tree sizes are BIGINT: a larger query value would be a 500, not a 422.
SEQ_MAX = 2**63 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/checkpoint", summary="The latest signed checkpoint (auditor, admin)")
def checkpoint(request: Request, db: Session = Depends(session), _: User = Depends(role(*AUDIT))) -> dict[str, Any]:
    found = ledger.latest_checkpoint(db)
    if found is None:
        raise NotFound("no checkpoint has been signed yet")
    keys = request.app.state.runtime.ledger_keys
    return {"size": found.size, "root": _b64(found.root), "note": found.note, "public_key": keys.signer.verifier_key()}


@router.get("/entries", summary="Ledger entries, all or about one item (auditor, admin)")
def entries(
    item: str | None = None,
    after: int = Query(default=-1, ge=-1, le=SEQ_MAX),
    limit: int = Query(default=500, ge=1, le=5000),
    db: Session = Depends(session),
    _: User = Depends(role(*AUDIT)),
) -> list[dict[str, Any]]:
    query = select(CustodyEvent).where(CustodyEvent.seq > after).order_by(CustodyEvent.seq).limit(limit)
    if item is not None:
        query = query.where(CustodyEvent.item_id == item)
    return [
        {"seq": row.seq, "entry": json.loads(row.body), "leaf_hash": row.leaf_hash.hex()} for row in db.scalars(query)
    ]


@router.get("/proof/inclusion", summary="Inclusion proof of entry `seq` in the tree of `size` (auditor, admin)")
def inclusion(
    seq: int = Query(ge=0, le=SEQ_MAX), size: int | None = Query(default=None, ge=1, le=SEQ_MAX),
    db: Session = Depends(session), _: User = Depends(role(*AUDIT)),
) -> dict[str, Any]:
    tree_size = size if size is not None else ledger.size(db)
    try:
        proof = ledger.inclusion_proof(db, seq, tree_size)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    row = db.get_one(CustodyEvent, seq)
    return {
        "seq": seq, "tree_size": tree_size, "leaf_hash": _b64(row.leaf_hash),
        "root": _b64(ledger.root(db, tree_size)), "proof": [_b64(p) for p in proof],
    }


@router.get("/proof/consistency", summary="Consistency proof between two tree sizes (auditor, admin)")
def consistency(
    first: int = Query(alias="from", ge=0, le=SEQ_MAX), second: int | None = Query(default=None, alias="to", ge=0, le=SEQ_MAX),
    db: Session = Depends(session), _: User = Depends(role(*AUDIT)),
) -> dict[str, Any]:
    size2 = second if second is not None else ledger.size(db)
    try:
        proof = ledger.consistency_proof(db, first, size2)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    return {
        "from": first, "to": size2, "root1": _b64(ledger.root(db, first)), "root2": _b64(ledger.root(db, size2)),
        "proof": [_b64(p) for p in proof],
    }


@router.get("/public-key", summary="The ledger's verifier key (auditor, admin)", response_class=PlainTextResponse)
def public_key(request: Request, _: User = Depends(role(*AUDIT))) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.runtime.ledger_keys.signer.verifier_key() + "\n")


@router.get("/report/{item_id}", summary="An item's custody report: json, html or case (auditor, admin)")
def report(
    item_id: str, request: Request, format: str = "json",
    db: Session = Depends(session), user: User = Depends(role(*AUDIT)),
) -> Response:
    from evidence.accounts import access
    from evidence.custody.report import FORMATS, export

    data = export(db, request.app.state.runtime.ledger_keys, item_id, format, access.actor_of(user))
    db.commit()
    return Response(data, media_type=FORMATS[format])
