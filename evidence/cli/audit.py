"""``evidence audit``: verify the ledger, show checkpoints and keys, export and check reports,
and check that stored objects are still the bytes that were stored (fixity)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.orm import Session

from audit import NoteVerifier, VerificationError, verify_consistency
from audit.cosignature import CosignatureVerifier
from evidence import custody, fixity
from evidence.cli.common import P, R, err, friendly, local_runtime
from evidence.custody import cosignatures, ledger, report
from evidence.custody import verify as ledger_check
from evidence.errors import NotFound


@click.group("audit")
def audit_group() -> None:
    """The custody ledger: verification, checkpoints, reports."""


def _witness_options(command: Callable[P, R]) -> Callable[P, R]:
    command = click.option("--quorum", type=click.IntRange(min=1), default=None,
                           help="How many of the --witness keys must have cosigned [all given]")(command)
    return click.option("--witness", "witness_keys", multiple=True, metavar="VERIFIER_KEY",
                        help="A witness's verifier key (or a file holding it): its cosignature counts; repeatable"
                        )(command)


def _witnesses(keys: tuple[str, ...], quorum: int | None) -> tuple[list[CosignatureVerifier], int]:
    if quorum is not None and not keys:
        raise click.UsageError("--quorum needs --witness keys")
    try:
        found = [CosignatureVerifier.from_vkey(_key_text(key)) for key in keys]
    except VerificationError as error:
        raise click.BadParameter(str(error), param_hint="--witness") from None
    wanted = len(found) if quorum is None else quorum
    if wanted > len({w.vkey() for w in found}):
        raise click.BadParameter(f"a quorum of {wanted} needs {wanted} different witness keys", param_hint="--quorum")
    return found, wanted


def _key_text(key: str) -> str:
    return Path(key).read_text().strip() if Path(key).is_file() else key.strip()


@audit_group.command("verify")
@click.option("--checkpoint", "kept", type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint kept earlier: prove the ledger today extends it")
@_witness_options
@click.pass_context
@friendly
def verify(ctx: click.Context, kept: str | None, witness_keys: tuple[str, ...], quorum: int | None) -> None:
    """Recompute the whole ledger and check every checkpoint; exit 0 only if all hold. With
    --witness, the latest checkpoint must also carry a quorum of their cosignatures."""
    witnesses, wanted = _witnesses(witness_keys, quorum)
    rt = local_runtime(ctx)
    keys = rt.ledger_keys
    with rt.db.sessions() as session:
        if kept is not None:
            _verify_against(session, keys, Path(kept).read_text())
        else:
            result = ledger_check.verify(session, keys.verifier, keys.origin)
            if not result.ok:
                where = f"first bad entry: {result.seq}: " if result.seq is not None else ""
                err.print(f"[red]ledger verification FAILED[/] {where}{result.problem}", highlight=False)
                sys.exit(1)
            click.echo(f"ok: {result.entries} entries and {result.checkpoints} checkpoints verify")
        if witnesses:
            try:
                size, found = cosignatures.check_latest(session, keys, witnesses, wanted)
            except VerificationError as error:
                err.print(f"[red]witness check FAILED[/] on the latest checkpoint: {error}", highlight=False)
                sys.exit(1)
            click.echo(f"ok: the checkpoint at size {size} carries {len(found)} valid cosignature(s)"
                       f" ({', '.join(sorted(c.name for c in found.values()))}); {wanted} needed")


def _verify_against(session: Session, keys: ledger.Keys, note: str) -> None:
    try:
        old = ledger.read_checkpoint(note, keys.verifier, keys.origin)
        size = ledger.size(session)
        if old.size > size:
            raise VerificationError(f"the ledger has {size} entries, fewer than the {old.size} the checkpoint covers")
        verify_consistency(old.size, size, ledger.consistency_proof(session, old.size, size), old.root,
                           ledger.root(session, size))
    except VerificationError as error:
        err.print(f"[red]ledger verification FAILED[/] against the kept checkpoint: {error}", highlight=False)
        sys.exit(1)
    click.echo(f"ok: the ledger ({size} entries) extends the kept checkpoint at size {old.size}")


@audit_group.command("checkpoint")
@click.pass_context
@friendly
def checkpoint(ctx: click.Context) -> None:
    """Print the latest signed checkpoint (signing one first if entries are not yet covered)."""
    rt = local_runtime(ctx)
    with rt.db.transaction() as session:
        ledger.sign_checkpoint(session, rt.ledger_keys, custody.SERVICE)
    with rt.db.sessions() as session:
        found = ledger.latest_checkpoint(session)
        if found is None:  # never: one was signed just above if none covered the ledger
            raise NotFound("the ledger has no signed checkpoint")
        click.echo(found.note, nl=False)


@audit_group.command("public-key")
@click.pass_context
@friendly
def public_key(ctx: click.Context) -> None:
    """Print the ledger's verifier key (signed-note form)."""
    click.echo(local_runtime(ctx).ledger_keys.signer.verifier_key())


