"""``evidence``: the command line for operators, officers and auditors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
from sqlalchemy import select

from evidence import cases, custody
from evidence.accounts import users as accounts
from evidence.accounts.access import actor_of, require_role
from evidence.cli.actor import acting, token_option
from evidence.cli.audit import audit_group
from evidence.cli.common import err, friendly, local_runtime, settings_of
from evidence.cli.items import items_group
from evidence.cli.links import links_group, share
from evidence.cli.retention import dispose, hold, outcome, release, retention_group
from evidence.cli.sizes import SizeType
from evidence.cli.table import Column, print_table
from evidence.cli.uploads import uploads_list
from evidence.cli.witness import witness_group
from evidence.errors import NotFound, Unavailable
from evidence.filemodes import private_umask
from evidence.models import Case, Role, User
from evidence.runtime import Runtime
from evidence.settings import Settings


@click.group()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data folder of an embedded instance [env EVIDENCE_DATA_DIR; ./var]")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None) -> None:
    """Digital evidence transfer: upload, process, share and audit."""
    ctx.obj = {"data_dir": data_dir}


# How long uvicorn's supervisor waits for an API process to answer before replacing it.
HEALTHCHECK_SECONDS = 30


@main.command()
@click.option("--host", default=None, help="Address to listen on [127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on [8000]")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="API processes on this node, all on one port (a process uses one core)")
@click.pass_context
@friendly
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Run the API, the tus endpoint and the pages (and, embedded, a worker)."""
    private_umask()
    import uvicorn

    from evidence.http.access_log import uvicorn_log_config
    from evidence.http.factory import IMPORT_NAME, export_settings
    from evidence.http.limits import uvicorn_options

    settings = settings_of(ctx, host=host, port=port)
    # Once, here, before any API process starts: a bad setting or an unusable data dir is a
    # plain message, and the start-up work is not done N times over.
    _prepare(settings)
    export_settings(settings)
    worker = _start_embedded_worker(settings) if settings.embedded_worker else None
    err.print(f"evidence server on http://{settings.host}:{settings.port} (data in {settings.data_path}, "
              f"{workers} API process{'es' if workers > 1 else ''})")
    err.print(f"Open {settings.effective_public_url}/app/ in a browser and sign in with an access token from "
              "`evidence users add EMAIL --role officer` (officers also need a case: an admin's "
              "`evidence cases create REF --assign EMAIL --token ADMIN_TOKEN`).")
    try:
        # The app by name, built in each process (evidence.http.factory); uvicorn's supervisor
        # replaces a process that dies. httptools sets no limit on a request's head: the
        # bounded protocol refuses one that grows past what the header limits allow.
        uvicorn.run(IMPORT_NAME, factory=True, workers=workers, host=settings.host, port=settings.port,
                    log_level="info", proxy_headers=True,
                    # A process just started imports the whole app before it answers the
                    # supervisor's ping: on a busy node that can take longer than uvicorn's 5 s,
                    # and a process killed as "hung" while starting would start again, for ever.
                    timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
                    # Our access log (evidence.access_log) names links by id; uvicorn's prints their tokens.
                    access_log=False, log_config=uvicorn_log_config(),
                    **uvicorn_options(settings))
    finally:
        if worker is not None:
            _stop(worker)


def _prepare(settings: Settings) -> None:
    """Migrations, storage check, and (embedded) queueing again the items the last shutdown
    interrupted: at start nothing can legitimately be in progress."""
    from evidence.http.outage import outage_of
    from evidence.runtime import Runtime

    rt = Runtime.build(settings)
    try:
        rt.upgrade_schema()
        rt.vault.ensure_ready()
        if settings.embedded_worker:
            _resume_interrupted(settings, rt)
    except Exception as error:
        outage = outage_of(error)
        if outage is None:
            raise
        raise Unavailable(f"cannot start: {outage.message.split(';')[0]} ({type(error).__name__})") from error
    finally:
        rt.close()


def _resume_interrupted(settings: Settings, rt: Runtime) -> None:
    from evidence.http.outage import outage_of
    from transcode.app import make_celery, resume_interrupted

    try:
        resumed = resume_interrupted(make_celery(settings), rt)
    except Exception as error:
        found = outage_of(error)
        if found is None or found.dependency != "broker":
            raise
        # Not fatal: the upkeep queues received items again once the queue is back.
        err.print(f"[yellow]the task queue is unavailable ({type(error).__name__}); "
                  "interrupted items are queued again when it is back[/]")
        return
    if resumed:
        err.print(f"queued {len(resumed)} item(s) interrupted by the last shutdown")


# The embedded worker's scheduled fixity audit: 20 s of reading every 5 minutes (at the default
# 32 MiB/s, about 1 TB a week: every object of a small force's embedded store within the cycle).
EMBEDDED_FIXITY_SLICE = 20.0
EMBEDDED_FIXITY_INTERVAL = 300.0


