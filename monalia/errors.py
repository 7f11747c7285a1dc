"""Errors that monalia reports to its users.

Every user mistake is a `MonaliaError`: the CLI prints its message as one line and exits
non-zero, never with a traceback.
"""

from __future__ import annotations

import re

import click

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """Text with its control characters written as escapes: a parser quoting a newline from a
    hostile file must not break the one line a user reads."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text.strip())


class MonaliaError(click.ClickException):
    """A problem the user can fix: printed as one line, exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(str(message)))

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


class ConfigError(MonaliaError):
    """The project file is missing, malformed or names something that does not exist."""

    exit_code = 2


class PluginError(MonaliaError):
    """A plugin is unknown, broken, or registered twice under one name."""

    exit_code = 2


class CatalogError(MonaliaError):
    """The catalog cannot be opened or is at a schema version this monalia cannot use."""

    exit_code = 3


class SourceUnavailable(MonaliaError):
    """A source could not be read at all (file missing, service down after every retry)."""

    exit_code = 4


class RecordError(Exception):
    """One input record is malformed: it is reported with its item key and skipped."""

    def __init__(self, message: str, item: str | None = None):
        super().__init__(message)
        self.item = item
