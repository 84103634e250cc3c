"""An item's CPU-time budget and address-space limit, and the account of what it has used.

The budget belongs to the item, not to a step or an attempt: every child that decodes it (the
probe, validation, the proxy, stills, HLS) is charged, across retries and restarts, and each
child may use only what is left. So a small file that decodes slowly, or a poison file retried
after a crash, cannot make hours of work.
"""

from __future__ import annotations

from sqlalchemy import update

from evidence.models import Item
from evidence.runtime import Runtime
from transcode.errors import MediaFailure
from transcode.limits import Limits, budget_seconds


def item_budget(rt: Runtime, item: Item) -> float:
    media = item.media or {}
    return budget_seconds(
        base=rt.settings.cpu_budget_base_seconds,
        per_media_second=rt.settings.cpu_budget_per_media_second,
        duration=media.get("duration"),
        width=media.get("width"),
        height=media.get("height"),
        size=item.size,
    )


def limits_for(rt: Runtime, item_id: str) -> Limits:
    """The bounds for the item's next child; MediaFailure when its budget is spent."""
    with rt.db.sessions() as session:
        item = session.get_one(Item, item_id)
        total = item_budget(rt, item)
        left = total - item.cpu_seconds
    if left <= 0:
        raise MediaFailure(f"stopped: used its CPU-time budget of {total:.0f} s")
    return Limits(memory_bytes=rt.settings.decoder_memory_bytes, cpu_seconds=left, budget_seconds=total)


def charge(rt: Runtime, item_id: str, seconds: float) -> None:
    """Add the CPU seconds a child used to the item's account."""
    if seconds <= 0:
        return
    with rt.db.transaction() as session:
        session.execute(update(Item).where(Item.id == item_id).values(cpu_seconds=Item.cpu_seconds + seconds))
