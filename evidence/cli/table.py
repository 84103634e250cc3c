"""Every list the command line prints (items, links, unfinished uploads): one look.

Rows are columns separated by two spaces, each column as wide as its widest value (at
least its ``width``). On a terminal a header row names the columns first; piped into another
program (``| cut``, ``| grep``, a script) the rows come alone, as they always have, so
nothing that reads them breaks (the GitHub CLI makes the same choice). ``--json`` output does
not come through here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import click

GAP = "  "


@dataclass(frozen=True)
class Column:
    header: str
    width: int = 0  # at least this wide, so rows line up the same from one run to the next
    right: bool = False  # numbers line up on their last digit


def render(columns: Sequence[Column], rows: Iterable[Sequence[object]], header: bool) -> list[str]:
    """The lines of the table: pure, so the layout is tested without a terminal."""
    cells = [[str(value) for value in row] for row in rows]
    for row in cells:
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} values for {len(columns)} columns")
    shown = ([[column.header for column in columns]] if header else []) + cells
    widths = [max([column.width, *(len(row[i]) for row in shown)]) for i, column in enumerate(columns)]
    lines = []
    for row in shown:
        padded = [value.rjust(width) if column.right else value.ljust(width)
                  for value, width, column in zip(row, widths, columns, strict=True)]
        padded[-1] = row[-1] if not columns[-1].right else padded[-1]  # no trailing spaces
        lines.append(GAP.join(padded))
    return lines


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[object]], out: TextIO | None = None) -> None:
    """The table on stdout, with its header row when a person is reading it."""
    stream = out or sys.stdout
    for line in render(columns, rows, header=stream.isatty()):
        click.echo(line, file=stream)
