"""Human sizes and durations on the command line: ``8M``, ``64MiB``, ``14d``."""

from __future__ import annotations

import re
from datetime import timedelta

import click

_SIZE = re.compile(r"(?i)\s*(\d+)\s*([kmgt]?)(i?b)?\s*")
_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 8M, 64MiB, 1048576)")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * 1024 ** " kmgt".index(unit or " ")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 30m, 12h, 14d)")
    return timedelta(seconds=int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)])


class SizeType(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
