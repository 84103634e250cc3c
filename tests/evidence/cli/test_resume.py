"""The upload client's resume records (evidence.cli.resume): one file per upload, written
whole, so that several ``evidence upload`` processes can run at once from one home folder;
a damaged record is skipped with a warning; the old single file is moved over. Then the
real thing: eight ``evidence upload`` processes at once against a real server, and an
interrupted one resumed."""

from __future__ import annotations

import json
import multiprocessing
import signal
import stat
import subprocess
import time
from pathlib import Path

import requests
from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage

from evidence.cli.resume import ResumeRecords
from tests.support.files import random_file
from tests.support.proxy import Proxy
from tests.support.server import EVIDENCE, Server


def records(folder: Path, warnings: list[str] | None = None) -> ResumeRecords:
    return ResumeRecords(folder, (warnings if warnings is not None else []).append)


def test_records_round_trip_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "evidence" / "uploads"
    kept = records(folder)
    assert kept.get_item("a") is None
    kept.set_item("a", "http://server/files/1")
    kept.set_item("b", "http://server/files/2")
    kept.set_item("a", "http://server/files/3")
    kept.set_item("c", None)  # tuspy stores what it looked up, even nothing
    again = records(folder)
    assert (again.get_item("a"), again.get_item("b"), again.get_item("c")) == ("http://server/files/3",
                                                                               "http://server/files/2", None)
    again.remove_item("b")
    again.remove_item("b")
    assert again.get_item("b") is None
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = list(folder.glob("*.json"))
    assert len(written) == 1 and stat.S_IMODE(written[0].stat().st_mode) == 0o600
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind


def test_a_damaged_record_is_skipped_with_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    kept = records(tmp_path / "uploads", warnings)
    kept.set_item("torn", "http://server/files/1")
    kept.set_item("other", "http://server/files/2")
    kept.set_item("swapped", "http://server/files/3")
    kept.path_of("torn").write_text('{"key": "torn", "url": "http://ser')
    # A record under another key's name is not that key's.
    kept.path_of("swapped").write_text(json.dumps({"key": "someone else", "url": "http://server/files/9"}))
    assert kept.get_item("torn") is None and kept.get_item("swapped") is None
    assert len(warnings) == 2 and all("damaged" in w for w in warnings)
    assert kept.get_item("other") == "http://server/files/2"
    kept.set_item("torn", "http://server/files/4")  # replaced whole
    assert kept.get_item("torn") == "http://server/files/4"


def test_the_old_single_file_is_moved_over_once(tmp_path: Path) -> None:
    state = tmp_path / "evidence"
    state.mkdir()
    legacy = FileStorage(str(state / "uploads.json"))  # what earlier versions wrote (tuspy's)
    legacy.set_item("server|OP-1|abc|10", "http://server/files/old")
    legacy.set_item("server|OP-1|def|20", "http://server/files/older")
    legacy.close()
    kept = records(state / "uploads")
    assert kept.get_item("server|OP-1|abc|10") == "http://server/files/old"
    assert kept.get_item("server|OP-1|def|20") == "http://server/files/older"
    assert not (state / "uploads.json").exists() and (state / "uploads.json.imported").exists()
    kept.remove_item("server|OP-1|abc|10")
    assert records(state / "uploads").get_item("server|OP-1|abc|10") is None  # not imported twice


def test_a_damaged_old_file_is_set_aside_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "uploads.json").write_text('{"_default": {"1": {"key": "k", "ur')
    warnings: list[str] = []
    kept = records(tmp_path / "uploads", warnings)
    assert kept.get_item("k") is None
    assert len(warnings) == 1 and "damaged" in warnings[0]
    assert (tmp_path / "uploads.json.imported").exists()


def _no_warning(message: str) -> None:
    raise AssertionError(f"a record was torn: {message}")


def _hammer(folder: str, worker: int) -> None:
    kept = ResumeRecords(Path(folder), _no_warning)
    for round_ in range(150):
        kept.set_item(f"own-{worker}-{round_ % 10}", f"http://server/files/{worker}-{round_}")
        kept.set_item("shared", f"http://server/files/shared-{worker}-{round_}")
        shared = kept.get_item("shared")
        assert shared is not None and shared.startswith("http://server/files/shared-")
        assert kept.get_item(f"own-{worker}-{round_ % 10}") == f"http://server/files/{worker}-{round_}"