def _start_embedded_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """The embedded mode's worker: the same tasks as production, in a child process that
    lives and dies with the server; it runs beat too (the scheduled fixity audit)."""
    from transcode.app import declare_queues, make_celery

    if settings.effective_broker_url.startswith("sqla+"):  # the embedded SQLite broker: always there
        declare_queues(make_celery(settings))
    env = {**os.environ, "EVIDENCE_DATA_DIR": str(settings.data_path)}
    for name in ("database_url", "storage_url", "broker_url"):
        value = getattr(settings, name)
        if value:
            env[f"EVIDENCE_{name.upper()}"] = value
    # This one worker runs one task at a time, so a scheduled audit run holds up the officers'
    # uploads for as long as it reads: here it reads in slices of at most EMBEDDED_FIXITY_SLICE
    # seconds, asked for more often, unless the operator chose otherwise.
    if "EVIDENCE_FIXITY_RUN_SECONDS" not in env:
        env["EVIDENCE_FIXITY_RUN_SECONDS"] = str(min(settings.fixity_run_seconds, EMBEDDED_FIXITY_SLICE))
    if "EVIDENCE_FIXITY_INTERVAL_SECONDS" not in env:
        env["EVIDENCE_FIXITY_INTERVAL_SECONDS"] = str(min(settings.fixity_interval_seconds, EMBEDDED_FIXITY_INTERVAL))
    return subprocess.Popen([sys.executable, "-m", "evidence", "worker", "--beat"], env=env,
                            preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Ask Linux to send the worker SIGTERM if the server dies, even by SIGKILL, so no
    orphaned worker outlives it (a warm shutdown: the task in hand finishes or, being
    acknowledged only when done, runs again later)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the server stops its worker itself on a normal exit


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        # Tasks are acknowledged only when done: a killed one runs again on next start.
        process.kill()
        process.wait()


@main.command()
@click.option("--queues", default="ingest,transcode,fixity", show_default=True, help="Queues to take tasks from")
@click.option("--concurrency", type=int, default=None, help="Parallel tasks [EVIDENCE_WORKER_CONCURRENCY; 1]")
@click.option("--beat", is_flag=True,
              help="Also send the periodic tasks (the fixity audit): on one worker of the deployment only")
@click.pass_context
@friendly
def worker(ctx: click.Context, queues: str, concurrency: int | None, beat: bool) -> None:
    """Run a Celery worker: hashing, probing, validation, working copies, fixity audits."""
    private_umask()
    from transcode.app import make_celery, sweep_work_dirs

    settings = settings_of(ctx, worker_concurrency=concurrency)
    sweep_work_dirs(settings)
    app = make_celery(settings)
    app.worker_main(["worker", "--queues", queues, "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", *(["--beat"] if beat else [])])


@main.group()
def users() -> None:
    """Accounts and their bearer tokens."""


@users.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]))
@click.pass_context
@friendly
def users_add(ctx: click.Context, email: str, role: str) -> None:
    """Add a user (or re-issue for an existing one) and print a bearer token alone on stdout."""
    rt = local_runtime(ctx)
    with rt.db.transaction() as session:
        user = accounts.add_user(session, email, role)
        token = rt.signer.issue(user)
    click.echo(token)


@users.command("revoke")
@click.argument("email")
@click.pass_context
@friendly
def users_revoke(ctx: click.Context, email: str) -> None:
    """Make every token issued to EMAIL until now stop working (local and identity provider's)."""
    rt = local_runtime(ctx)
    with rt.db.transaction() as session:
        user = accounts.user_by_email(session, email)
        after = accounts.revoke_tokens(session, user, custody.SERVICE)
    err.print(f"tokens of {user.email} issued until {after.isoformat()} no longer work", highlight=False)


@users.command("disable")
@click.argument("email")
@click.pass_context
@friendly
def users_disable(ctx: click.Context, email: str) -> None:
    """Shut the account EMAIL: every token is refused until it is enabled again."""
    _set_disabled(ctx, email, True)


@users.command("enable")
@click.argument("email")
@click.pass_context
@friendly
def users_enable(ctx: click.Context, email: str) -> None:
    """Open a disabled account again (tokens revoked meanwhile stay revoked)."""
    _set_disabled(ctx, email, False)


def _set_disabled(ctx: click.Context, email: str, disabled: bool) -> None:
    rt = local_runtime(ctx)
    with rt.db.transaction() as session:
        user = accounts.user_by_email(session, email)
        changed = accounts.set_disabled(session, user, disabled, custody.SERVICE)
    state = "disabled" if disabled else "enabled"
    err.print(f"{user.email} {state}" if changed else f"{user.email} was already {state}", highlight=False)


@main.group("cases")
def cases_group() -> None:
    """Cases that items belong to."""


@cases_group.command("create")
@click.argument("ref")
@click.option("--title", default=None)
@click.option("--assign", "officers", multiple=True, metavar="EMAIL", help="Assign an officer (repeatable; admins)")
@token_option
@click.pass_context
@friendly
def cases_create(ctx: click.Context, ref: str, title: str | None, officers: tuple[str, ...], token: str | None) -> None:
    """Create a case with reference REF (an officer who creates one is assigned to it)."""
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.WRITERS) as (session, user):
        if officers:
            require_role(user, *cases.ASSIGNERS)
        case = cases.create_case(session, ref, title, actor_of(user), creator=user)
        for email in officers:
            cases.assign(session, case, cases.officer_account(session, email), actor_of(user))
    click.echo(case.ref)


