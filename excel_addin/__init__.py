"""The Excel add-in's Python side: ``dispatch`` is the only function the VBA calls.

Kept light to import (every click starts a fresh Python on Windows): xlwings and the
engine are imported inside the call.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .port import WorkbookPort

LOG_NAME = "complaintdesk-addin.log"


def log_path() -> Path:
    base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), ".complaintdesk")
    folder = Path(base) / ("ComplaintDesk" if "LOCALAPPDATA" in os.environ else "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / LOG_NAME


def _log_to_file() -> None:
    """Send the add-in's log to the per-user file (a console would be lost when Excel runs us)."""
    log = logging.getLogger("excel_addin")
    target = str(log_path())
    if not any(getattr(h, "baseFilename", None) == target for h in log.handlers):
        handler = logging.FileHandler(target, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def run_button(port: WorkbookPort, button_id: str, *, vba_version: str | None, xlwings_version: str) -> str:
    """Run one button on ``port``; returns the message shown to the user (never raises)."""
    from complaint_core.errors import ComplaintDeskError

    from .actions import HANDLERS, about, wps_message

    log = logging.getLogger("excel_addin")
    if vba_version and vba_version != xlwings_version:
        return (f"加载项版本（xlwings {vba_version}）与 Python 环境（xlwings {xlwings_version}）不一致。\n"
                "请在命令行运行：complaint-desk addin install 重新安装加载项。")
    handler = HANDLERS.get(button_id)
    if handler is None:
        return f"未知按钮：{button_id}"
    try:
        wps = wps_message(port)
        if wps:
            log.warning("%s: %s", button_id, wps)
            return wps
        bad = [n for n in port.sheet_names() if n.lower().endswith(".py")]
        if bad:
            return f"工作表名“{bad[0]}”以 .py 结尾，xlwings 会把它当作代码运行；请改名后再试。"
        with port.quiet():
            if handler is about:
                message = about(port, log_path=str(log_path()), xlwings_version=xlwings_version)
            else:
                message = handler(port)
        # what this platform could not do (e.g. hide a sheet on a Mac) is said, not failed on
        return "\n".join([message, *port.skipped()])
    except ComplaintDeskError as exc:
        log.warning("%s: %s", button_id, exc)
        return str(exc)
    except Exception:  # noqa: BLE001 - shown in Excel, full trace in the log
        log.exception("button %s failed", button_id)
        return f"出错了，详情已写入日志：{log_path()}"


def dispatch(button_id: str, vba_version: str | None = None) -> None:
    """Called by the ribbon's VBA: ``excel_addin.dispatch('<button id>', XLWINGS_VERSION)``."""
    _log_to_file()
    import xlwings

    from .xlwings_port import XlwingsPort

    log = logging.getLogger("excel_addin")
    try:
        book = xlwings.Book.caller()
    except Exception:
        # No workbook to show a message in: log it, and let xlwings' VBA show the error box.
        log.exception("button %s: no calling workbook", button_id)
        raise
    port = XlwingsPort(book)
    message = run_button(port, button_id, vba_version=vba_version, xlwings_version=xlwings.__version__)
    log.info("%s on %s: %s", button_id, book.name, message.replace("\n", " "))
    port.alert(message)
    sys.stdout.flush()
