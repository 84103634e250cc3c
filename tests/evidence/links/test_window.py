"""Who a viewer is, which window a request falls in, and byte ranges coalesced: pure logic,
with properties checked against a naive set of bytes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence.links.window import (
    MAX_RANGES,
    Tally,
    Window,
    bounded,
    clean,
    coalesce,
    covered,
    denied_key,
    item_key,
    kind_of,
    summary_details,
    viewer_of,
    whole,
    window_of,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_windows_sit_on_a_fixed_grid_that_every_process_computes_alike() -> None:
    first = window_of(T0 + timedelta(seconds=5), 1800)
    assert first == Window(T0, T0 + timedelta(minutes=30))
    assert window_of(T0 + timedelta(minutes=29, seconds=59.999), 1800) == first
    assert window_of(T0 + timedelta(minutes=30), 1800).start == T0 + timedelta(minutes=30)
    assert window_of(T0 + timedelta(milliseconds=1500), 0).end - window_of(T0, 0).start <= timedelta(seconds=2)
    assert window_of(T0, 0).end - window_of(T0, 0).start == timedelta(seconds=1)  # never empty


@pytest.mark.parametrize("address, viewer", [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # the same host's /64
    ("fe80::1%eth0", "fe80::/64"),
    ("testclient", "testclient"),
    ("", "unknown"),
    ("x" * 500, "x" * 64),
])
def test_a_viewer_is_an_address_or_an_ipv6_clients_64(address: str, viewer: str) -> None:
    assert viewer_of(address) == viewer


def test_client_values_are_cleaned_and_cut() -> None:
    assert clean("Mozilla/5.0\r\nX-Injected: 1\x00") == "Mozilla/5.0  X-Injected: 1"
    assert len(clean("a" * 10_000)) == 200
    assert clean("\u202eevil") == "evil"


def test_keys_name_only_what_the_gate_checked() -> None:
    assert item_key("download", "ab" * 16) == "download:" + "ab" * 16
    assert kind_of(item_key("view", "ab" * 16)) == "view" and kind_of(denied_key("revoked")) == "denied"
    assert len(denied_key("token does not match the link's scope")) <= 80
    with pytest.raises(ValueError):
        item_key("anything", "ab" * 16)


def test_ranges_in_any_order_overlapping_or_touching_coalesce() -> None:
    ranges: list[list[int]] = []
    for added in [(60_000, 99_999), (0, 9_999), (5_000, 30_000), (30_001, 45_000), (44_000, 60_000)]:
        ranges = coalesce(ranges, added)
    assert ranges == [[0, 99_999]] and whole(ranges, 100_000) and not whole(ranges, 100_001)
    assert coalesce([[0, 9], [20, 29]], (12, 15)) == [[0, 9], [12, 15], [20, 29]]
    assert coalesce([[0, 9], [20, 29]], (10, 19)) == [[0, 29]]
    assert covered([[0, 9], [20, 29]]) == 20


def _bytes(ranges: list[list[int]] | list[tuple[int, int]]) -> set[int]:
    return {b for first, last in ranges for b in range(first, last + 1)}


spans = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1])), max_size=60)


@given(spans)
def test_coalescing_keeps_exactly_the_bytes_served(served: list[tuple[int, int]]) -> None:
    ranges: list[list[int]] = []
    for added in served:
        ranges = coalesce(ranges, added)
    assert _bytes(ranges) == _bytes(served)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))  # sorted, apart


@given(spans, st.integers(1, 8))
def test_bounding_never_loses_a_byte_and_says_when_it_is_inexact(served: list[tuple[int, int]], limit: int) -> None:
    exact_ranges = coalesce(served)
    ranges, exact = bounded(exact_ranges, limit)
    assert len(ranges) <= limit and _bytes(served) <= _bytes(ranges)
    assert exact == (ranges == exact_ranges)


def test_a_hostile_scatter_of_ranges_stays_bounded() -> None:
    ranges: list[list[int]] = []
    for n in range(1000):
        ranges, _ = bounded(coalesce(ranges, (n * 10, n * 10)))
    assert len(ranges) == MAX_RANGES and ranges[0][0] == 0 and ranges[-1][1] == 9990


def test_a_summary_says_what_the_window_held() -> None:
    tally = Tally("download:" + "ab" * 16, "203.0.113.7", Window(T0, T0 + timedelta(minutes=30)), T0,
                  T0 + timedelta(seconds=90), 5, 120_000, [[0, 99_999]], True, "curl/8")
    details = summary_details(tally, 100_000)
    assert details["kind"] == "download" and details["summary"] is True and details["requests"] == 5
    assert details["ranges"] == [[0, 99_999]] and details["whole_file"] is True and details["bytes_sent"] == 120_000
    assert details["window"] == {"from": "2026-03-01T12:00:00.000Z", "until": "2026-03-01T12:30:00.000Z"}
    partial = summary_details(Tally(**{**tally.__dict__, "ranges": [[0, 9], [50, 59]]}), 100_000)
    assert partial["whole_file"] is False and partial["bytes_covered"] == 20
    refused = summary_details(Tally(**{**tally.__dict__, "key": "denied:revoked"}), None)
    assert refused["outcome"] == "denied" and refused["reason"] == "revoked" and "ranges" not in refused
