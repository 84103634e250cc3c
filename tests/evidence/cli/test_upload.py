"""`evidence upload` end to end: a real server, the real CLI, tuspy underneath."""

from __future__ import annotations

import json
from pathlib import Path

import requests

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
    shown = json.loads(server.cli("items", "show", item_id, "--json", "--token", token).stdout)
    api = requests.get(f"{server.url}/api/v1/items/{item_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert api.status_code == 200 and api.json() == shown
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
    assert len(server.cli("items", "list", "--case", case, "--token", token).stdout.splitlines()) == 1


def test_clear_messages_for_what_an_officer_gets_wrong(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    token = server.token()
    case = server.case()
    source = tmp_path / "exhibit.bin"
    random_file(source, 1000)

    def upload(*args: str) -> tuple[int, str]:
        result = server.cli("upload", *args, check=False)
        assert "Traceback" not in result.stderr
        return result.returncode, " ".join(result.stderr.split())

    code, message = upload(str(tmp_path / "missing.mp4"), "--case", case, "--server", server.url, "--token", token)
    assert code == 2 and "no such file" in message and "missing.mp4" in message
    code, message = upload(str(source), "--case", "OP-NOPE", "--server", server.url, "--token", token)
    # The same answer as for a case that exists but is not theirs: nothing learnt by trying.
    assert code == 3 and "case OP-NOPE not found among the cases you are assigned to" in message
    code, message = upload(str(source), "--case", case, "--server", server.url, "--token", token[:-4] + "AAAA")
    assert code == 4 and "rejected the token" in message
    reviewer = server.token("cps@cps.gov.uk", "reviewer")
    code, message = upload(str(source), "--case", case, "--server", server.url, "--token", reviewer)
    assert code == 4 and "role" in message
    server.stop()
    code, message = upload(str(source), "--case", case, "--server", server.url, "--token", token)
    assert code == 6 and "not reachable" in message


def test_a_directory_uploads_every_file_in_it(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    token = server.token()
    case = server.case()
    folder = tmp_path / "extraction"
    (folder / "DCIM" / "100APPLE").mkdir(parents=True)
    digests = {
        folder / "report.pdf": random_file(folder / "report.pdf", 5000, seed=1),
        folder / "DCIM" / "100APPLE" / "IMG_0001.MOV": random_file(folder / "DCIM" / "100APPLE" / "IMG_0001.MOV", 70000, seed=2),
        folder / "DCIM" / "100APPLE" / "IMG_0002.MOV": random_file(folder / "DCIM" / "100APPLE" / "IMG_0002.MOV", 70000, seed=3),
    }
    out = server.cli("upload", str(folder), "--case", case, "--server", server.url, "--token", token).stdout
    printed = {Path(line.split(maxsplit=2)[2]): line.split()[1] for line in out.splitlines()}
    assert printed == digests
    assert len(server.cli("items", "list", "--case", case, "--token", token).stdout.splitlines()) == 3
