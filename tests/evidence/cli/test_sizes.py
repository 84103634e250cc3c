"""Sizes and durations on the command line (evidence.cli.sizes), by example; their
properties against a naive reference are in tests/fuzz/test_cli_sizes.py."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest

from evidence.cli.sizes import DurationType, SizeType, parse_duration, parse_size


@pytest.mark.parametrize(("text", "size"), [
    ("0", 0), ("1048576", 1048576), ("8M", 8 * 1024**2), ("64MiB", 64 * 1024**2), ("64mb", 64 * 1024**2),
    ("1k", 1024), (" 2 G ", 2 * 1024**3), ("1TiB", 1024**4), ("3b", 3), ("3ib", 3),
])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5M", "-1", "1P", "1MiBs", "one", "1 M B"])
def test_not_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(("text", "lifetime"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
    (" 14d ", timedelta(days=14)), ("0s", timedelta(0)),
])
def test_durations(text: str, lifetime: timedelta) -> None:
    assert parse_duration(text) == lifetime


@pytest.mark.parametrize("text", ["", "14", "d", "14D", "1w", "1.5h", "-1d", "14 days"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_the_click_types() -> None:
    assert SizeType().convert("8MiB", None, None) == 8 * 1024**2
    assert SizeType().convert(4096, None, None) == 4096  # a default already converted
    assert DurationType().convert("14d", None, None) == timedelta(days=14)
    assert DurationType().convert(timedelta(hours=1), None, None) == timedelta(hours=1)
    with pytest.raises(click.BadParameter, match="is not a size"):
        SizeType().convert("big", None, None)
    with pytest.raises(click.BadParameter, match="is not a duration"):
        DurationType().convert("soon", None, None)
    with pytest.raises(click.BadParameter, match="is far too long"):
        DurationType().convert("99999999999999999999s", None, None)
