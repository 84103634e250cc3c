""""Did you mean ...?" for a case reference typed wrong: ``OP-HALFRD`` for ``OP-HALFORD``.

Only the references the caller may see are offered (an officer's own cases, through the API),
so a suggestion never tells anyone of a case they could not open anyway.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from evidence.errors import EvidenceError, NotFound


def close_to(ref: str, known: Iterable[str]) -> list[str]:
    """The known references nearest ``ref``, best first; letter case does not count."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    if ref.casefold() in by_folded:
        return []  # it exists: whatever was not found, it was not a typo in the reference
    # 0.8: one slip in a reference of five or more characters (OP-HALFRD for OP-HALFORD), not
    # any other short reference (OP-9 is not a typo of OP-1).
    found = difflib.get_close_matches(ref.casefold().strip(), list(by_folded), n=3, cutoff=0.8)
    return [by_folded[folded] for folded in found]


def sentence(matches: list[str]) -> str:
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else ", ".join(matches[:-1]) + " or " + matches[-1]
    return f"Did you mean {listed}?"


def suggesting(error: NotFound, ref: str, known: Callable[[], Iterable[str]]) -> NotFound:
    """``error`` with a suggestion added, when ``known()`` holds one close to ``ref``; if the
    references cannot be fetched, the error as it was."""
    try:
        matches = close_to(ref, known())
    except EvidenceError:
        return error
    if not matches:
        return error
    return NotFound(f"{error.message.rstrip('.')}. {sentence(matches)}")