@audit_group.command("report")
@click.argument("item_id")
@click.option("--format", "fmt", type=click.Choice(sorted(report.FORMATS)), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.pass_context
@friendly
def export_report(ctx: click.Context, item_id: str, fmt: str, output: str) -> None:
    """Write an item's custody report, with inclusion proofs against a signed checkpoint."""
    rt = local_runtime(ctx)
    with rt.db.transaction() as session:
        data = report.export(session, rt.ledger_keys, item_id, fmt, custody.SERVICE)
    Path(output).write_bytes(data)
    click.echo(output)


@audit_group.command("verify-report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--public-key", "key", required=True,
              help="The ledger's verifier key (as printed by `evidence audit public-key`), or a file holding it")
@_witness_options
@friendly
def verify_report(file: str, key: str, witness_keys: tuple[str, ...], quorum: int | None) -> None:
    """Check a report offline, with the ledger's public key alone (and, with --witness, that
    its checkpoint carries a quorum of those witnesses' cosignatures)."""
    witnesses, wanted = _witnesses(witness_keys, quorum)
    text = Path(key).read_text().strip() if Path(key).is_file() else key.strip()
    try:
        verifier = NoteVerifier.from_vkey(text)
        checked = report.verify_report(Path(file).read_bytes(), verifier)
        found = report.verify_cosignatures(checked, witnesses, wanted) if witnesses else {}
    except VerificationError as error:
        err.print(f"[red]report REJECTED:[/] {error}", highlight=False)
        sys.exit(1)
    if witnesses:
        click.echo(f"ok: its checkpoint carries {len(found)} valid cosignature(s)"
                   f" ({', '.join(sorted(c.name for c in found.values()))}); {wanted} needed")
    item = checked["item"]
    click.echo(
        f"ok: {len(checked['entries'])} entries about {item['filename']} (item {item['id']}) are in the ledger"
        f" as of its signed checkpoint at size {checked['tree_size']}"
    )


@audit_group.command("fixity")
@click.option("--due", "scope", flag_value=fixity.DUE, default=True,
              help="Check what the schedule would check now: objects whose turn in the cycle has come [default]")
@click.option("--all", "scope", flag_value=fixity.ALL, help="Check every stored object now")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Check at most N objects (originals and working copies; a working copy's parts go with it)")
@click.pass_context
@friendly
def audit_fixity(ctx: click.Context, scope: str, limit: int | None) -> None:
    """Re-read and re-hash stored originals and working copies, compare each SHA-256 with the one
    recorded when it was stored, and check that originals are still write-once (on S3: Object
    Lock retention no shorter than policy). Recorded as the service account: one fixity.checked
    entry for the run, a fixity.failed entry per object that differs or is missing. Exit 1,
    naming the items, if any does."""
    rt = local_runtime(ctx)

    def found(finding: fixity.Finding) -> None:
        err.print(f"[red]FAILED[/] item {finding.item_id} (case {finding.case_ref}): {finding.problem.describe()}",
                  highlight=False, soft_wrap=True)

    try:
        outcome = fixity.audit(rt, fixity.Options(scope=scope, limit=limit), on_finding=found)
    except KeyboardInterrupt:
        err.print("interrupted: the checks made so far are recorded", highlight=False)
        sys.exit(130)
    finally:
        rt.close()
    click.echo(_fixity_summary(outcome))
    if outcome.findings:
        items = outcome.failed_items
        err.print(f"[red]fixity audit FAILED[/]: {len(outcome.findings)} object(s) of {len(items)} item(s) differ,"
                  " are missing or are no longer write-once:", highlight=False, soft_wrap=True)
        for item_id in items:
            click.echo(f"FAILED {item_id}")
        sys.exit(1)


def _fixity_summary(outcome: fixity.Outcome) -> str:
    mib = outcome.bytes / (1024 * 1024)
    speed = f", {mib / outcome.seconds:.1f} MiB/s" if outcome.seconds > 0 and outcome.bytes else ""
    what = (f"{outcome.objects} object(s) ({outcome.originals} original(s), {outcome.working_copies} working"
            f" cop{'y' if outcome.working_copies == 1 else 'ies'}, {outcome.parts} part(s)), {mib:.1f} MiB in"
            f" {outcome.seconds:.1f} s{speed}, read with {outcome.reader}")
    if not outcome.objects:
        what = "nothing due now" if outcome.scope == fixity.DUE else "nothing stored to check"
    extra = ""
    if outcome.stopped:
        extra += f"; stopped early ({outcome.stopped})"
    if outcome.left_due:
        extra += f"; {outcome.left_due} object(s) still due"
    verdict = "ok" if not outcome.findings else "checked"
    return f"{verdict}: {what}{extra}; run {outcome.run}"
