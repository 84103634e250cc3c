"""Objects from the vault over HTTP (evidence.http.streaming.stream_object), through a real
server and a real local vault: whole (200), a range (206), none (416), HEAD, If-Range, and
the headers that say what the bytes are. Bytes larger than one block come out intact."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import Response

from evidence.http.streaming import BLOCK, stream_object
from evidence.vault.local import LocalVault
from tests.support.inprocess import serving

DATA = bytes(range(256)) * (BLOCK // 256 * 2 + 3)  # two blocks and a bit
SHA256 = hashlib.sha256(DATA).hexdigest()
COMMON = {"Cache-Control": "no-store"}


@pytest.fixture(scope="module")
def sent() -> list[tuple[int, int] | None]:
    """What stream_object said it would send, request by request."""
    return []


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, sent: list[tuple[int, int] | None]) -> Iterator[str]:
    vault = LocalVault(Path(tmp_path_factory.mktemp("vault")))
    vault.ensure_ready()
    vault.put("derivatives/one", io.BytesIO(DATA))
    app = FastAPI()

    @app.api_route("/object", methods=["GET", "HEAD"])
    def read(request: Request, digest: bool = True) -> Response:
        response, bytes_sent = stream_object(request, vault, COMMON, "derivatives/one", len(DATA), "video/mp4",
                                             SHA256 if digest else None, 'attachment; filename="one.mp4"')
        sent.append(bytes_sent)
        return response

    with serving(app) as found:
        yield found


def test_the_whole_object(url: str) -> None:
    response = requests.get(f"{url}/object", timeout=30)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(SHA256)).decode()}:"
    assert response.headers["etag"] == f'"{SHA256}"'
    assert response.headers["content-disposition"] == 'attachment; filename="one.mp4"'
    assert response.headers["cache-control"] == "no-store"
    assert "content-range" not in response.headers


def test_a_range_across_a_block_boundary(url: str) -> None:
    first, last = BLOCK - 10, BLOCK + 9
    response = requests.get(f"{url}/object", headers={"Range": f"bytes={first}-{last}"}, timeout=30)
    assert response.status_code == 206
    assert response.content == DATA[first:last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == "20"
    # About the whole representation, so the same on a part of it.
    assert response.headers["repr-digest"].startswith("sha-256=:")


def test_a_suffix_range(url: str) -> None:
    response = requests.get(f"{url}/object", headers={"Range": "bytes=-5"}, timeout=30)
    assert response.status_code == 206 and response.content == DATA[-5:]


def test_a_range_past_the_end_is_416(url: str) -> None:
    response = requests.get(f"{url}/object", headers={"Range": f"bytes={len(DATA)}-"}, timeout=30)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.content == b""


def test_if_range_with_another_etag_sends_it_whole(url: str) -> None:
    stale = requests.get(f"{url}/object", headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=30)
    assert stale.status_code == 200 and stale.content == DATA
    fresh = requests.get(f"{url}/object", headers={"Range": "bytes=0-9", "If-Range": f'"{SHA256}"'}, timeout=30)
    assert fresh.status_code == 206 and fresh.content == DATA[:10]


def test_head_says_everything_and_sends_nothing(url: str) -> None:
    response = requests.head(f"{url}/object", headers={"Range": "bytes=0-9"}, timeout=30)
    assert response.status_code == 206
    assert response.headers["content-length"] == "10"
    assert response.headers["content-range"] == f"bytes 0-9/{len(DATA)}"
    assert response.content == b""


def test_without_a_hash_there_is_no_digest_and_no_etag(url: str) -> None:
    response = requests.get(f"{url}/object", params={"digest": "false"}, headers={"Range": "bytes=0-0"}, timeout=30)
    assert response.status_code == 206
    assert "repr-digest" not in response.headers and "etag" not in response.headers


def test_what_is_sent_is_told_to_the_caller(url: str, sent: list[tuple[int, int] | None]) -> None:
    """The bytes (first, last) about to go out, for the custody record; none for a HEAD or a 416."""
    calls = [("GET", {"Range": "bytes=5-9"}, (5, 9)), ("GET", {}, (0, len(DATA) - 1)),
             ("GET", {"Range": f"bytes={len(DATA)}-"}, None), ("HEAD", {}, None)]
    for method, headers, expected in calls:
        requests.request(method, f"{url}/object", headers=headers, timeout=30)
        assert sent[-1] == expected, (method, headers)
