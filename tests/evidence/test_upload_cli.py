"""`evidence upload` end to end: a real server, the real CLI, tuspy underneath."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.files import random_file, sha256_of
from tests.support.server import Server


def test_upload_prints_item_and_stores_the_exact_bytes(server: Server, tmp_path: Path) -> None:
    token = server.token()
    case = server.case("OP-HALFORD")
    source = tmp_path / "CCTV 01.mp4"
    digest = random_file(source, 12 * 1024 * 1024 + 123)

    result = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", token,
                        "--chunk-size", "5MiB")

    item_id, printed_sha, printed_path = result.stdout.split(maxsplit=2)
    assert printed_sha == digest
    assert printed_path.strip() == str(source)
    shown = json.loads(server.cli("items", "show", item_id, "--json").stdout)
    assert shown["state"] == "received"
    assert shown["filename"] == "CCTV 01.mp4"
    assert shown["client_sha256"] == digest
    assert shown["size"] == source.stat().st_size
    stored = server.data_dir / "vault" / "originals"
    [original] = list(stored.iterdir())
    assert sha256_of(original) == digest
    assert original.stat().st_mode & 0o222 == 0  # write-once: read-only


def test_running_the_same_upload_again_does_not_duplicate(server: Server, tmp_path: Path) -> None:
    token = server.token()
    case = server.case()
    source = tmp_path / "statement.pdf"
    random_file(source, 100_000)
    args = ("upload", str(source), "--case", case, "--server", server.url, "--token", token)
    first = server.cli(*args).stdout
    second = server.cli(*args).stdout
    assert first == second
    assert len(server.cli("items", "list", "--case", case).stdout.splitlines()) == 1
