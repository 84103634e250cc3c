"""What every command shares (evidence.cli.common): settings from the command line over
the environment, and errors shown as a message and an exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evidence.cli.common import friendly, settings_of
from evidence.errors import Conflict, NotFound


@click.command()
@click.argument("what")
@friendly
def command(what: str) -> None:
    """Fails in the way it is told to."""
    if what == "missing":
        raise NotFound("no such thing")
    if what == "clash":
        raise Conflict("it is there already")
    if what == "bug":
        raise RuntimeError("a bug is not an EvidenceError")
    click.echo(f"did {what}")


@pytest.mark.parametrize(("what", "code", "said"), [
    ("missing", 3, "error: no such thing"), ("clash", 5, "error: it is there already"), ("it", 0, ""),
])
def test_errors_are_a_message_and_an_exit_code(what: str, code: int, said: str) -> None:
    result = CliRunner().invoke(command, [what])
    assert result.exit_code == code
    assert result.stderr.strip() == said
    if code == 0:
        assert result.stdout == "did it\n"


def test_anything_else_is_not_hidden() -> None:
    result = CliRunner().invoke(command, ["bug"])
    assert isinstance(result.exception, RuntimeError)


def test_friendly_keeps_the_commands_name_and_help() -> None:
    assert command.help == "Fails in the way it is told to."
    assert command.callback is not None and command.callback.__name__ == "command"


def test_settings_from_the_command_line_win_and_none_means_unset(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_PORT", "9000")
    monkeypatch.setenv("EVIDENCE_HOST", "127.0.0.2")
    ctx = click.Context(command, obj={"data_dir": str(tmp_path)})
    settings = settings_of(ctx, port=8123, host=None)
    assert settings.port == 8123  # given: it wins over the environment
    assert settings.host == "127.0.0.2"  # not given (None): the environment's
    assert settings.data_path == tmp_path
