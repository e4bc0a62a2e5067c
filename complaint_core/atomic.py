"""Atomic writes: a reader (a manager in Excel, the sync client, the daemon) never sees half a file.

Write to a hidden temp file in the same folder, fsync, then ``os.replace``. On Windows the
replace fails while Excel holds the target open; we retry with backoff and then report,
never leaving a partial file at the target. The new file gets the old one's owner, group
and mode: a shop folder shared by a group (0660) must not become world-readable (0644) or
leave the group because we rewrote it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import FileNotWritable, WorkbookLocked

TEMP_PREFIX = ".~cd-tmp-"


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refuse_read_only(path: str | os.PathLike[str]) -> None:
    """One line when ``path`` is marked read-only (no write bit) or we may not write it."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(p, os.W_OK):
        raise FileNotWritable(p, "文件是只读的，未修改；如需写入请先取消只读 (read-only file, not changed)")


def _keep_owner_and_mode(tmp: Path, target: Path) -> None:
    """Give the temp file the target's mode, owner and group before it takes its place."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return   # a new file: the process's umask decides, as for any file it creates
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if not hasattr(os, "chown"):
        return   # Windows: the new file inherits the folder's ACL
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except PermissionError:
        # only root may give a file away; a member of the group may still keep the group
        try:
            os.chown(tmp, -1, st.st_gid)
        except PermissionError:
            raise FileNotWritable(target, "无法保持文件的所属组，未修改（请由文件所有者运行）"
                                          "(cannot keep the file's group, not changed)") from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, attempts: int = 6, delay: float = 0.5) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it replaces ``path`` atomically."""
    target = Path(path)
    tmp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}{target.suffix}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _keep_owner_and_mode(tmp, target)
        for attempt in range(1, attempts + 1):
            try:
                os.replace(tmp, target)
                break
            except PermissionError:
                if attempt == attempts:
                    raise WorkbookLocked(target, attempts) from None
                time.sleep(delay * attempt)
        _fsync_dir(target.parent)
    except OSError as exc:
        # a read-only folder or disk, a full disk, a share gone: one line naming the file
        if exc.filename is not None and Path(exc.filename) not in (tmp, target, target.parent):
            raise
        raise FileNotWritable(target, f"无法写入 (cannot write: {exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def held_open(path: str | os.PathLike[str]) -> bool:
    """Whether another program holds ``path`` open so that it cannot be replaced now.

    Excel (and WPS) on Windows open a workbook without sharing it for writing: opening it to
    write is refused as the rename of a new file onto it is (``atomic_write`` then gives up
    with ``WorkbookLocked``). One open, no change: cheap enough to ask every few seconds while a
    manager keeps the merged workbook open. Where nothing locks a file (Linux, macOS) it is
    False unless the file cannot be written at all.
    """
    try:
        with open(path, "r+b"):
            return False
    except PermissionError:
        return True
    except OSError:   # gone, or a share that is away: the write itself says what is wrong
        return False


def sweep_temp_files(folder: str | os.PathLike[str], *, older_than: float = 3600.0,
                     now: float | None = None) -> int:
    """Delete our own temp files left in ``folder`` by a process killed mid-write.

    A kill (power cut, task manager) during a rewrite leaves a ``.~cd-tmp-*`` file beside the
    merged workbook; nobody else would ever remove them. Only files older than ``older_than``
    seconds go: a rewrite in progress (minutes at most) is never touched.
    """
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > older_than:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue   # locked on Windows or gone already: try again next time
    return removed


def refuse_overwrite(path: Path, force: bool) -> None:
    """A workbook a shop or a manager may have filled is never replaced without ``--force``."""
    from .errors import FileExists

    if not force and (path.exists() or path.is_symlink()):
        raise FileExists(path)
