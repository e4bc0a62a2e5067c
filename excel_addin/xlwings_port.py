"""The real Excel adapter: a thin layer of whole-range xlwings calls (open-source xlwings only).

Nothing here loops over cells, and nothing touches ``.api``: on Windows that is a COM object,
on a Mac an AppleScript reference without the COM names (``FormatConditions``, ``Interior``
…), so one call through it is enough to break a button on one of the two. The marks are
coloured by conditional formats the template already holds (they read the hidden marks
sheet), so the add-in only writes values. It cannot run without Excel, so everything it
calls is tested through ``MemoryPort`` and through an xlwings stand-in in Windows and in Mac
mode (tests/support/xlwings_standin.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xlwings

from complaint_core.textsafe import is_dangerous

from .port import QUIET_APP_STATE


def _safe(values: list[list[Any]]) -> list[list[Any]]:
    # A value written through COM is parsed like typed input: '=...' would become a formula.
    return [["'" + v if is_dangerous(v) else v for v in row] for row in values]


class XlwingsPort:
    def __init__(self, book: xlwings.Book) -> None:
        self.book = book
        self._skipped: list[str] = []

    def _skip(self, line: str, exc: BaseException) -> None:
        self._skipped.append(f"{line}（{type(exc).__name__}）")

    def skipped(self) -> list[str]:
        return list(self._skipped)

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def read_used_range(self, sheet: str) -> tuple[list[list[Any]], int, int]:
        rng = self.book.sheets[sheet].used_range
        values = rng.options(ndim=2).value
        return values, rng.row, rng.column - 1

    def write_block(self, sheet: str, row: int, col: int, values: list[list[Any]],
                    number_format: str | None = None) -> None:
        if not values:
            return
        rng = self.book.sheets[sheet].range((row, col + 1)).resize(len(values), len(values[0]))
        if number_format:
            rng.number_format = number_format
        rng.options(ndim=2).value = _safe(values)

    def replace_sheet(self, sheet: str, values: list[list[Any]], *, hidden: bool = False) -> None:
        names = self.sheet_names()
        if sheet in names:
            sht = self.book.sheets[sheet]
            sht.clear()
        else:
            sht = self.book.sheets.add(sheet, after=self.book.sheets[len(names) - 1])
        if values:
            sht.range("A1").options(ndim=2).value = _safe(values)
        if hidden:
            try:
                sht.visible = False
            except Exception as exc:  # noqa: BLE001 - cosmetic: the marks work from a visible sheet too
                self._skip(f"本平台不能隐藏工作表“{sheet}”，已跳过（不影响校验） / could not hide the sheet", exc)

    def selected_rows(self, sheet: str) -> list[int]:
        try:
            sel = self.book.app.selection
            if sel is None or sel.sheet.name != sheet:
                return []
            return list(range(sel.row, sel.row + sel.rows.count))
        except Exception as exc:  # noqa: BLE001 - without the selection every row is filled
            self._skip("本平台读不到选中的行，已按全部行处理 / selection unavailable: all rows", exc)
            return []

    def alert(self, message: str, title: str = "投诉台账") -> None:
        self.book.app.alert(message, title=title)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        with ExitStack() as stack:
            try:
                stack.enter_context(self.book.app.properties(**QUIET_APP_STATE))
            except Exception as exc:  # noqa: BLE001 - slower, but the button still works
                self._skip("本平台不能暂停屏幕刷新和自动计算，已跳过（只会慢一些） / could not pause updating", exc)
            yield

    def now(self) -> datetime:
        return datetime.now().replace(microsecond=0)

    def app_identity(self) -> tuple[str, str]:
        app = self.book.app
        out = []
        for attr in ("version", "path"):
            try:
                out.append(str(getattr(app, attr) or ""))
            except Exception:  # noqa: BLE001 - a program that cannot say is judged on what it did say
                out.append("")
        return out[0], out[1]

    def book_name(self) -> str:
        return str(self.book.name)
