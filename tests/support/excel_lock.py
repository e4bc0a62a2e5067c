"""Excel on Windows holding a workbook open, at the one seam Linux lacks.

Windows refuses the rename of a new file onto a workbook Excel has open, and an open of it for
writing; Linux refuses neither. ``excel_holds(path)`` makes ``os.replace`` and
``complaint_core.atomic``'s ``open`` refuse exactly those for ``path`` while ``open_now`` is
set, with Windows' error, and nothing else: every other file, read and rename is real.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from complaint_core import atomic


class Excel:
    """Whether Excel holds the workbook open, and what that refuses while it does."""

    def __init__(self, workbook: Path) -> None:
        self.workbook = workbook.resolve()
        self.open_now = False
        self.refused = 0

    def _held(self, path: object) -> bool:
        return self.open_now and Path(os.fsdecode(path)).resolve() == self.workbook

    def replace(self, real: Callable[..., None]) -> Callable[..., None]:
        def replace(src: object, dst: object) -> None:
            if self._held(dst):
                self.refused += 1
                raise PermissionError(13, "The process cannot access the file because it is being used by another process")
            real(src, dst)
        return replace

    def opener(self, real: Callable[..., object]) -> Callable[..., object]:
        def open_(path: object, mode: str = "r", *args: object, **kwargs: object) -> object:
            if self._held(path) and any(m in mode for m in "wa+"):
                raise PermissionError(13, "Permission denied")
            return real(path, mode, *args, **kwargs)
        return open_


@pytest.fixture
def excel_holds(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Excel]:
    def hold(workbook: Path) -> Excel:
        excel = Excel(workbook)
        monkeypatch.setattr(atomic.os, "replace", excel.replace(os.replace))
        monkeypatch.setattr(atomic, "open", excel.opener(builtins.open), raising=False)
        return excel
    return hold
