"""Durations as people write them: ``90s``, ``30m``, ``12h``, ``14d`` (the CLI's ``--expires``
and the share form's **Expires in**). Pure: a value, or ValueError saying what was expected."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration (examples: 90s, 30m, 12h, 14d)")
    try:
        return timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])
    except OverflowError:  # past what a date can hold
        raise ValueError(f"{text[:40]!r} is far too long") from None
