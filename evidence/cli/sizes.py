"""Human sizes and durations on the command line: ``8M``, ``64MiB``, ``14d``.

The parsers are pure: a value, or ValueError saying what was expected. The click types
turn a ValueError into a usage error (exit 2, one line, no traceback)."""

from __future__ import annotations

import re
from datetime import timedelta

import click

from evidence.durations import parse_duration

_SIZE = re.compile(r"(?i)\s*(\d+)\s*([kmgt]?)(i?b)?\s*")

def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 8M, 64MiB, 1048576)")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number << (10 * " kmgt".index(unit or " "))  # binary multiples: 1024 per step


def human_size(count: int) -> str:
    """``31457280`` as ``30.0 MiB``: binary units, as the progress bar shows them."""
    if count < 1024:
        return f"{count} bytes"
    value, units = count / 1024, ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.1f} {units[0]}"


class SizeType(click.ParamType[int]):
    name = "size"

    def convert(self, value: str | int, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


class DurationType(click.ParamType[timedelta]):
    name = "duration"

    def convert(self, value: str | timedelta, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
