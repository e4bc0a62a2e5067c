"""Parse untrusted workbooks in a child process with time and memory limits.

python-calamine is native code: on a hostile file it can allocate without bound or abort
the whole process (one corpus .xls does), and no ``try`` stops that. The daemon that merges
every shop must survive any file a shop drops, so it parses in a child it can kill. The
forkserver context is used because the daemon is multithreaded (fork would copy locks held
by other threads); the reader is preloaded so each child starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from pathlib import Path
from typing import Any

from .errors import UnreadableWorkbook
from .model import ComplaintTable

_CTX: Any = None


def _context() -> Any:
    global _CTX
    if _CTX is None:
        if sys.platform.startswith("linux"):
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["complaint_core.reader"])
        else:
            ctx = mp.get_context("spawn")
        _CTX = ctx
    return _CTX


def _child(path: str, memory_mb: int, conn: Any) -> None:
    try:
        import resource

        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # Windows has no RLIMIT_AS: the timeout still protects the daemon
    # Rust prints panic messages to stderr; the parent reports the reason in one line instead.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    except OSError:
        pass
    from .reader import read_workbook

    try:
        result: Any = ("ok", read_workbook(path))
    except UnreadableWorkbook as exc:
        result = ("error", type(exc).__name__, exc.reason)
    except MemoryError:
        result = ("error", "UnreadableWorkbook", f"读取时内存超过 {memory_mb} MiB (memory limit)")
    except BaseException as exc:  # noqa: BLE001 - report anything as one line, never a traceback
        result = ("error", "UnreadableWorkbook", f"工作簿无法解析 ({type(exc).__name__}: {str(exc)[:200]})")
    try:
        conn.send(result)
    except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError while pickling a huge table
        conn.send(("error", "UnreadableWorkbook", f"结果无法传回 ({type(exc).__name__})"))
    finally:
        conn.close()


def read_workbook_isolated(
    path: str | Path, *, timeout: float = 10.0, memory_mb: int = 2048
) -> ComplaintTable:
    """``reader.read_workbook`` in a killable child; hangs, crashes and memory runaways become
    UnreadableWorkbook with the reason."""
    from . import errors

    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(str(path), memory_mb, child), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise UnreadableWorkbook(path, f"读取超过 {timeout:g} 秒，已中止 (timed out)")
        try:
            result = parent.recv()
        except EOFError:
            proc.join(1)
            raise UnreadableWorkbook(
                path, f"读取进程崩溃（退出码 {proc.exitcode}），文件可能已损坏 (reader crashed)") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if result[0] == "ok":
        return result[1]
    cls = getattr(errors, result[1], UnreadableWorkbook)
    raise cls(path, result[2])
