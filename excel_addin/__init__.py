"""The Excel add-in's Python side: ``dispatch`` is the only function the VBA calls.

Kept light to import (every click starts a fresh Python on Windows): xlwings and the
engine are imported inside the call.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_NAME = "complaintdesk-addin.log"


def log_path() -> Path:
    base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), ".complaintdesk")
    folder = Path(base) / ("ComplaintDesk" if "LOCALAPPDATA" in os.environ else "")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / LOG_NAME


def run_button(port, button_id: str, *, vba_version: str | None, xlwings_version: str) -> str:
    """Run one button on ``port``; returns the message shown to the user (never raises)."""
    from complaint_core.errors import ComplaintDeskError

    from .actions import HANDLERS, about

    log = logging.getLogger("excel_addin")
    if vba_version and vba_version != xlwings_version:
        return (f"加载项版本（xlwings {vba_version}）与 Python 环境（xlwings {xlwings_version}）不一致。\n"
                "请在命令行运行：complaint-desk addin install 重新安装加载项。")
    handler = HANDLERS.get(button_id)
    if handler is None:
        return f"未知按钮：{button_id}"
    bad = [n for n in port.sheet_names() if n.lower().endswith(".py")]
    if bad:
        return f"工作表名“{bad[0]}”以 .py 结尾，xlwings 会把它当作代码运行；请改名后再试。"
    try:
        with port.quiet():
            if handler is about:
                return about(port, log_path=str(log_path()), xlwings_version=xlwings_version)
            return handler(port)
    except ComplaintDeskError as exc:
        log.warning("%s: %s", button_id, exc)
        return str(exc)
    except Exception:  # noqa: BLE001 - shown in Excel, full trace in the log
        log.exception("button %s failed", button_id)
        return f"出错了，详情已写入日志：{log_path()}"


def dispatch(button_id: str, vba_version: str | None = None) -> None:
    """Called by the ribbon's VBA: ``excel_addin.dispatch('<button id>', XLWINGS_VERSION)``."""
    logging.basicConfig(filename=str(log_path()), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import xlwings

    from .xlwings_port import XlwingsPort

    book = xlwings.Book.caller()
    port = XlwingsPort(book)
    message = run_button(port, button_id, vba_version=vba_version, xlwings_version=xlwings.__version__)
    port.alert(message)
    logging.getLogger("excel_addin").info("%s on %s: %s", button_id, book.name, message.replace("\n", " "))
    sys.stdout.flush()
