"""Canonical JSON (RFC 8785, JCS) for ledger entries, so the same entry always hashes the same.

`canonical` gives the RFC 8785 bytes of a document built from ``str``, ``int``, ``bool``,
``None``, ``list``/``tuple`` and ``dict`` with ``str`` keys. Floats are refused: an entry's
numbers are sizes, counts and sequence numbers, and a float's canonical form (ECMAScript
number formatting) is a needless source of disagreement between implementations. Pass them as
ints or strings.

The reference implementation is the ``rfc8785`` package; it is pure Python and costs tens of
microseconds per entry, too slow for recomputing a million leaves. For the value types above,
the standard library's C JSON encoder (``sort_keys``, ``ensure_ascii=False``, compact
separators) writes exactly the same bytes, with two differences that are handled here:

- JCS sorts object keys by their UTF-16 code units, Python by code points. The two orders agree
  unless a key holds a character at or above U+E000 (a supplementary character's UTF-16 lead
  surrogate, 0xD800-0xDBFF, sorts below U+E000-U+FFFF, while its code point sorts above). Any
  document with such a key goes to ``rfc8785``.
- JCS numbers are IEEE doubles, so integers outside +/-(2**53 - 1) are refused, as ``rfc8785``
  does.

String escaping is identical: both write ``\\" \\\\ \\b \\f \\n \\r \\t`` and ``\\u00xx`` (lower case)
for the other controls, and every other character as UTF-8. Lone surrogates cannot be encoded
as UTF-8 and are refused by both. tests/audit/test_canonical.py compares the two on many random
documents.
"""

from __future__ import annotations

import json
import json.encoder
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1

_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, check_circular=True
)


def fast_encode(obj: Any) -> bytes:
    """The standard library's encoding, which is canonical only for documents `canonical` checked.

    For a document that came from ``json.loads`` (so only JSON types) with every int in the
    safe range and no key holding a character at or above U+E000 (an ASCII document, say),
    this is exactly `canonical`, minus the type walk. Everywhere else use `canonical`.
    """
    try:
        return _encoder.encode(obj).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text contains a lone surrogate, which is not valid Unicode") from exc


# The C encoder the JSONEncoder above wraps, built once, without the circular-reference check:
# only for documents fresh from json.loads, which cannot hold cycles. Saves a third of the time.
# Its constructor is internal to the json module, so it is only used if it builds and agrees
# with the public encoder on a sample; otherwise everything goes through `fast_encode`.
def _build_decoded_encoder() -> Any:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return None
    try:
        encode = make(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", True, False, False)
        sample = {"b": [1, -2, True, None, "\u00e9\n\"\\"], "a": {"z": "", "y": {}}}
        if "".join(encode(sample, 0)) != _encoder.encode(sample):
            return None  # pragma: no cover
    except (TypeError, ValueError):  # pragma: no cover - a future signature change
        return None
    return encode


_encode_decoded = _build_decoded_encoder()


def fast_encode_decoded(doc: Any) -> bytes:
    """`fast_encode` for a document ``json.loads`` just produced (so it has no cycles)."""
    if _encode_decoded is None:  # pragma: no cover - CPython always has the C encoder
        return fast_encode(doc)
    try:
        return "".join(_encode_decoded(doc, 0)).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text contains a lone surrogate, which is not valid Unicode") from exc


def canonical(obj: Any) -> bytes:
    """The RFC 8785 canonical JSON of ``obj``; TypeError/ValueError if it is not representable."""
    if _needs_utf16_sort(obj):
        try:
            return rfc8785.dumps(obj)
        except (rfc8785.CanonicalizationError, UnicodeError, RecursionError) as exc:
            raise ValueError(f"cannot canonicalise: {exc}") from exc
    return fast_encode(obj)


def _needs_utf16_sort(obj: Any) -> bool:
    """Check every value's type and range; True when some key needs UTF-16 code unit ordering."""
    needs = False
    stack = [obj]
    seen: set[int] = set()  # containers already walked: a cycle ends here, and the encoder refuses it
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int:
            _check_int(value)
        elif kind is dict or kind is list or kind is tuple:
            if id(value) in seen:
                continue
            seen.add(id(value))
            if kind is dict:
                needs = _keys_need_utf16_sort(value) or needs
                stack.extend(value.values())
            else:
                stack.extend(value)
        else:
            _check_other(value)
    return needs


def _keys_need_utf16_sort(mapping: dict[Any, Any]) -> bool:
    """Check that every key is a string; True when one holds a character at or above U+E000."""
    needs = False
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, not {type(key).__name__}")
        if not key.isascii() and max(key) >= "\ue000":
            needs = True
    return needs


def _check_int(value: int) -> None:
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is outside the JSON safe range; pass it as a string")


def _check_other(value: Any) -> None:
    """A value of no exact JSON type: a subclass of str, bool or int is written as its base; the rest is refused."""
    if isinstance(value, float):
        raise TypeError("floats are not allowed in ledger entries; pass numbers as ints or strings")
    if isinstance(value, int):  # an IntEnum, say (bool cannot be subclassed: it never comes here)
        _check_int(value)
    elif not isinstance(value, bool | str):
        raise TypeError(f"{type(value).__name__} cannot be written to a ledger entry")
