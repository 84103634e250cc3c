"""What every CLI command shares: settings, the local runtime, friendly errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console

from evidence.errors import EvidenceError
from evidence.runtime import Runtime
from evidence.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True)


def friendly(command: F) -> F:
    """Users see a message and an exit code, never a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EvidenceError as error:
            err.print(f"[red]error:[/] {error.message}", highlight=False)
            sys.exit(error.exit_code)

    return run  # type: ignore[return-value]


def settings_of(ctx: click.Context, **overrides: Any) -> Settings:
    values = {k: v for k, v in {**ctx.obj, **overrides}.items() if v is not None}
    return Settings(**values)


def local_runtime(ctx: click.Context) -> Runtime:
    """For commands an operator runs on the server host, against its data dir."""
    from evidence import migrate

    rt = Runtime.build(settings_of(ctx))
    migrate.upgrade(rt.db.engine)
    return rt
