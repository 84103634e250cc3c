"""What Ctrl-C says (evidence.cli.progress.interrupted); the bars themselves are tested on a
real terminal in test_cli_polish.py."""

from __future__ import annotations

from pathlib import Path

from evidence.cli.progress import Position, interrupted
from evidence.cli.sizes import human_size


def test_what_the_server_acknowledged_of_the_file_in_hand() -> None:
    at = Position(Path("/exports/phone.zip"), 8 * 1024 * 1024, 2 * 1024 * 1024, "http://server/files/1")
    assert interrupted(at, 0) == (
        "interrupted: the server has acknowledged 2.0 MiB of 8.0 MiB (25%, offset 2097152 of 8388608 bytes) of "
        "/exports/phone.zip; run the same command again to resume from there")
    assert "; 2 file(s) finished before that; run the same command again" in interrupted(at, 2)


def test_before_anything_of_the_file_was_sent() -> None:
    hashing = Position(Path("/exports/cctv.mp4"), 10, 0)
    assert interrupted(hashing, 1) == ("interrupted before cctv.mp4 was sent; 1 file(s) finished before that; "
                                       "run the same command again to go on")
    assert interrupted(None, 0) == "interrupted; run the same command again to go on"


def test_sizes_in_the_units_of_the_bar() -> None:
    assert [human_size(n) for n in (5, 1024, 31457280, 5 * 2**40)] == ["5 bytes", "1.0 KiB", "30.0 MiB", "5.0 TiB"]
