"""The officer's command line as a person sees it (issue 13): the real CLI, on a real
terminal (a pseudo-terminal) where that is what matters, against a real ``evidence serve``.

Bars that reach 100% with each file's result on a line of its own; a bar that says it is
waiting, and how many attempts it has made, while the server is away (stopped, or answering
503 because its database is); Ctrl-C saying how much the server holds; header rows in the
order ``--help`` names; "did you mean" for a mistyped case; ``uploads list``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

from tests.evidence.http.throwaway import ThrowawayPostgres
from tests.support.files import random_file
from tests.support.proxy import Proxy
from tests.support.server import EVIDENCE, Server

MakeServer = Callable[..., Server]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTH = 200


class Terminal:
    """``evidence ...`` with stdout and stderr on one pseudo-terminal, as in an officer's
    window: what it shows is ``screen`` (colour codes taken out; ``\\r`` kept)."""

    def __init__(self, server: Server, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
        env = {**server.env, "COLUMNS": str(WIDTH), "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        self.process = subprocess.Popen([EVIDENCE, *args], env=env, stdin=slave, stdout=slave, stderr=slave,
                                        close_fds=True)
        os.close(slave)
        self.raw = b""

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace"))

    def read(self, seconds: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:  # the other end is closed: the command has ended
                time.sleep(seconds)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} never shown:\n{self.screen[-3000:]}"
            ended = self.process.poll() is not None
            self.read()
            assert not ended or text in self.screen, f"ended without {text!r}:\n{self.screen[-3000:]}"

    def finish(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, self.screen[-3000:]
            self.read()
        for _ in range(5):
            self.read(0.05)
        os.close(self.master)
        return self.process.returncode


def on_terminal(server: Server, *args: str) -> str:
    terminal = Terminal(server, *args)
    assert terminal.finish() == 0, terminal.screen[-3000:]
    return terminal.screen


def frames_before(screen: str, text: str) -> list[str]:
    """What the terminal showed, frame by frame (rich redraws a bar after ``\\r``), up to ``text``."""
    return re.split(r"[\r\n]", screen[:screen.index(text)])


def officer(make_server: MakeServer) -> tuple[Server, str, str]:
    server = make_server()
    token = server.token()
    return server, token, server.case("OP-HALFORD")


# -- bars and result lines -----------------------------------------------------------------------


def test_each_bar_reaches_100_and_each_result_has_a_line_of_its_own(make_server: MakeServer,
                                                                     tmp_path: Path) -> None:
    server, token, case = officer(make_server)
    first, second = tmp_path / "CCTV 01.mp4", tmp_path / "statement.pdf"
    random_file(first, 3 * 1024 * 1024 + 17)
    random_file(second, 5000)
    screen = on_terminal(server, "upload", str(first), str(second), "--case", case, "--server", server.url,
                         "--token", token, "--chunk-size", "1MiB")

    results = [line for line in screen.replace("\r", "").splitlines() if line.endswith(("CCTV 01.mp4",
                                                                                        "statement.pdf"))]
    for path, line in zip((first, second), results, strict=True):
        assert re.fullmatch(rf"[0-9a-f]{{32}}  [0-9a-f]{{64}}  {re.escape(str(path))}", line), line
        # The last picture of the file's bar, just above its line, is the full one.
        shown = [frame for frame in frames_before(screen, line) if frame.strip()]
        assert shown[-1].startswith(f"uploading {path.name} ") and " 100% " in shown[-1], shown[-3:]
        assert screen[screen.index(line) - 1] == "\n", repr(screen[screen.index(line) - 80:][:120])


def test_piped_output_is_the_result_lines_alone(make_server: MakeServer, tmp_path: Path) -> None:
    server, token, case = officer(make_server)
    source = tmp_path / "exhibit.bin"
    random_file(source, 2 * 1024 * 1024)
    result = server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", token,
                        "--chunk-size", "1MiB")
    assert re.fullmatch(rf"[0-9a-f]{{32}}  [0-9a-f]{{64}}  {re.escape(str(source))}\n", result.stdout)
    # Not a terminal: no bar is drawn while it runs, but its end is said once, in the log.
    assert re.search(r"uploading exhibit\.bin .* 100% ", result.stderr), result.stderr


# -- outages -------------------------------------------------------------------------------------


def test_the_bar_says_it_is_waiting_while_the_server_is_unreachable(make_server: MakeServer,
                                                                     tmp_path: Path) -> None:
    server, token, case = officer(make_server)
    source = tmp_path / "CCTV 02.mp4"
    random_file(source, 6 * 1024 * 1024)
    with Proxy("127.0.0.1", server.port, upstream_rate=1e6) as proxy:
        terminal = Terminal(server, "upload", str(source), "--case", case, "--server", proxy.url, "--token", token,
                            "--chunk-size", "1MiB")
        terminal.wait_for("uploading CCTV 02.mp4")
        while proxy.upstream_bytes < 1024 * 1024:
            terminal.read()
        proxy.stop()  # as if the network went, or the server was restarted
        terminal.wait_for("waiting: the server is not reachable; 2 attempts so far, next in")
        proxy.start()
        assert terminal.finish() == 0
    screen = terminal.screen
    assert "waiting: the server is not reachable; 1 attempt so far, next in 1s" in screen
    [result] = [line for line in screen.replace("\r", "").splitlines() if line.endswith(str(source))]
    done = [frame for frame in frames_before(screen, result) if frame.strip()][-1]
    assert " 100% " in done and "waiting" not in done, done


def test_the_bar_waits_out_a_503_and_says_so(make_server: MakeServer, tmp_path: Path) -> None:
    with ThrowawayPostgres() as postgres:
        server = make_server({"EVIDENCE_DATABASE_URL": postgres.url})
        token = server.token()
        case = server.case("OP-HALFORD")
        source = tmp_path / "CCTV 03.mp4"
        random_file(source, 6 * 1024 * 1024)
        with Proxy("127.0.0.1", server.port, upstream_rate=1e6) as proxy:
            terminal = Terminal(server, "upload", str(source), "--case", case, "--server", proxy.url,
                                "--token", token, "--chunk-size", "1MiB")
            terminal.wait_for("uploading CCTV 03.mp4")
            while proxy.upstream_bytes < 1024 * 1024:
                terminal.read()
            postgres.stop()
            try:
                # The server answers 503 with Retry-After: 5, and the client waits that long.
                terminal.wait_for("waiting: the server answered 503; 1 attempt so far, next in 5s", timeout=90)
            finally:
                postgres.start()
            assert terminal.finish() == 0
        assert str(source) in terminal.screen


# -- Ctrl-C and unfinished uploads ---------------------------------------------------------------


def test_ctrl_c_says_what_the_server_holds_and_uploads_list_shows_it(make_server: MakeServer,
                                                                     tmp_path: Path) -> None:
    server, token, case = officer(make_server)
    source = tmp_path / "phone extraction.zip"
    random_file(source, 8 * 1024 * 1024)
    size = source.stat().st_size
    args = ("upload", str(source), "--case", case, "--token", token, "--chunk-size", "1MiB")
    assert server.cli("uploads", "list").stderr == "no unfinished uploads\n"

    with Proxy("127.0.0.1", server.port, upstream_rate=1e6) as proxy:
        process = subprocess.Popen([EVIDENCE, *args, "--server", proxy.url], env=server.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while proxy.upstream_bytes < 3 * 1024 * 1024:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        out, said = process.communicate(timeout=60)
        assert process.returncode == 130 and out == "" and "Traceback" not in said
        found = re.search(r"interrupted: the server has acknowledged [\d.]+ MiB of 8\.0 MiB \((\d+)%, offset (\d+) of (\d+) "
                          rf"bytes\) of {re.escape(str(source))}; run the same command again to resume from there",
                          " ".join(said.split()))
        assert found, said
        share, offset, total = (int(group) for group in found.groups())
        assert total == size and 0 < offset < size and share == 100 * offset // size
        proxy.upstream_rate = None

        # What is unfinished, as the server tells it, in the order the help names the columns.
        assert "sent (bytes the server holds), size, done, case, file" in " ".join(
            server.cli("uploads", "list", "--help").stdout.split())
        [listed] = server.cli("uploads", "list", "--token", token).stdout.splitlines()
        # At least what was acknowledged: a chunk still in the proxy's buffer may have landed since.
        sent, total_listed, done, *rest = listed.split(None, 4)
        assert offset <= int(sent) < size and rest == [case, str(source)]
        assert int(total_listed) == size and done == f"{100 * int(sent) // size}%"
        header = on_terminal(server, "uploads", "list", "--token", token).splitlines()[0]
        assert header.split() == ["SENT", "SIZE", "DONE", "CASE", "FILE"]
        # The server away (or no token): what this computer last saw acknowledged, and a word why.
        proxy.stop()
        offline = server.cli("uploads", "list", "--token", token)
        assert offline.stdout.rstrip("\n").split(None, 4) == [str(offset), str(size), f"{share}%", case, str(source)]
        assert f"{proxy.url} is not reachable" in offline.stderr
        assert "give --token" in server.cli("uploads", "list").stderr
        proxy.start()

        again = server.cli(*args, "--server", proxy.url)
        assert again.stdout.endswith(f"  {source}\n")
        assert server.cli("uploads", "list", "--token", token).stdout == ""


# -- lists and typos -----------------------------------------------------------------------------


def help_columns(server: Server, *command: str) -> list[str]:
    """The columns the command's --help names, after the colon: ``A case's items: id, state, ...``."""
    text = " ".join(server.cli(*command, "--help").stdout.split())
    named = re.search(r": ([a-z (),]+?)\.", text)
    assert named, text
    return [re.sub(r" \(.*\)", "", part).strip() for part in named.group(1).split(", ")]


def test_lists_print_a_header_row_in_the_order_help_names(make_server: MakeServer, tmp_path: Path) -> None:
    server, token, case = officer(make_server)
    source = tmp_path / "cam 1.mp4"
    random_file(source, 3000)
    server.cli("upload", str(source), "--case", case, "--server", server.url, "--token", token)
    server.cli("share", "--case", case, "--to", "cps@cps.gov.uk", "--expires", "7d", "--server", server.url,
               "--token", token)
    remote = ("--case", case, "--server", server.url, "--token", token)

    items = on_terminal(server, "items", "list", *remote).splitlines()
    assert items[0].split() == ["ID", "STATE", "SIZE", "FILENAME"]
    assert [name.upper() for name in help_columns(server, "items", "list")] == items[0].split()
    assert items[1].split()[1:] == ["received", "3000", "cam", "1.mp4"]
    assert items[0].index("SIZE") + len("SIZE") == items[1].index("3000") + len("3000")  # numbers to the right

    links = on_terminal(server, "links", "list", *remote).splitlines()
    assert links[0].split() == ["ID", "STATE", "ACCESS", "USES", "EXPIRES", "TO", "ITEMS"]
    named = help_columns(server, "links", "list")
    assert named == ["id", "state", "access", "uses", "expiry", "recipient", "items"]
    assert links[1].split()[1:4] == ["live", "view", "0/-"] and "cps@cps.gov.uk" in links[1]
    for start in (found.start() for found in re.finditer(r"\S+", links[0])):  # each value under its header
        assert links[1][start] != " " and (start == 0 or links[1][start - 1] == " "), (start, links)

    admin = ("--token", server.token("admin@force.police.uk", "admin"))
    cases = on_terminal(server, "cases", "list", *admin).splitlines()
    assert [line.split() for line in cases] == [["REF", "TITLE", "OFFICERS"], [case, "-", "officer@force.police.uk"]]
    assert help_columns(server, "cases", "list") == ["reference", "title", "assigned officers"]
    assert cases[0].index("OFFICERS") == cases[1].index("officer@")

    # Piped into another program: the rows alone, as before.
    assert [line.split() for line in server.cli("cases", "list", *admin).stdout.splitlines()] == [
        line.split() for line in cases[1:]]
    piped = server.cli("items", "list", *remote).stdout.splitlines()
    assert piped == items[1:]
    # (the header's widths count on a terminal only)
    assert [line.split() for line in server.cli("links", "list", *remote).stdout.splitlines()] == [
        line.split() for line in links[1:]]


def test_a_mistyped_case_gets_a_suggestion(make_server: MakeServer, tmp_path: Path) -> None:
    server, token, _ = officer(make_server)
    server.case("OP-ELSEWHERE", officer="someone.else@force.police.uk")
    source = tmp_path / "cam 1.mp4"
    random_file(source, 1000)
    remote = ("--server", server.url, "--token", token)

    def said(*args: str) -> str:
        result = server.cli(*args, check=False)
        assert result.returncode == 3 and "Traceback" not in result.stderr
        return " ".join(result.stderr.split())

    assert said("upload", str(source), "--case", "OP-HALFRD", *remote).endswith("Did you mean OP-HALFORD?")
    assert said("items", "list", "--case", "op-halford ", *remote).endswith("Did you mean OP-HALFORD?")
    assert said("links", "list", "--case", "OP-HALFORDD", *remote).endswith("Did you mean OP-HALFORD?")
    assert said("share", "--case", "OP-HALFROD", "--to", "cps@cps.gov.uk", "--expires", "1d",
                *remote).endswith("Did you mean OP-HALFORD?")
    # Only the officer's own cases are offered: nothing is learnt of others' by guessing.
    assert "Did you mean" not in said("items", "list", "--case", "OP-ELSEWHER", *remote)
    # Nothing close: the plain message.
    assert said("items", "list", "--case", "OP-ZZZ", *remote) == (
        "error: case OP-ZZZ not found among the cases you are assigned to")
    # On the server host the same: a person is offered the cases they may see, an admin all of them.
    assert said("share", "--case", "OP-HALFROD", "--to", "cps@cps.gov.uk", "--expires", "1d",
                "--token", token).endswith("Did you mean OP-HALFORD?")
    assert "Did you mean" not in said("items", "list", "--case", "OP-ELSEWHER", "--token", token)
    admin = server.token("admin@force.police.uk", "admin")
    assert said("items", "list", "--case", "OP-ELSEWHER", "--token", admin).endswith("Did you mean OP-ELSEWHERE?")
