"""Properties of the command line's sizes and durations (evidence.cli.sizes), as used by
``evidence upload --chunk-size 8MiB`` and ``evidence share --expires 14d``.

The parsers return a value or raise ValueError, which the click types turn into a usage
error (exit 2, one line, no traceback). They agree with a naive reference on ASCII input.
"""

from __future__ import annotations

import string
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence.cli.links import DurationType
from evidence.cli.main import main
from evidence.cli.sizes import SizeType, parse_duration, parse_size

WHITESPACE = string.whitespace
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _split_number(text: str) -> tuple[str, str]:
    """Leading ASCII digits (after white space), and what follows them, left-trimmed."""
    rest = text.strip(WHITESPACE)
    digits = ""
    while rest[:1] and rest[0] in string.digits:
        digits, rest = digits + rest[0], rest[1:]
    return digits, rest.lstrip(WHITESPACE)


def reference_size(text: str) -> int | None:
    """``<digits> [k|m|g|t][b|ib]``, any case, binary multiples, white space around."""
    digits, rest = _split_number(text)
    rest = rest.lower()
    unit = rest[0] if rest[:1] and rest[0] in "kmgt" else ""
    suffix = rest[len(unit) :]
    if not digits or suffix not in ("", "b", "ib"):
        return None
    return int(digits) * SIZE_UNITS[unit]


def reference_duration(text: str) -> timedelta | None:
    """``<digits> s|m|h|d`` (lower case), white space around."""
    digits, unit = _split_number(text)
    if not digits or unit not in DURATION_UNITS:
        return None
    return timedelta(seconds=int(digits) * DURATION_UNITS[unit])


ASCII_PIECES = st.sampled_from(["", " ", "\t", "0", "7", "8", "64", "1024", "k", "K", "m", "M", "g", "G", "t", "T",
                                "b", "B", "i", "ib", "iB", "MiB", "mb", "s", "h", "d", "D", "-", "+", ".", "5", "x"])
ASCII_TEXT = st.lists(ASCII_PIECES, max_size=8).map("".join) | st.text(alphabet=string.printable, max_size=12)
ANY_TEXT = ASCII_TEXT | st.text(max_size=12) | st.sampled_from(["８M", "٨", "1\u2003m", "1K", "1ıb", "9" * 5000])


@settings(max_examples=400)
@given(ASCII_TEXT)
@example("8M")
@example("64MiB")
@example("1048576")
@example(" 2 g b ")
@example("3ib")
def test_size_agrees_with_the_reference(text: str) -> None:
    expected = reference_size(text)
    if expected is None:
        with pytest.raises(ValueError):
            parse_size(text)
    else:
        assert parse_size(text) == expected


@settings(max_examples=300)
@given(ANY_TEXT)
def test_size_type_gives_a_size_or_a_usage_error(text: str) -> None:
    try:
        value = SizeType().convert(text, None, None)
    except click.BadParameter:
        return
    assert isinstance(value, int) and value >= 0


@settings(max_examples=400)
@given(ASCII_TEXT | st.integers(min_value=0, max_value=10**8).map(lambda n: f"{n}{'smhd'[n % 4]}"))
@example("14d")
@example("90m")
@example(" 12 h ")
@example("14D")
@example("999999999d")  # timedelta's largest whole number of days
def test_duration_agrees_with_the_reference(text: str) -> None:
    expected = reference_duration(text)
    if expected is None:
        with pytest.raises(ValueError):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected


@settings(max_examples=100)
@given(ANY_TEXT | st.integers(min_value=10**9, max_value=10**30).map(lambda n: f"{n}{'smhd'[n % 4]}"))
@example("1000000000d")
@example("99999999999999999999s")
def test_duration_type_gives_a_duration_or_a_usage_error(text: str) -> None:
    try:
        value = DurationType().convert(text, None, None)
    except click.BadParameter:
        return
    assert isinstance(value, timedelta) and value >= timedelta(0)


@pytest.mark.parametrize("expires", ["1000000000d", "99999999999999999999s"])
def test_share_with_an_absurd_expiry_is_a_usage_error(expires: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "share", "--case", "OP-X", "--to", "cps@cps.gov.uk", "--expires", expires]
    )
    # Parameters are converted before the command runs: nothing touches the data dir.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2
    assert "--expires" in result.output
