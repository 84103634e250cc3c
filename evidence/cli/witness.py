"""``evidence witness``: run a witness that cosigns other forces' ledgers (C2SP tlog-witness)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evidence.cli.common import err
from evidence.filemodes import private_umask


@click.group("witness")
def witness_group() -> None:
    """Witness another force's ledger: keep its latest checkpoint, cosign what extends it."""


@witness_group.command("keygen")
@click.argument("name")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Where to write the signing key (mode 0600; never overwritten)")
def keygen(name: str, out: str) -> None:
    """Write a witness signing key for NAME (e.g. witness.force.police.uk) and print its verifier key."""
    from evidence.witness import keys

    try:
        cosigner = keys.generate(name, Path(out))
    except FileExistsError:
        err.print(f"[red]error:[/] {out} exists: a witness key is never overwritten", highlight=False)
        sys.exit(1)
    except ValueError as error:
        err.print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(2)
    click.echo(cosigner.vkey())


@witness_group.command("serve")
@click.option("--key", "key", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The witness's signing key (from `evidence witness keygen`)")
@click.option("--log", "logs", multiple=True, required=True, metavar="ORIGIN=VERIFIER_KEY",
              help="A log to witness: its origin and its verifier key (`evidence audit public-key`); repeatable")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8100, show_default=True)
@click.option("--state", "state", type=click.Path(file_okay=False), default="./witness-state", show_default=True,
              help="Folder for the latest cosigned checkpoint of each log (keep it: it is what makes a fork visible)")
def serve(key: str, logs: tuple[str, ...], host: str, port: int, state: str) -> None:
    """Serve POST /add-checkpoint for the given logs."""
    private_umask()
    import uvicorn

    from evidence.witness import keys
    from evidence.witness.server import create_app, parse_logs
    from evidence.witness.state import StateStore

    try:
        cosigner = keys.load(Path(key))
        configured = parse_logs(logs)
    except (OSError, ValueError) as error:
        err.print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(2)
    app = create_app(cosigner, configured, StateStore(Path(state)))
    err.print(f"witness {cosigner.vkey()} on http://{host}:{port} for {', '.join(sorted(configured))}",
              highlight=False, soft_wrap=True)
    # One process: a log's state is checked and written under its lock (evidence.witness.state).
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=64,
                timeout_keep_alive=30)