def test_eight_processes_writing_at_once_never_see_a_torn_record(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    records(folder)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(folder), n)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * 8
    assert len(records(folder).urls()) == 8 * 10 + 1


def test_eight_uploads_at_once_from_one_home_folder(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    token = server.token()
    case = server.case()
    sources = {}
    for n in range(8):
        path = tmp_path / f"exhibit {n}.bin"
        sources[path] = random_file(path, 3 * 1024 * 1024 + n * 4099, seed=n + 10)
    # The same home folder for all eight (Server.env sets XDG_STATE_HOME for the CLI).
    running = [subprocess.Popen([EVIDENCE, "upload", str(path), "--case", case, "--server", server.url,
                                 "--token", token, "--chunk-size", "1MiB"],
                                env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for path in sources]
    printed = {}
    for process in running:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert "Traceback" not in err and "warning" not in err
        item_id, sha256, path = out.strip().split(maxsplit=2)
        printed[Path(path)] = (item_id, sha256)
    assert {path: sha for path, (_, sha) in printed.items()} == sources
    bearer = {"Authorization": f"Bearer {token}"}
    for path, (item_id, sha256) in printed.items():
        item = requests.get(f"{server.url}/api/v1/items/{item_id}", headers=bearer, timeout=10).json()
        assert item["filename"] == path.name and item["client_sha256"] == sha256
        assert item["size"] == path.stat().st_size
    assert len(server.cli("items", "list", "--case", case, "--token", token).stdout.splitlines()) == 8


def test_an_interrupted_upload_resumes_from_the_server_offset(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    token = server.token()
    case = server.case()
    source = tmp_path / "CCTV 02.bin"
    digest = random_file(source, 16 * 1024 * 1024)
    args = (str(source), "--case", case, "--token", token, "--chunk-size", "1MiB")
    with Proxy("127.0.0.1", server.port, upstream_rate=4e6) as slow:
        interrupted = subprocess.Popen([EVIDENCE, "upload", *args, "--server", slow.url], env=server.env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while slow.upstream_bytes < 6 * 1024 * 1024:
            assert interrupted.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        interrupted.send_signal(signal.SIGINT)  # the officer presses Ctrl-C
        _, err = interrupted.communicate(timeout=60)
        assert interrupted.returncode == 130 and "run the same command again to resume" in " ".join(err.split())
        sent_before = slow.upstream_bytes
    # The same address (the server is part of what identifies an upload), now at full speed.
    with Proxy("127.0.0.1", server.port, port=slow.port) as counting:
        out = server.cli("upload", *args, "--server", counting.url).stdout
        sent_after = counting.upstream_bytes
    item_id, printed = out.split()[:2]
    assert printed == digest
    # Resumed, not begun again: the second run sent little more than what was missing.
    assert sent_after < source.stat().st_size - sent_before + 3 * 1024 * 1024
    assert len(server.cli("items", "list", "--case", case, "--token", token).stdout.splitlines()) == 1
    assert json.loads(server.cli("items", "show", item_id, "--json", "--token", token).stdout)["client_sha256"] == digest


def test_an_upload_remembered_in_the_old_file_resumes(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server()
    token = server.token()
    case = server.case()
    source = tmp_path / "interview.bin"
    digest = random_file(source, 3 * 1024 * 1024)
    # An upload begun by an earlier version of the client: one chunk sent, its URL in uploads.json.
    client = TusClient(f"{server.url}/files/", headers={"Authorization": f"Bearer {token}"})
    with open(source, "rb") as stream:
        begun = client.uploader(file_stream=stream, chunk_size=1024 * 1024,
                                metadata={"filename": source.name, "case": case, "sha256": digest})
        begun.upload_chunk()
    url: object = begun.url
    assert isinstance(url, str)
    state = Path(server.env["XDG_STATE_HOME"]) / "evidence"
    state.mkdir(parents=True)
    legacy = FileStorage(str(state / "uploads.json"))
    legacy.set_item(f"{server.url}|{case}|{digest}|{source.stat().st_size}", url)
    legacy.close()

    item_id = server.cli("upload", str(source), "--case", case, "--server", server.url,
                         "--token", token).stdout.split()[0]
    upload = requests.get(f"{server.url}/api/v1/uploads/{url.rsplit('/', 1)[1]}",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert upload["item"] == item_id and upload["finished"]
    assert len(server.cli("items", "list", "--case", case, "--token", token).stdout.splitlines()) == 1
