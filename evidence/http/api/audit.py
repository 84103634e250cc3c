"""/api/v1/audit: the ledger's checkpoint, entries and proofs (auditors and admins)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from evidence.accounts import access
from evidence.custody import ledger
from evidence.custody.report import FORMATS, export
from evidence.errors import InvalidInput, NotFound
from evidence.http.deps import Db, role, runtime
from evidence.http.views import View
from evidence.models import CustodyEvent, Role, User
from evidence.runtime import Runtime

router = APIRouter(prefix="/api/v1/audit")
Auditor = Annotated[User, Depends(role(Role.AUDITOR, Role.ADMIN))]
Rt = Annotated[Runtime, Depends(runtime)]
# Sequence numbers and tree sizes are BIGINT: a larger query value would be a 500, not a 422.
SEQ_MAX = 2**63 - 1
Base64 = Annotated[str, Field(description="Standard base64")]


class CheckpointView(View):
    size: int = Field(description="Entries the checkpoint covers")
    root: Base64 = Field(description="The Merkle tree's root hash at that size (base64)")
    note: str = Field(description="The signed note: C2SP tlog-checkpoint")
    public_key: str = Field(description="The ledger's verifier key, signed-note form")


class EntryView(View):
    seq: int
    entry: dict[str, Any] = Field(description="The entry as recorded (its canonical JSON, parsed)")
    leaf_hash: str = Field(description="RFC 9162 leaf hash of the entry (hex)")


class InclusionProof(View):
    seq: int
    tree_size: int
    leaf_hash: Base64
    root: Base64
    proof: list[Base64]


class ConsistencyProof(View):
    model_config = ConfigDict(populate_by_name=True)

    first: int = Field(alias="from")
    second: int = Field(alias="to")
    root1: Base64
    root2: Base64
    proof: list[Base64]


class ReportEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    leaf_hash: str
    proof: list[Base64]


class CustodyReport(BaseModel):
    """The JSON form of a custody report (``format=json``): canonical JSON, signed over its
    content, checked offline by ``evidence audit verify-report``."""

    model_config = ConfigDict(extra="allow")

    format: str
    generated_at: str
    checkpoint: str
    tree_size: int
    root: Base64
    item: dict[str, Any]
    derivatives: list[dict[str, Any]]
    entries: list[ReportEntry]
    signature: str


class CaseDocument(BaseModel):
    """The CASE/UCO form (``format=case``): JSON-LD that ``case_validate`` accepts."""

    model_config = ConfigDict(extra="allow")

    context: dict[str, Any] = Field(alias="@context")
    graph: list[dict[str, Any]] = Field(alias="@graph", description="The report's nodes, sorted by their @id")


# The report's three forms, each in its own media type.
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as json, html or pdf (the same, signed, for people) or case (CASE/UCO JSON-LD)",
        "model": CustodyReport,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "application/ld+json": {"schema": CaseDocument.model_json_schema(by_alias=True)},
        },
    },
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/checkpoint", summary="The latest signed checkpoint (auditor, admin)")
def checkpoint(db: Db, _: Auditor, rt: Rt) -> CheckpointView:
    found = ledger.latest_checkpoint(db)
    if found is None:
        raise NotFound("no checkpoint has been signed yet")
    return CheckpointView(size=found.size, root=_b64(found.root), note=found.note,
                          public_key=rt.ledger_keys.signer.verifier_key())


@router.get("/entries", summary="Ledger entries, all or about one item (auditor, admin)")
def entries(
    db: Db, _: Auditor, item: str | None = None,
    after: Annotated[int, Query(ge=-1, le=SEQ_MAX)] = -1,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EntryView]:
    query = select(CustodyEvent).where(CustodyEvent.seq > after).order_by(CustodyEvent.seq).limit(limit)
    if item is not None:
        query = query.where(CustodyEvent.item_id == item)
    return [EntryView(seq=row.seq, entry=json.loads(row.body), leaf_hash=row.leaf_hash.hex()) for row in db.scalars(query)]


@router.get("/proof/inclusion", summary="Inclusion proof of entry `seq` in the tree of `size` (auditor, admin)")
def inclusion(
    seq: Annotated[int, Query(ge=0, le=SEQ_MAX)], db: Db, _: Auditor,
    size: Annotated[int | None, Query(ge=1, le=SEQ_MAX)] = None,
) -> InclusionProof:
    tree_size = size if size is not None else ledger.size(db)
    try:
        proof = ledger.inclusion_proof(db, seq, tree_size)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    row = db.get_one(CustodyEvent, seq)
    return InclusionProof(seq=seq, tree_size=tree_size, leaf_hash=_b64(row.leaf_hash),
                          root=_b64(ledger.root(db, tree_size)), proof=[_b64(p) for p in proof])


@router.get("/proof/consistency", summary="Consistency proof between two tree sizes (auditor, admin)")
def consistency(
    first: Annotated[int, Query(alias="from", ge=0, le=SEQ_MAX)], db: Db, _: Auditor,
    second: Annotated[int | None, Query(alias="to", ge=0, le=SEQ_MAX)] = None,
) -> ConsistencyProof:
    size2 = second if second is not None else ledger.size(db)
    try:
        proof = ledger.consistency_proof(db, first, size2)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    return ConsistencyProof(first=first, second=size2, root1=_b64(ledger.root(db, first)),
                            root2=_b64(ledger.root(db, size2)), proof=[_b64(p) for p in proof])


@router.get("/public-key", summary="The ledger's verifier key (auditor, admin)", response_class=PlainTextResponse,
            responses={200: {"description": "The verifier key, signed-note form, and a newline",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
def public_key(_: Auditor, rt: Rt) -> PlainTextResponse:
    return PlainTextResponse(rt.ledger_keys.signer.verifier_key() + "\n")


@router.get("/report/{item_id}", summary="An item's custody report: json, html, pdf or case (auditor, admin)",
            response_class=Response, responses=REPORT_RESPONSES)
def report(item_id: str, db: Db, user: Auditor, rt: Rt, format: str = "json") -> Response:
    data = export(db, rt.ledger_keys, item_id, format, access.actor_of(user))
    db.commit()
    return Response(data, media_type=FORMATS[format])
