"""What every CLI command shares: settings, the local runtime, friendly errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console

from evidence.errors import EvidenceError
from evidence.runtime import Runtime
from evidence.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
err = Console(stderr=True)


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Users see a message and an exit code, never a traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EvidenceError as error:
            err.print(f"[red]error:[/] {error.message}", highlight=False)
            sys.exit(error.exit_code)

    return run


def settings_of(ctx: click.Context, **overrides: Any) -> Settings:
    values = {k: v for k, v in {**ctx.obj, **overrides}.items() if v is not None}
    return Settings(**values)


def local_runtime(ctx: click.Context) -> Runtime:
    """For commands run on the server host, against its data dir."""
    rt = Runtime.build(settings_of(ctx))
    rt.upgrade_schema()
    return rt
