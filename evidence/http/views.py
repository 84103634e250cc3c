"""The JSON shapes users see, shared by the API and the CLI's ``--json``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.models import Case, Derivative, Item


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "ref": case.ref,
        "title": case.title,
        "created_by": case.created_by,
        "created_at": case.created_at.isoformat(),
    }


def item_json(item: Item, case_ref: str, base_url: str, derivatives: Sequence[Derivative] = ()) -> dict[str, Any]:
    hashes = dict(item.hashes or {})
    item_url = f"{base_url}/api/v1/items/{item.id}"
    return {
        "id": item.id,
        "case": case_ref,
        "filename": item.filename,
        "size": item.size,
        "state": item.state,
        "reason": item.reason,
        "hashes": hashes,
        "client_sha256": item.client_sha256,
        "exhibit": item.exhibit,
        "description": item.description,
        "filetype": item.filetype,
        "warnings": list(item.warnings or []),
        "progress": item.progress,
        "kind": item.kind,
        "media": dict(item.media or {}),
        "derivatives": [
            {
                "kind": d.kind,
                "sha256": d.sha256,
                "size": d.size,
                "content_type": d.content_type,
                "url": f"{item_url}/derivatives/{d.kind}",
                "method": d.method,
            }
            for d in sorted(derivatives, key=lambda d: d.kind)
        ],
        "created_at": item.created_at.isoformat(),
        "url": item_url,
    }


def items_view(session: Session, items: Sequence[Item], base_url: str) -> list[dict[str, Any]]:
    """The JSON of several items, with their case references and derivatives (three queries)."""
    ids = [item.id for item in items]
    refs = dict(session.execute(select(Case.id, Case.ref).where(Case.id.in_({i.case_id for i in items}))).all())
    made: dict[str, list[Derivative]] = defaultdict(list)
    for derivative in session.scalars(select(Derivative).where(Derivative.item_id.in_(ids))):
        made[derivative.item_id].append(derivative)
    return [item_json(item, refs[item.case_id], base_url, made[item.id]) for item in items]
