"""The pure logic of recording link access: who a viewer is, which window a request falls
in, what it is about, and which byte ranges have been served. No I/O here.

Access through a link is recorded per (link, viewer, key, window). A hostile client can
vary everything it sends (cookies, user agents, paths, ranges); none of that may create a
new record. So the viewer is the client's network address (an IPv6 client by its /64, which
one host can fill at will), the key is one of a fixed set naming only what the gate checked
(an item the link covers, a refusal reason of ours), and windows sit on a fixed grid so
every API process agrees on them without talking to each other.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Values taken from the client are cut to this before they are stored or recorded.
AGENT_CHARS = 200
# More separate byte ranges than this in one window are merged across their smallest gaps:
# the record still covers every byte served (it may then say more was served, never less)
# and its size stays bounded whatever a client asks for.
MAX_RANGES = 32
_VIEWER_CHARS = 64

Range = tuple[int, int]  # first and last byte, inclusive, as Content-Range counts them


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_details(self) -> dict[str, str]:
        return {"from": _iso(self.start), "until": _iso(self.end)}


def window_of(now: datetime, seconds: float) -> Window:
    """The window holding ``now``: fixed boundaries (multiples of ``seconds`` since the
    epoch, at least one second long), the same in every process."""
    length = max(seconds, 1.0)
    index = math.floor(now.timestamp() / length)
    start = datetime.fromtimestamp(index * length, UTC)
    return Window(start, start + timedelta(seconds=length))


def viewer_of(address: str) -> str:
    """Who is asking, as far as the network says: an IPv4 address, or an IPv6 client's /64
    network (one host is usually given a whole /64 and could rotate through it)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return clean(address, _VIEWER_CHARS) or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def clean(value: str, limit: int = AGENT_CHARS) -> str:
    """A client-supplied header as we may store it: no control or format characters, at
    most ``limit`` characters."""
    kept = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in value[: limit * 2])
    return kept.strip()[:limit]


# -- keys -----------------------------------------------------------------------------------

USE, PAGE, PASSCODE = "use", "page", "passcode"
ITEM_KINDS = ("view", "download", "report")


def item_key(kind: str, item_id: str) -> str:
    """``view:<item>``, ``download:<item>`` or ``report:<item>``, for an item the gate has
    found the link covers (so the set of keys of a link is bounded by what it shares)."""
    if kind not in ITEM_KINDS:
        raise ValueError(f"not an item access kind: {kind!r}")
    return f"{kind}:{item_id}"


def denied_key(reason: str) -> str:
    return f"denied:{reason}"


def kind_of(key: str) -> str:
    """The kind of access a key records: use, page, passcode, view, download, report or denied."""
    return key.split(":", 1)[0]


# -- byte ranges ----------------------------------------------------------------------------


def coalesce(ranges: list[list[int]] | list[Range], added: Range | None = None) -> list[list[int]]:
    """Ranges sorted, with overlapping and touching ones joined (``added`` among them)."""
    spans = sorted((int(a), int(b)) for a, b in [*ranges, *([added] if added else [])])
    joined: list[list[int]] = []
    for first, last in spans:
        if joined and first <= joined[-1][1] + 1:
            joined[-1][1] = max(joined[-1][1], last)
        else:
            joined.append([first, last])
    return joined


def bounded(ranges: list[list[int]], limit: int = MAX_RANGES) -> tuple[list[list[int]], bool]:
    """At most ``limit`` ranges, joining neighbours across the smallest gaps first; and
    whether the result is still exact (nothing was joined)."""
    spans = [list(r) for r in ranges]
    exact = True
    while len(spans) > limit:
        gap = min(range(len(spans) - 1), key=lambda i: spans[i + 1][0] - spans[i][1])
        spans[gap:gap + 2] = [[spans[gap][0], spans[gap + 1][1]]]
        exact = False
    return spans, exact


def whole(ranges: list[list[int]], size: int) -> bool:
    """Whether the ranges cover every byte of a representation of ``size`` bytes."""
    return size > 0 and ranges == [[0, size - 1]]


def covered(ranges: list[list[int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)


# -- what the record says -------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """What one (link, viewer, key, window) row holds when its summary is written."""

    key: str
    viewer: str
    window: Window
    first_at: datetime
    last_at: datetime
    requests: int
    bytes_sent: int
    ranges: list[list[int]]
    ranges_exact: bool
    user_agent: str


def summary_details(tally: Tally, size: int | None) -> dict[str, Any]:
    """The details of the one entry that closes a window whose first entry told only of its
    first request: how many requests came, and for an original, which bytes were served."""
    kind = kind_of(tally.key)
    details: dict[str, Any] = {
        "outcome": "denied" if kind == "denied" else "granted",
        "kind": kind,
        "summary": True,
        "window": tally.window.as_details(),
        "viewer": tally.viewer,
        "requests": tally.requests,
        "first_at": _iso(tally.first_at),
        "last_at": _iso(tally.last_at),
        "user_agent": tally.user_agent,
    }
    if kind == "denied":
        details["reason"] = tally.key.split(":", 1)[1]
    if kind in ("view", "download"):
        details["bytes_sent"] = tally.bytes_sent
    if kind == "download":
        details["ranges"] = tally.ranges
        details["ranges_exact"] = tally.ranges_exact
        details["bytes_covered"] = covered(tally.ranges)
        if size is not None:
            details["size"] = size
            details["whole_file"] = whole(tally.ranges, size)
    return details


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
