"""The header properties end to end: generated Range and Upload-Metadata headers, and
filenames, sent over real HTTP to a real ``evidence serve`` (SQLite, file store).

- A reviewer's Range request on an original through a signed link is answered 200, 206
  or 416 exactly as the RFC reference says, with exactly those bytes; never a 5xx.
- A tus creation with any Upload-Metadata is created (201) only when the parser accepts
  the header, and HEAD then gives back the same metadata; otherwise it is a 4xx.
- Any filename an officer's machine can send comes back, through the reviewer's download,
  as one safe Content-Disposition whose filename* is the name (its last segment).

The reviewer routes and /files/ are not in the OpenAPI schema, so these are their fuzzing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
import requests
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from evidence.http.ranges import ByteRange, Unsatisfiable
from tests.fuzz.test_byteranges import expected_name, number_text, range_headers, reference_range
from tests.support.server import Server
from transfer.errors import BadRequest
from transfer.headers import MAX_VALUE_BYTES, encode_metadata, parse_metadata

CASE = "OP-HEADERS"
CONTENT = hashlib.sha256(b"a").digest() * 40  # 1,280 bytes, none alike in a row


@dataclass
class Served:
    server: Server
    token: str
    link: str
    original: str

    @property
    def officer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Tus-Resumable": "1.0.0"}

    def upload(self, metadata: str, body: bytes | None = None) -> requests.Response:
        headers = {**self.officer, "Upload-Metadata": metadata, "Upload-Length": str(len(body or b"") or 10)}
        if body:
            headers["Content-Type"] = "application/offset+octet-stream"
        return requests.post(f"{self.server.url}/files/", headers=headers, data=body, timeout=30)

    def item_of(self, created: requests.Response) -> str:
        upload = created.headers["Location"].rsplit("/", 1)[1]
        found = requests.get(f"{self.server.url}/api/v1/uploads/{upload}", timeout=30,
                             headers={"Authorization": f"Bearer {self.token}"})
        assert found.status_code == 200, found.text
        return str(found.json()["item"])


def _metadata(values: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Server(tmp_path_factory.mktemp("headers")).start()
    try:
        token = server.token()
        server.case(CASE)
        found = Served(server, token, "", "")
        created = found.upload(_metadata({"filename": "cctv.mp4", "case": CASE}), CONTENT)
        assert created.status_code == 201, created.text
        item = found.item_of(created)
        # Case-wide, items added later included: every upload below is reachable through it.
        link = requests.post(f"{server.url}/api/v1/links", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                             json={"case": CASE, "to": "cps@cps.gov.uk", "expires_in": 3600, "download": True,
                                   "include_future": True})
        assert link.status_code == 201, link.text
        found.link = link.json()["url"]
        found.original = f"{found.link}/items/{item}/original"
        yield found
    finally:
        server.stop()


# -- Range on a reviewer's download --------------------------------------------------------

# What a client can put in a header value at all: no leading white space or line breaks
# (clients refuse them), Latin-1 (what the server decodes it as).
SENDABLE = st.characters(codec="latin-1", exclude_categories=("Cc",)) | st.sampled_from(["\t"])


# Mostly "bytes=" headers with numbers around the original's size (the 206 and 416 paths);
# the rest anything a client can send (the pure tests cover that space in depth).
NEAR_SIZE = st.integers(min_value=0, max_value=len(CONTENT) + 100).map(str) | st.sampled_from(["", "0", "1280", "007"])
POSITION = st.integers(min_value=0, max_value=len(CONTENT) + 100)


@st.composite
def valid_ranges(draw: st.DrawFn) -> str:
    specs = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        first, length = draw(POSITION), draw(POSITION)
        specs.append(draw(st.sampled_from([f"{first}-{first + length}", f"{first}-", f"-{length}"])))
    return "bytes=" + ",".join(specs)


RANGE_HEADERS = st.one_of(
    valid_ranges(),
    range_headers(NEAR_SIZE, units=st.just("bytes"), separators=st.just("=")),
    range_headers(NEAR_SIZE),
    range_headers(number_text()),
    st.text(alphabet=SENDABLE, max_size=40),
)


@settings(max_examples=60)
@given(RANGE_HEADERS)
@example("bytes=0-0")
@example("bytes=-1")
@example("bytes=1279-")
@example("bytes=1280-")
@example("bytes=5-1")
@example("bytes=0-1,10-20")
@example("bytes=1280-1300,2000-")
def test_range_over_http_is_the_reference_range(served: Served, header: str) -> None:
    assume(not header[:1].isspace())  # clients refuse to send that
    response = requests.get(served.original, headers={"Range": header}, timeout=30)
    event(f"answered {response.status_code}")
    # The server reads the value without the spaces and tabs around it (RFC 9110 OWS).
    expected = reference_range(header.rstrip(" \t"), len(CONTENT))
    if expected is Unsatisfiable:
        assert response.status_code == 416, (header, response.status_code, response.text[:200])
        assert response.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    elif isinstance(expected, ByteRange):
        assert response.status_code == 206, (header, response.status_code, response.text[:200])
        assert response.headers["Content-Range"] == expected.content_range(len(CONTENT))
        assert response.content == CONTENT[expected.start : expected.end + 1]
    else:
        assert response.status_code == 200, (header, response.status_code, response.text[:200])
        assert response.content == CONTENT


@pytest.mark.parametrize("header", ["bytes=" + "1" * 4_301 + "-", "bytes=-" + "9" * 5_000])
def test_range_with_a_very_long_number_over_http(served: Served, header: str) -> None:
    response = requests.get(served.original, headers={"Range": header}, timeout=30)
    # Served (whole or the range), 416, or refused as too large: anything but a 5xx.
    assert response.status_code in (200, 206, 400, 416, 431), (response.status_code, response.text[:200])


# -- Upload-Metadata on tus creation -------------------------------------------------------

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=64)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
RESERVED = {"filename", "case", "sha256", "framerate", "exhibit", "description", "filetype"}


@st.composite
def near_limit(draw: st.DrawFn) -> str:
    head = draw(TEXT)
    return head + "v" * max(0, MAX_VALUE_BYTES + draw(st.integers(-2, 2)) - len(head.encode()))


@settings(max_examples=60)
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40) | near_limit(),
    st.dictionaries(KEYS.filter(lambda k: k.lower() not in RESERVED), TEXT | near_limit(), max_size=6),
)
@example("CCTV 01.mp4", {"exhibit": "é" * (MAX_VALUE_BYTES // 2)})
@example(" ", {})
def test_metadata_over_http_is_kept_exactly_or_refused(served: Served, filename: str, extra: dict[str, str]) -> None:
    header = encode_metadata({"filename": filename, "case": CASE, **extra})
    try:
        accepted = parse_metadata(header)
    except BadRequest:
        accepted = None
    response = served.upload(header)
    event(f"answered {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.text[:200])
    if accepted is None or not filename.strip():
        assert response.status_code in (400, 413, 431), (response.status_code, response.text[:200])
        return
    # Accepted by the parser: created, unless a request-size cap refused the header first.
    assert response.status_code in (201, 413, 431), (response.status_code, response.text[:200])
    if response.status_code == 201:
        head = requests.head(response.headers["Location"], headers=served.officer, timeout=30)
        assert head.status_code == 200
        assert parse_metadata(head.headers["Upload-Metadata"]) == accepted


@settings(max_examples=40)
@given(st.text(alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",)), min_size=1, max_size=200))
@example("filename,case")
@example("filename " + "=" * 4)
def test_any_metadata_header_is_refused_or_created_never_a_5xx(served: Served, header: str) -> None:
    assume(not header[:1].isspace())  # clients refuse to send that
    response = served.upload(header)
    assert response.status_code in (201, 400, 413, 431), (response.status_code, response.text[:200])


# -- a filename's way back out -------------------------------------------------------------

HEADER = re.compile(r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]*)")


@settings(max_examples=30)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=60))
@example("..\\..\\Windows\\cam 4.avi")
@example("line\r\nSet-Cookie: x=1.mp4")
@example('say "hi"; filename*=evil.exe')
def test_a_filename_comes_back_as_one_safe_header(served: Served, filename: str) -> None:
    assume(filename.strip())
    created = served.upload(_metadata({"filename": filename, "case": CASE}), b"abc")
    assert created.status_code == 201, (created.status_code, created.text[:200])
    item = served.item_of(created)
    response = requests.get(f"{served.link}/items/{item}/original", timeout=30)
    assert response.status_code == 200, (response.status_code, response.text[:200])
    assert response.content == b"abc"
    disposition = response.headers["Content-Disposition"]
    match = HEADER.fullmatch(disposition)
    assert match, disposition
    assert unquote(match.group(2), errors="strict") == expected_name(filename)
