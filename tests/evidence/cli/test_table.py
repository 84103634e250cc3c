"""The one table layout every CLI list uses (evidence.cli.table)."""

from __future__ import annotations

import pytest

from evidence.cli.table import Column, render

COLUMNS = (Column("ID"), Column("STATE", width=7), Column("SIZE", right=True), Column("FILENAME"))
ROWS = [("a1", "ready", 1234, "cam 1.mp4"), ("b22", "failed", 5, "x")]


def test_a_header_row_then_aligned_columns() -> None:
    assert render(COLUMNS, ROWS, header=True) == [
        "ID   STATE    SIZE  FILENAME",
        "a1   ready    1234  cam 1.mp4",
        "b22  failed      5  x",
    ]


def test_without_the_header_the_rows_alone_and_no_trailing_spaces() -> None:
    assert render(COLUMNS, ROWS, header=False) == ["a1   ready    1234  cam 1.mp4", "b22  failed      5  x"]
    assert render(COLUMNS, [], header=True) == ["ID  STATE    SIZE  FILENAME"]


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="3 values for 4 columns"):
        render(COLUMNS, [("a", "b", "c")], header=False)
