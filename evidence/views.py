"""The JSON shapes users see, shared by the API and the CLI's ``--json``."""

from __future__ import annotations

from typing import Any

from evidence.models import Case, Item


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "ref": case.ref,
        "title": case.title,
        "created_by": case.created_by,
        "created_at": case.created_at.isoformat(),
    }


def item_json(item: Item, case_ref: str, base_url: str) -> dict[str, Any]:
    hashes = dict(item.hashes or {})
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
        "derivatives": [],
        "created_at": item.created_at.isoformat(),
        "url": f"{base_url}/api/v1/items/{item.id}",
    }
