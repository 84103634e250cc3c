"""``evidence uploads list``: the uploads this officer began and did not finish, from the
resume records ``evidence upload`` keeps (:mod:`evidence.cli.resume`), with how much of each
the server holds now (asked with tus ``HEAD``, as the upload itself resumes).

A finished upload keeps its record (running the same command again then prints its item
instead of sending it twice), so it is asked about too and left out of the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import requests

from evidence.cli.common import err, friendly
from evidence.cli.resume import ResumeRecords, state_dir
from evidence.cli.table import Column, print_table

# (connect, read) seconds: a list should not hang on a server that is away.
TIMEOUT = (3.0, 10.0)
# In the order the command's help names them.
COLUMNS = (Column("SENT", right=True), Column("SIZE", right=True), Column("DONE", width=4, right=True),
           Column("CASE"), Column("FILE"))


@dataclass
class Unfinished:
    sent: int | None  # what the server holds; None when it could not be asked
    size: int
    case: str
    file: str
    note: str = ""  # why ``sent`` is unknown, or that the upload is gone

    def row(self) -> tuple[str, ...]:
        done = self.note or (f"{100 * self.sent // self.size}%" if self.sent is not None and self.size else "?")
        return ("?" if self.sent is None else str(self.sent)), str(self.size), done, self.case, self.file


@click.command("list")
@click.option("--token", envvar="EVIDENCE_TOKEN", default=None,
              help="Bearer token, to ask the server how much it holds [env EVIDENCE_TOKEN]")
@friendly
def uploads_list(token: str | None) -> None:
    """Unfinished uploads: sent (bytes the server holds), size, done, case, file. Run the same
    `evidence upload` command again to resume one."""
    records = ResumeRecords(state_dir() / "uploads", lambda message: err.print(f"[yellow]warning:[/] {message}"))
    http = requests.Session()
    if token and token.strip():
        http.headers["Authorization"] = f"Bearer {token.strip()}"
    unreachable: set[str] = set()
    found = [upload for record in records.records()
             if record.get("finished") != "yes" and (upload := _ask(http, record, unreachable)) is not None]
    if not found:
        err.print("no unfinished uploads")
        return
    print_table(COLUMNS, (upload.row() for upload in found))
    if not token:
        err.print("sent is what this computer last saw acknowledged; give --token (or set EVIDENCE_TOKEN) "
                  "to ask the server", highlight=False)
    for server in sorted(unreachable):
        err.print(f"[yellow]{server} is not reachable: sent is what this computer last saw acknowledged[/]",
                  highlight=False)


def _ask(http: requests.Session, record: dict[str, str], unreachable: set[str]) -> Unfinished | None:
    """The record as a row, or None when the server says the upload is complete."""
    # The key is "SERVER|CASE|SHA256|SIZE" (evidence.cli.upload); older records kept only that.
    server, case, sha256, size_text = (record["key"].rsplit("|", 3) + ["", "", "", "0"])[:4]
    size = int(size_text) if size_text.isdigit() else 0
    # Until the server says, what this computer last saw the server acknowledge (if it was kept).
    seen = record.get("sent", "")
    upload = Unfinished(int(seen) if seen.isdigit() else None, size, record.get("case", case),
                        record.get("path", f"(sha256 {sha256[:12]}...)"))
    if server in unreachable:
        return upload
    try:
        answer = http.head(record["url"], headers={"Tus-Resumable": "1.0.0"}, timeout=TIMEOUT)
    except requests.RequestException:
        unreachable.add(server)
        return upload
    if answer.status_code in (404, 410):
        upload.sent, upload.note = None, "gone from the server: running the upload again starts it afresh"
    elif answer.status_code == 200:
        upload.sent = int(answer.headers.get("Upload-Offset", "0"))
        upload.size = int(answer.headers.get("Upload-Length", size))
        if upload.sent >= upload.size:
            return None
    return upload
