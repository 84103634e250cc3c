"""What an officer watches while ``evidence upload`` runs, and what they are told when it stops.

Each file gets its own bar, ended before the file's result line is printed: the bar's last
picture (100%) stays on the terminal, and the result (on stdout) starts on a line of its own
instead of landing on the bar's. While the server is away the bar says so, counts the
attempts and counts down to the next, rather than standing still.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from evidence.cli.sizes import human_size


class _UnlessWaiting(ProgressColumn):
    """A rate or a time left is meaningless while the server is away: blank until it is back."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return Text("") if task.fields.get("note") else self.column.render(task)


def file_bar(console: Console) -> Progress:
    """A bar for one file. Not transient: its final state (100%, or where it stopped) stays."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        _UnlessWaiting(TransferSpeedColumn()),
        _UnlessWaiting(TimeRemainingColumn()),
        TextColumn("[yellow]{task.fields[note]}"),
        console=console,
        transient=False,
    )


class Row:
    """One line of a file's bar: hashing, then sending."""

    def __init__(self, progress: Progress, description: str, total: int, completed: int = 0) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task(description, total=total, completed=completed, note="")

    def at(self, completed: int) -> None:
        self.progress.update(self.task, completed=completed)

    def advance(self, amount: int) -> None:
        self.progress.advance(self.task, amount)

    def note(self, text: str) -> None:
        self.progress.update(self.task, note=text)

    def remove(self) -> None:
        self.progress.remove_task(self.task)


def wait_visibly(row: Row | None, console: Console, reason: str, attempts: int, seconds: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``seconds`` before the next attempt, saying why on the bar (a terminal) or in a
    line (a log, where the bar is not drawn)."""
    said = f"{reason}; {attempts} attempt{'s' if attempts != 1 else ''} so far"
    if row is None or not console.is_terminal:
        console.print(f"[yellow]{said}; trying again in {math.ceil(seconds)}s[/]", highlight=False)
    left = seconds
    while left > 0:
        if row is not None:
            row.note(f"waiting: {said}, next in {math.ceil(left)}s")
        step = min(1.0, left)
        sleep(step)
        left -= step
    if row is not None:
        row.note(f"waiting: {said}, trying now")


@dataclass
class Position:
    """How far the file being sent has got: what the server acknowledged, of its size."""

    path: Path
    size: int
    acknowledged: int
    url: str | None = None


def interrupted(position: Position | None, finished: int) -> str:
    """The Ctrl-C message: what reached the server, and that running again resumes. A chunk
    still on its way (in a proxy's buffer) may land later: the server then holds more, and
    the resume starts from there."""
    before = f"{finished} file(s) finished before that; " if finished else ""
    if position is None:
        return f"interrupted; {before}run the same command again to go on"
    if position.url is None:
        return (f"interrupted before {position.path.name} was sent; {before}"
                "run the same command again to go on")
    offset = position.acknowledged
    share = 100 * offset // position.size if position.size else 100
    return (f"interrupted: the server has acknowledged {human_size(offset)} of {human_size(position.size)} ({share}%, "
            f"offset {offset} of {position.size} bytes) of {position.path}; {before}"
            "run the same command again to resume from there")
