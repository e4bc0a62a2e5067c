"""The small surface of Excel the add-in uses, as a protocol.

Every method is ONE call into Excel (one cross-process COM/AppleScript round trip in the
real adapter), and none of them works cell by cell, so the number of Excel calls of a
button press does not grow with the number of complaint rows.

Every method exists on Excel for Windows and Excel for Mac alike (xlwings' own API, never
the Windows-only COM names under ``.api``). Where a platform cannot do something optional
(hide a sheet, read the selection, pause screen updating) the adapter carries on without it
and ``skipped()`` returns one line per thing left out, which the button's message shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

# What ``quiet()`` switches off for the run (kwargs of xlwings' App.properties), and the
# state Excel normally has; both restored afterwards, also when the button fails.
NORMAL_APP_STATE: dict[str, Any] = {"screen_updating": True, "calculation": "automatic",
                                    "enable_events": True, "display_alerts": True}
QUIET_APP_STATE: dict[str, Any] = {"screen_updating": False, "calculation": "manual",
                                   "enable_events": False, "display_alerts": False}


class WorkbookPort(Protocol):
    def sheet_names(self) -> list[str]: ...

    def read_used_range(self, sheet: str) -> tuple[list[list[Any]], int, int]:
        """(grid, Excel row of its first row, 0-based column of its first column)."""

    def write_block(self, sheet: str, row: int, col: int, values: list[list[Any]],
                    number_format: str | None = None) -> None:
        """Write a 2-D block whose top-left cell is (Excel row, 0-based column)."""

    def replace_sheet(self, sheet: str, values: list[list[Any]], *, hidden: bool = False) -> None:
        """Create or clear ``sheet`` and write ``values`` at A1."""

    def selected_rows(self, sheet: str) -> list[int]: ...

    def alert(self, message: str, title: str = "投诉台账") -> None: ...

    def quiet(self) -> AbstractContextManager[None]:
        """Screen updating, calculation and events off; restored afterwards, also on error."""

    def now(self) -> datetime: ...

    def app_identity(self) -> tuple[str, str]:
        """(version, install path) of the program xlwings is talking to; "" where it gives none."""

    def book_name(self) -> str: ...

    def skipped(self) -> list[str]:
        """One line per optional feature this platform could not do during the run (no Excel call)."""


Rows = Iterator[list[Any]]
