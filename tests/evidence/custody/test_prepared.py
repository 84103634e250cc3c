"""A prepared entry's body with its seq spliced in is exactly what `audit.Entry` encodes, whatever
the details hold (keys named like the entry's own, characters that change the key order), and an
entry the log cannot hold is refused when it is prepared, not under the head's lock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import Entry, format_time
from audit.canonical import MAX_SAFE_INTEGER
from evidence.custody.prepared import prepare

AT = datetime(2026, 11, 30, 9, 15, 1, 123456, tzinfo=UTC)


def expected(seq: int, action: str, subject: dict[str, str], actor: str, details: dict[str, Any]) -> bytes:
    return Entry(seq=seq, time=format_time(AT), actor=actor, action=action, subject=subject, details=details).encode()


@pytest.mark.parametrize("details", [
    {},
    {"seq": 0, "subject": {"seq": 0}},
    {"nested": {"x": ',"seq":0,"subject":{', "seq": 0, "subject": {"a": "b"}}},
    {"list": [{"seq": 0, "subject": {}}], "time": "not the entry's"},
    {"\ue000": 1, "\U0001f600": 2, "é": [None, True, False, -5]},
])
@pytest.mark.parametrize("seq", [0, 1, 9, 10, 12345, MAX_SAFE_INTEGER])
def test_the_body_is_the_canonical_encoding(details: dict[str, Any], seq: int) -> None:
    subject = {"case": "OP-1", "seq": "0", "subject": ',"seq":0,"subject":{'}
    entry = prepare("case.created", subject, "user:pc@force.police.uk", details, AT)
    assert entry.body(seq) == expected(seq, "case.created", subject, "user:pc@force.police.uk", details)
    assert Entry.decode(entry.body(seq)).seq == seq


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    seq=st.integers(0, MAX_SAFE_INTEGER),
    subject=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4),
    details=st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    actor=st.text(min_size=1, max_size=20),
)
def test_any_entry_splices_to_its_canonical_encoding(seq: int, subject: dict[str, str], details: dict[str, Any],
                                                      actor: str) -> None:
    try:
        entry = prepare("derivative.created", subject, actor, details, AT)
    except ValueError:  # a lone surrogate: refused by Entry too
        with pytest.raises(ValueError):
            expected(seq, "derivative.created", subject, actor, details)
        return
    assert entry.body(seq) == expected(seq, "derivative.created", subject, actor, details)


@pytest.mark.parametrize(("subject", "details", "error"), [
    ({"case": "OP-1"}, {"fps": 29.97}, TypeError),
    ({"case": 1}, {}, TypeError),
    ({"case": "OP-1"}, {"big": 2**53}, ValueError),
])
def test_an_entry_the_log_cannot_hold_is_refused_when_prepared(subject: Any, details: dict[str, Any],
                                                                error: type[Exception]) -> None:
    with pytest.raises(error):
        prepare("case.created", subject, "operator:root", details, AT)


def test_naive_times_and_impossible_seqs_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        prepare("case.created", {}, "operator:root", {}, datetime(2026, 1, 1))
    entry = prepare("case.created", {}, "operator:root", {}, AT)
    for seq in (-1, MAX_SAFE_INTEGER + 1, True):
        with pytest.raises(ValueError, match="seq"):
            entry.body(seq)
