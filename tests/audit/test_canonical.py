"""audit.canonical against the rfc8785 reference on many random documents."""

from __future__ import annotations

import enum
import json
import random
from typing import Any

import pytest
import rfc8785

from audit import canonical
from audit.canonical import MAX_SAFE_INTEGER

rng = random.Random(8785)

# Characters that stress the encoders: controls (short and \u escapes), quote and backslash, DEL,
# Latin-1, the U+2028/2029 separators, the BMP private use area just above the surrogates
# (U+E000-U+FFFF sorts *after* astral characters by code point but *before* them in UTF-16),
# and astral characters (emoji, U+10000, U+10FFFF).
SPECIAL = (
    [chr(c) for c in range(0x20)]
    + ['"', "\\", "/", "\x7f", "\x80", "é", "ß", "\u2028", "\u2029", "\ud7ff", "\ue000", "\uf8ff", "\ufb01",
       "\ufeff", "\uffff", "\U00010000", "\U0001f600", "\U0001f4a9", "\U0010ffff", "€", "ж", "中"]
)


def random_text(max_len: int = 8) -> str:
    out = []
    for _ in range(rng.randrange(0, max_len + 1)):
        roll = rng.random()
        if roll < 0.5:
            out.append(chr(rng.randrange(0x20, 0x7F)))
        elif roll < 0.8:
            out.append(rng.choice(SPECIAL))
        else:
            c = rng.randrange(0x80, 0x110000)
            out.append(chr(c) if not 0xD800 <= c <= 0xDFFF else "x")
    return "".join(out)


def random_value(depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 4 and roll < 0.15:
        return {random_text(): random_value(depth + 1) for _ in range(rng.randrange(0, 6))}
    if depth < 4 and roll < 0.25:
        return [random_value(depth + 1) for _ in range(rng.randrange(0, 5))]
    if roll < 0.55:
        return random_text(20)
    if roll < 0.8:
        return rng.choice([0, -1, 1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, rng.randrange(-(2**53) + 1, 2**53),
                           rng.randrange(-1000, 1000)])
    return rng.choice([True, False, None])


def random_document() -> dict[str, Any]:
    return {random_text(): random_value() for _ in range(rng.randrange(0, 10))}


def test_random_documents_match_rfc8785() -> None:
    astral_keys = 0
    for _ in range(10000):
        doc = random_document()
        assert canonical(doc) == rfc8785.dumps(doc), doc
        astral_keys += any(any(ord(c) >= 0x10000 for c in k) for k in doc)
    assert astral_keys > 100  # the UTF-16 ordering path is exercised


def test_the_decoder_fast_path_matches_on_ascii_documents() -> None:
    from audit.canonical import fast_encode_decoded

    checked = 0
    for _ in range(3000):
        data = canonical(random_document())
        if data.isascii():
            assert fast_encode_decoded(json.loads(data)) == data
            checked += 1
    assert checked > 100


def test_key_order_is_by_utf16_code_units() -> None:
    # By code point U+E000 < U+1F600; in UTF-16, 0xD83D (lead surrogate) < 0xE000.
    doc = {"\ue000": 1, "\U0001f600": 2, "a": 3, "\u00e9": 4}
    assert canonical(doc) == rfc8785.dumps(doc)
    assert canonical(doc).decode() == '{"a":3,"é":4,"\U0001f600":2,"\ue000":1}'
    nested = {"x": [{"\ufb01": 1, "\U00010000": 2}]}
    assert canonical(nested).decode() == '{"x":[{"\U00010000":2,"\ufb01":1}]}'


def test_escapes() -> None:
    doc = {"s": "\x00\x07\b\t\n\x0b\f\r\x1f\"\\/\x7f\u2028é\U0001f600"}
    assert canonical(doc) == rfc8785.dumps(doc)
    escaped = b'\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\/\x7f'
    assert canonical(doc) == b'{"s":"' + escaped + "\u2028é\U0001f600".encode() + b'"}'


def test_equivalent_inputs_give_the_same_bytes() -> None:
    expected = b'{"a":null,"b":[1,[2,3]]}'
    assert canonical({"b": [1, (2, 3)], "a": None}) == canonical({"a": None, "b": [1, [2, 3]]}) == expected


class Colour(enum.Enum):
    RED = "red"


class Action(enum.StrEnum):
    HASHED = "original.hashed"


class OlderAction(str, enum.Enum):  # noqa: UP042 - the spelling before StrEnum, which callers may still use
    STORED = "original.stored"


class Level(enum.IntEnum):
    HIGH = 3


def test_str_and_int_subclasses_encode_as_their_values() -> None:
    doc: dict[str, Any] = {"action": Action.HASHED, "level": Level.HIGH, Action.HASHED: 1, "older": OlderAction.STORED}
    assert canonical(doc) == rfc8785.dumps(doc) == (
        b'{"action":"original.hashed","level":3,"older":"original.stored","original.hashed":1}')


@pytest.mark.parametrize(
    "value",
    [1.0, 0.5, float("nan"), float("inf"), {"a": [1, 2.5]}, {1: "a"}, {(1, 2): "a"}, {"a": b"bytes"}, {"a": {1, 2}},
     {"a": Colour.RED}, {"a": object()}],
)
def test_unsupported_values_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical(value)


@pytest.mark.parametrize(
    "value", [2**53, -(2**53), 10**30, {"a": [2**63]}, "\ud800", {"\udc00": 1}, {"\ud83d": 1, "\ue000": 2}]
)
def test_unrepresentable_values_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical(value)
    with pytest.raises(ValueError):  # CanonicalizationError, or UnicodeEncodeError for lone surrogates in keys
        rfc8785.dumps(value)


def test_cycles_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        canonical({"a": loop})
    astral_loop: dict[str, Any] = {"\U0001f600": 1}
    astral_loop["x"] = astral_loop
    with pytest.raises(ValueError):
        canonical(astral_loop)