@cases_group.command("assign")
@click.argument("ref")
@click.argument("email")
@token_option
@click.pass_context
@friendly
def cases_assign(ctx: click.Context, ref: str, email: str, token: str | None) -> None:
    """Assign the officer EMAIL to case REF (an unknown EMAIL is added as an officer; admins)."""
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.ASSIGNERS) as (session, user):
        case = cases.get_case(session, ref)
        officer = cases.officer_account(session, email)
        added = cases.assign(session, case, officer, actor_of(user))
    err.print(f"{officer.email} {'assigned to' if added else 'was already assigned to'} {case.ref}", highlight=False)


@cases_group.command("unassign")
@click.argument("ref")
@click.argument("email")
@token_option
@click.pass_context
@friendly
def cases_unassign(ctx: click.Context, ref: str, email: str, token: str | None) -> None:
    """Take the officer EMAIL off case REF (admins)."""
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.ASSIGNERS) as (session, user):
        case = cases.get_case(session, ref)
        officer = session.scalar(select(User).where(User.email == email.strip().lower()))
        if officer is None or not cases.unassign(session, case, officer, actor_of(user)):
            raise NotFound(f"{email} is not assigned to case {ref}")


# In the order the command's help names them.
CASE_COLUMNS = (Column("REF"), Column("TITLE"), Column("OFFICERS"))


@cases_group.command("list")
@token_option
@click.pass_context
@friendly
def cases_list(ctx: click.Context, token: str | None) -> None:
    """List the cases you may see: reference, title, assigned officers (shown to admins)."""
    rt = local_runtime(ctx)
    with acting(rt, token, *cases.READERS) as (session, user):

        def officers(case: Case) -> str:
            if user.role not in cases.ASSIGNERS:  # the API shows who works on a case to admins only
                return "-"
            return ",".join(officer.email for officer in cases.assignees(session, case)) or "-"

        rows = [(case.ref, case.title or "-", officers(case))
                for case in session.scalars(cases.visible_cases(user).order_by(Case.created_at))]
    print_table(CASE_COLUMNS, rows)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--case", "case_ref", required=True, help="Case reference the files belong to")
@click.option("--server", envvar="EVIDENCE_SERVER", default="http://127.0.0.1:8000", show_default=True)
@click.option("--token", envvar="EVIDENCE_TOKEN", required=True, help="Bearer token [env EVIDENCE_TOKEN]")
@click.option("--chunk-size", type=SizeType(), default="8MiB", show_default=True)
@click.option("--exhibit", default=None, help="Exhibit reference (with a single file)")
@click.option("--description", default=None)
@click.option("--framerate", default=None, help="Frame rate of raw CCTV streams")
@click.option("--retries", type=int, default=8, show_default=True, help="Retries per chunk, with back-off")
@friendly
def upload(paths: tuple[str, ...], case_ref: str, server: str, token: str, chunk_size: int,
           exhibit: str | None, description: str | None, framerate: str | None, retries: int) -> None:
    """Hash and upload files (directories recursively); run again to resume."""
    metadata = {k: v for k, v in {"exhibit": exhibit, "description": description, "framerate": framerate}.items() if v}
    client = None
    done = 0
    try:
        from evidence.cli.upload import UploadClient  # in the try: on a busy laptop the import alone takes a while

        client = UploadClient(server, token, chunk_size=chunk_size, retries=retries, console=err)
        for result in client.upload_all(paths, case_ref, metadata):
            click.echo(f"{result.item_id}  {result.sha256}  {result.path}")
            done += 1
    except KeyboardInterrupt:
        err.print(client.interrupted(done) if client else "interrupted before anything was sent", highlight=False)
        sys.exit(130)


@main.group("uploads")
def uploads_group() -> None:
    """Unfinished uploads."""


@uploads_group.command("cleanup")
@click.pass_context
@friendly
def uploads_cleanup(ctx: click.Context) -> None:
    """Remove unfinished uploads past their expiry, and partial uploads used up or never used
    in time (the server also does this on a schedule)."""
    import anyio

    from evidence.uploads.tus import build_tus

    rt = local_runtime(ctx)
    tus, _ = build_tus(rt, sweeper=custody.SERVICE)  # the service account removes them, not the schedule
    removed = anyio.run(tus.cleanup_expired)
    click.echo(f"removed {len(removed)} expired upload(s)")
    for upload_id in removed:
        click.echo(upload_id)


uploads_group.add_command(uploads_list)
main.add_command(audit_group)
main.add_command(witness_group)
main.add_command(items_group)
main.add_command(share)
main.add_command(links_group)
cases_group.add_command(outcome)
cases_group.add_command(hold)
cases_group.add_command(release)
main.add_command(retention_group)
main.add_command(dispose)

if __name__ == "__main__":
    main()
