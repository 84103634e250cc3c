"""audit.entry: canonical entries, and a decoder that accepts nothing but the canonical bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785

from audit import Entry, VerificationError, format_time, leaf_hash, parse_time

ENTRY = Entry(
    seq=41,
    time="2026-11-22T21:23:56.123456Z",
    actor="system:transcode@worker-3",
    action="derivative.created",
    subject={"case": "OP-2026-0042", "item": "3f2a9c1e-6b7d-4c1a-9e2f-0a1b2c3d4e5f"},
    details={
        "kind": "proxy",
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "size": 73400320,
        "ffmpeg": {"version": "7.0.2", "argv": ["ffmpeg", "-i", "in.avi", "-c:v", "libx264", "out.mp4"]},
        "note": "Ünïcödé \U0001f4f9 and \"quotes\"\n",
        "flags": [True, False, None],
    },
)


def test_encode_is_rfc8785_of_the_six_fields() -> None:
    data = ENTRY.encode()
    assert data == rfc8785.dumps(ENTRY.as_dict())
    assert list(json.loads(data)) == ["action", "actor", "details", "seq", "subject", "time"]
    assert ENTRY.leaf_hash() == leaf_hash(data)


def test_decode_round_trips() -> None:
    decoded = Entry.decode(ENTRY.encode())
    assert decoded == ENTRY
    assert decoded.encode() == ENTRY.encode()
    assert decoded.leaf_hash() == ENTRY.leaf_hash()
    assert Entry.decode(memoryview(ENTRY.encode())) == ENTRY


def test_every_field_change_changes_the_leaf() -> None:
    changes: dict[str, Any] = {
        "seq": 42,
        "time": "2026-11-22T21:23:56.123457Z",
        "actor": "officer@example.police.uk",
        "action": "derivative.deleted",
        "subject": {**ENTRY.subject, "item": "3f2a9c1e-6b7d-4c1a-9e2f-0a1b2c3d4e5e"},
        "details": {**ENTRY.details, "size": 73400321},
    }
    for name, value in changes.items():
        changed = Entry(**{**ENTRY.as_dict(), name: value})
        assert changed.leaf_hash() != ENTRY.leaf_hash(), name
        assert Entry.decode(changed.encode()) == changed != ENTRY


def test_any_byte_changed_is_refused_or_is_a_different_entry() -> None:
    data = ENTRY.encode()
    outcomes = {"refused": 0, "different": 0}
    for i in range(len(data)):
        for replacement in {data[i] ^ 1, ord("0"), ord(" "), ord('"')} - {data[i]}:
            tampered = data[:i] + bytes([replacement]) + data[i + 1 :]
            try:
                entry = Entry.decode(tampered)
            except VerificationError:
                outcomes["refused"] += 1
                continue
            # It decoded: then it is canonical for a *different* entry, with a different leaf.
            assert entry != ENTRY and entry.leaf_hash() != ENTRY.leaf_hash() and entry.encode() == tampered
            outcomes["different"] += 1
    assert outcomes["refused"] > outcomes["different"] > 0


def encoded_with(**changes: Any) -> bytes:
    doc = {**ENTRY.as_dict(), **changes}
    return rfc8785.dumps({k: v for k, v in doc.items() if v is not DROP})


DROP = object()


@pytest.mark.parametrize(
    "data",
    [
        # Missing and extra keys.
        pytest.param(encoded_with(details=DROP), id="missing-details"),
        pytest.param(encoded_with(seq=DROP), id="missing-seq"),
        pytest.param(encoded_with(extra="x"), id="extra-key"),
        pytest.param(encoded_with(prev="x", seq=DROP), id="renamed-key"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"", id="empty"),
        # Wrong types and values.
        pytest.param(encoded_with(seq="41"), id="seq-string"),
        pytest.param(encoded_with(seq=True), id="seq-bool"),
        pytest.param(encoded_with(seq=-1), id="seq-negative"),
        pytest.param(ENTRY.encode().replace(b'"seq":41', b'"seq":41.0'), id="seq-float"),
        pytest.param(ENTRY.encode().replace(b'"seq":41', b'"seq":4.1e1'), id="seq-exponent"),
        pytest.param(ENTRY.encode().replace(b'"size":73400320', b'"size":9007199254740993'), id="unsafe-int"),
        pytest.param(ENTRY.encode().replace(b'"size":73400320', b'"size":NaN'), id="nan"),
        pytest.param(encoded_with(time="2026-11-22T21:23:56Z"), id="time-no-fraction"),
        pytest.param(encoded_with(time="2026-11-22T21:23:56.123456+00:00"), id="time-offset"),
        pytest.param(encoded_with(time="2026-11-22 21:23:56.123456Z"), id="time-space"),
        pytest.param(encoded_with(time="2026-02-30T21:23:56.123456Z"), id="time-february-30"),
        pytest.param(encoded_with(time="2026-11-22T24:00:00.000000Z"), id="time-hour-24"),
        pytest.param(encoded_with(time=1795000000), id="time-number"),
        pytest.param(encoded_with(actor=""), id="actor-empty"),
        pytest.param(encoded_with(action=None), id="action-null"),
        pytest.param(encoded_with(subject={"item": 5}), id="subject-int"),
        pytest.param(encoded_with(subject=["item"]), id="subject-list"),
        pytest.param(encoded_with(details=[]), id="details-list"),
        # Not canonical.
        pytest.param(json.dumps(ENTRY.as_dict()).encode(), id="spaces-and-order"),
        pytest.param(json.dumps(ENTRY.as_dict(), sort_keys=True).encode(), id="spaces"),
        pytest.param(json.dumps(ENTRY.as_dict(), sort_keys=True, separators=(",", ":")).encode(), id="ascii-escapes"),
        pytest.param(ENTRY.encode() + b"\n", id="trailing-newline"),
        pytest.param(b" " + ENTRY.encode(), id="leading-space"),
        pytest.param(b"\xef\xbb\xbf" + ENTRY.encode(), id="bom"),
        pytest.param(ENTRY.encode().decode().encode("utf-16"), id="utf-16"),
        pytest.param(ENTRY.encode().replace(b'"kind"', b'"\\u006bind"'), id="escaped-key"),
        pytest.param(ENTRY.encode().replace(b'"proxy"', b'"\\u0070roxy"'), id="escaped-value"),
        pytest.param(ENTRY.encode().replace(b'"seq":41', b'"seq":41,"seq":41'), id="duplicate-key"),
        pytest.param(ENTRY.encode().replace(b'"seq":41', b'"seq":041'), id="leading-zero"),
        pytest.param(
            ENTRY.encode().replace(b'{"action"', b'{"seq":41,"action"').replace(b',"seq":41', b""), id="key-order"
        ),
        pytest.param(ENTRY.encode().replace(b"\\n", b"\\u000a"), id="long-escape"),
        pytest.param(ENTRY.encode().replace(b"\xc3\x9c", b"\xc0\x9c"), id="invalid-utf8"),
        pytest.param(ENTRY.encode().replace("\U0001f4f9".encode(), b"\\ud83d\\udcf9"), id="escaped-astral"),
        pytest.param(ENTRY.encode().replace("\U0001f4f9".encode(), b"\\ud83d"), id="lone-surrogate"),
    ],
)
def test_decode_refuses(data: bytes) -> None:
    with pytest.raises(VerificationError):
        Entry.decode(data)


def test_decode_handles_keys_that_sort_by_utf16() -> None:
    entry = Entry(**{**ENTRY.as_dict(), "details": {"\ue000": 1, "\U0001f600": 2}})
    data = entry.encode()
    assert data.index("\U0001f600".encode()) < data.index("\ue000".encode())
    assert Entry.decode(data) == entry
    python_order = json.dumps(entry.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert python_order != data
    with pytest.raises(VerificationError):
        Entry.decode(python_order)


def test_bad_entries_cannot_be_built() -> None:
    bad: list[dict[str, Any]] = [
        {"seq": -1}, {"seq": 1.0}, {"time": "yesterday"}, {"actor": ""}, {"subject": {"a": 1}}, {"details": None}
    ]
    for changes in bad:
        with pytest.raises((TypeError, ValueError)):
            Entry(**{**ENTRY.as_dict(), **changes})
    with pytest.raises(TypeError):
        Entry(**{**ENTRY.as_dict(), "details": {"ratio": 0.5}}).encode()


def test_format_time() -> None:
    assert format_time(datetime(2026, 11, 22, 21, 23, 56, 123456, tzinfo=UTC)) == "2026-11-22T21:23:56.123456Z"
    plus_one = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 11, 22, 22, 23, 56, tzinfo=plus_one)) == "2026-11-22T21:23:56.000000Z"
    assert format_time(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.000000Z"
    with pytest.raises(ValueError):
        format_time(datetime(2026, 11, 22))
    moment = datetime(2026, 11, 22, 21, 23, 56, 123456, tzinfo=UTC)
    assert parse_time(format_time(moment)) == moment
