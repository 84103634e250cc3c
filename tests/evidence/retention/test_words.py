"""The continuity statement's words for retention entries (evidence.custody.statement), in the
cases the end-to-end tests do not reach: an outcome that keeps the material, a disposal whose
original the storage still keeps, and free text with a server detail in it."""

from __future__ import annotations

from typing import Any

import pytest

from evidence.custody import statement


def _entry(action: str, details: dict[str, Any], actor: str = "user:admin@force.police.uk") -> dict[str, Any]:
    return {"seq": 7, "time": "2026-11-30T10:00:01.5Z", "action": action, "actor": actor,
            "subject": {"case": "OP-1", "item": "i1"}, "details": details}


@pytest.mark.parametrize(("action", "details", "event", "outcome"), [
    ("case.outcome", {"event": "charged", "on": "2026-01-05", "review_on": None},
     "Case outcome recorded by admin@force.police.uk: charged on 2026-01-05", "Kept: no review date"),
    ("case.outcome", {"event": "convicted", "on": "2026-01-05", "release_on": "2027-01-01", "review_on": "2027-01-01"},
     "Case outcome recorded by admin@force.police.uk: convicted on 2026-01-05, release 2027-01-01",
     "Review date 2027-01-01"),
    ("case.outcome", {"event": "appeal-open", "on": "2026-02-01", "review_on": None},
     "Case outcome recorded by admin@force.police.uk: appeal opened on 2026-02-01", "Kept: no review date"),
    ("case.held", {"reason": "see /srv/evidence/notes.txt"},
     "Legal hold placed on case OP-1 by admin@force.police.uk: see (server detail)", "Disposal blocked"),
    ("item.disposed", {"reason": "over", "proposed_by": "user:first@force.police.uk", "size": 1234, "sha256": "ab" * 32,
                       "working_copies": [{"kind": "proxy"}], "original_removed": False,
                       "original_kept_until": "2033-11-30T10:00:00+00:00"},
     f"Disposal approved by admin@force.police.uk, proposed by first@force.police.uk (over): original of 1,234 bytes, "
     f"SHA-256 {'ab' * 32}; 1 working copy removed", "Original still stored until 2033-11-30; not served"),
    ("item.disposed", {"reason": "over", "proposed_by": "user:first@force.police.uk", "approved_by":
                       "user:second@force.police.uk", "size": 5, "sha256": "cd" * 32, "working_copies": [],
                       "original_removed": True, "completes": "the original the storage kept at the disposal"},
     f"Original removed by admin@force.police.uk, completing the disposal approved by second@force.police.uk, proposed "
     f"by first@force.police.uk (over): original of 5 bytes, SHA-256 {'cd' * 32}", "Original removed"),
])
def test_retention_entries_in_words(action: str, details: dict[str, Any], event: str, outcome: str) -> None:
    line = statement.line(_entry(action, details))
    assert (line.event, line.outcome) == (event, outcome)
