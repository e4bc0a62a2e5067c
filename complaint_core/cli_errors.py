"""How a failure a person can cause reaches them: one line on stderr, exit 2, no traceback.

Every such failure is a ``ComplaintDeskError`` carrying the file, cell or store and the bad
value in its message (complaint_core/errors.py). Each card's click commands use these classes,
so they answer the same way whether run as ``complaint-desk …`` or on their own (tests); the
CLI's group adds what only the top level can know (a closed pipe, an unexpected error's log).
"""

from __future__ import annotations

from typing import IO, Any

import click

from .errors import ComplaintDeskError


class OneLineError(click.ClickException):
    """A usage or input problem, printed as the message alone (no "Usage:" block), exit 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=True, file=file)


class _OneLine:
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except ComplaintDeskError as exc:
            raise OneLineError(str(exc)) from None


class OneLineCommand(_OneLine, click.Command):
    """A command whose ``ComplaintDeskError`` is one line and exit 2."""


class OneLineGroup(_OneLine, click.Group):
    """A group whose subcommands' ``ComplaintDeskError`` is one line and exit 2."""
