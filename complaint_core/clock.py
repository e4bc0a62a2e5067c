"""The one ``--now`` every command takes: an ISO-8601 time, with or without a zone.

Excel times are naive shop-local times, so every rule runs on a naive "now" in the shop's
zone (设置 时区, default Asia/Shanghai). A time given with an offset (``…+00:00``, ``…Z``) is
converted to that zone; one without is taken as the shop's own wall clock. Anything else is
refused when the command starts (``sync --watch`` included), never an hour later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from .cli_errors import OneLineError
from .errors import BadClock

DEFAULT_ZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Clock:
    """A fixed moment from ``--now``, or the real clock when ``moment`` is None."""

    moment: datetime | None = None

    def now(self, zone: str | None = None) -> datetime:
        """"Now" as a naive time in ``zone`` (the shop's), to the second."""
        tz = _zone(zone)
        if self.moment is None:
            return datetime.now(tz).replace(tzinfo=None, microsecond=0)
        if self.moment.tzinfo is None:
            return self.moment
        return self.moment.astimezone(tz).replace(tzinfo=None)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)   # a 设置 time zone nobody knows: validation reports it


def parse_clock(text: str | None) -> Clock:
    if text is None or not str(text).strip():
        return Clock()
    try:
        return Clock(datetime.fromisoformat(str(text).strip()))
    except ValueError:
        raise BadClock(text) from None


if TYPE_CHECKING:   # click 8.5 declares ParamType generic (value, input); older ones do not
    _ParamBase = click.ParamType[Clock, Any]
else:
    _ParamBase = click.ParamType

F = TypeVar("F", bound=Callable[..., Any])


class ClockParam(_ParamBase):
    """``--now`` for click: parsed once, when the command line is read."""

    name = "ISO"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Clock:
        if isinstance(value, Clock):
            return value
        try:
            return parse_clock(value)
        except BadClock as exc:   # said when the command line is read, before any work
            raise OneLineError(str(exc)) from None


CLOCK = ClockParam()


def now_option(help_text: str = "把此时间当作“现在”，结果可重现（可带时区，如 +08:00）/ "
                                "Treat this ISO-8601 time (optionally with a zone) as now.") -> Callable[[F], F]:
    """The ``--now`` option every command shares (its value is a :class:`Clock`)."""
    return click.option("--now", "clock", type=CLOCK, default="", metavar="ISO", help=help_text)
