"""One pass over the shop folders: read what changed, keep what failed, update the store.

No single file can stop the others: one that cannot be opened, vanishes, is 0 bytes, truncated
or not a workbook is listed on 来源 with its reason (its last good rows stay) and retried with
its own backoff. A folder that is not there or cannot be listed (a typo, an unmounted share)
is 不可用, never "deleted": its rows stay as they were. A folder that suddenly holds no
workbook (an unmounted share often shows an empty mount point) keeps its rows too, marked
不可用, until it has been empty for ``empty_grace`` (a day by default); only then are they
marked deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from complaint_core.errors import SourceFolderUnavailable, UnreadableWorkbook
from complaint_core.isolate import PackedRows, read_many_isolated, warm_children
from complaint_core.safety import MAX_FILE_BYTES, real_path
from complaint_core.store import Store
from complaint_core.store import tables as t
from complaint_core.store.ingest import ingest_prepared, mark_missing, record_failure

from .files import conflict_client, is_file, is_ignored, path_text, scan_folder

log = logging.getLogger("complaint_desk.sync")

MAX_ATTEMPTS = 3
EMPTY_FOLDER_GRACE = timedelta(days=1)   # [sync] empty_folder_hours: an empty folder's rows stay this long


@dataclass
class FileResult:
    path: Path
    outcome: str          # read | unchanged | failed | unstable | conflict_copy | retry_later
    reason: str = ""
    rows: int = 0


@dataclass
class MergeReport:
    read: list[FileResult] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    unavailable: list[FileResult] = field(default_factory=list)   # rows kept: folder gone, unlisted or empty
    blind: dict[Path, str] = field(default_factory=dict)   # folder that cannot be seen -> why
    rows: int = 0
    conflicts: int = 0
    reused: int = 0          # shops whose part of the workbook was taken from the last write
    read_back: bool = False  # the write read managers' cells from the workbook (not read before it)
    written: Path | None = None
    write_error: str = ""
    held: Path | None = None   # the workbook (the merged one, or an archive) a program held open
    seconds: float = 0.0


def file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _known(store: Store) -> dict[str, Row[Any]]:
    with store.engine.connect() as c:
        return {r.path: r for r in c.execute(select(t.sources))}


def check_folders(folders: list[Path]) -> None:
    """Raise SourceFolderUnavailable for the first folder that is not there or not a folder.

    ``sync --once`` calls this before opening the store: a mistyped ``--source`` or an
    unmounted share stops it with one line, and nothing is rewritten.
    """
    for folder in folders:
        why = unseen(folder)
        if why is not None:
            raise SourceFolderUnavailable(folder, f"{why}；未合并 (nothing merged)")
        try:
            with os.scandir(folder):
                pass
        except OSError as exc:
            raise SourceFolderUnavailable(folder, f"门店文件夹无法列出 (cannot list: {exc.strerror or exc})") from None


def unseen(folder: Path) -> str | None:
    """Why ``folder`` cannot be seen as a shop folder (None: it can): not there (a typo, a share
    not mounted), refused (a link round in a loop, a parent that cannot be entered), or a file."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return "门店文件夹不存在（路径写错或共享盘未挂载） (shop folder not found: typo or share not mounted)"
    except OSError as exc:
        return f"门店文件夹无法访问 (cannot access: {exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "这不是文件夹，请给出门店文件夹 (not a folder)"
    return None


def _conflict_copy(store: Store, path: Path, prev: Row[Any] | None, now: datetime, client: str = "") -> FileResult:
    reason = (f"同步软件（{client}）产生的冲突副本，未合并，请主管核对后删除 "
              f"(sync conflict copy made by {client}, not merged)")
    if prev is None or prev.status != "conflict_copy":
        record_failure(store, path, reason, status="conflict_copy", attempts=0, next_try=None, now=now)
        log.warning("冲突副本 %s: 未合并", path)
    return FileResult(path, "conflict_copy", reason)


def _unavailable(store: Store, path: str, prev: Row[Any], reason: str, now: datetime,
                 grace: timedelta | None) -> bool:
    """The file's folder cannot be seen: its rows stay; after ``grace`` (empty folder) they go.

    Returns whether the rows are still kept.
    """
    if prev.status == "unavailable" and prev.error == reason:
        if grace is not None and prev.next_try is not None and now >= prev.next_try:
            mark_missing(store, path, now=now)
            log.info("文件夹已空超过宽限期 %s: 其行标记为已删除", path)
            return False
        return True
    due = now + grace if grace is not None else None
    record_failure(store, Path(path), reason, status="unavailable", attempts=0, next_try=due, now=now)
    log.warning("来源不可用 %s: %s", path, reason)
    return True


ODD_NAME = ("文件名不是 UTF-8 编码（多为共享盘挂载时未设 UTF-8 字符集，显示为 GBK 文件名），未合并；"
            "请按 UTF-8 挂载共享盘或改用英文/数字文件名 (file name is not UTF-8: mount the share "
            "with a UTF-8 character set, docs/sync.md)")


def _odd_name(store: Store, name: Path, prev: Row[Any] | None, now: datetime) -> FileResult:
    """A file whose name cannot be written as text (``path_text``): listed on 来源 under its
    escaped name with the reason, never read, and said once, not at every rescan. The store
    and the log cannot hold its name as it is, and the shop's other files are merged as ever."""
    if prev is None or prev.status != "error" or prev.error != ODD_NAME:
        record_failure(store, name, ODD_NAME, status="error", attempts=0, next_try=None, now=now)
        log.warning("文件名编码无法识别 %s: 未合并", name)
    return FileResult(name, "failed", ODD_NAME)


def _failed(store: Store, path: Path, prev: Row[Any] | None, exc: UnreadableWorkbook, size: int, mtime: float,
            now: datetime) -> FileResult:
    attempts = (prev.attempts or 0) + 1 if prev is not None and prev.mtime == mtime else 1
    # back off 5 s, 20 s, 80 s… the file's last good rows stay in the merged workbook
    next_try = now + timedelta(seconds=5 * 4 ** min(attempts - 1, 5))
    status = "error" if attempts >= MAX_ATTEMPTS else "retrying"
    record_failure(store, path, exc.reason, status=status, attempts=attempts, next_try=next_try, now=now)
    with store.begin() as c:
        c.execute(t.sources.update().where(t.sources.c.path == str(path)).values(size=size, mtime=mtime))
    log.warning("读取失败 %s（第 %d 次）: %s", path, attempts, exc.reason)
    return FileResult(path, "failed", exc.reason)


def read_files(store: Store, paths: list[Path], *, known: dict[str, Row[Any]], now: datetime, settle: float = 0.0,
               timeout: float = 20.0, force: bool = False, progress: Callable[[Path], object] | None = None,
               jobs: int | None = None) -> list[FileResult]:
    """Read the files among ``paths`` that changed, several at once, and store their rows.

    Size and mtime against the store come first, so an unchanged shop costs one ``stat``;
    the files that did change are looked at twice ``settle`` seconds apart (one wait for all
    of them, not one per file, and none when every one of them was last written longer ago
    than that) and only read when they held still: a shop's Excel may still be writing.
    Reading happens in killable children (complaint_core.isolate), in parallel.
    """
    results: dict[Path, FileResult] = {}
    first: dict[Path, tuple[int, int]] = {}
    st: os.stat_result | None
    for path in paths:
        if (name := path_text(path)) != str(path):
            results[path] = _odd_name(store, Path(name), known.get(name), now)
            continue
        prev = known.get(str(path))
        client = conflict_client(path)
        if client is not None:
            results[path] = _conflict_copy(store, path, prev, now, client)
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            results[path] = FileResult(path, "unstable", "文件仍在写入")
            continue
        except OSError as exc:   # no permission on its folder, a share gone: this file only
            results[path] = _failed(store, path, prev, UnreadableWorkbook(
                path, f"无法访问文件 (cannot access: {exc.strerror or exc})"), 0, 0.0, now)
            continue
        same = prev is not None and not force and prev.size == st.st_size and prev.mtime == st.st_mtime
        if same and prev is not None and prev.status == "ok":
            results[path] = FileResult(path, "unchanged", rows=prev.rows or 0)  # not even hashed
        elif same and prev is not None and prev.status != "unavailable" and prev.next_try is not None \
                and prev.next_try > now:
            results[path] = FileResult(path, "retry_later", prev.error or "")
        elif not stat.S_ISREG(st.st_mode):
            # a pipe or device with a workbook's name: never opened, so never waited on
            results[path] = _failed(store, path, prev, UnreadableWorkbook(
                path, "这是管道或设备，不是普通文件，已拒绝 (not a regular file)"), 0, st.st_mtime, now)
        else:
            first[path] = (st.st_size, st.st_mtime_ns)
    if first:
        warm_children()   # the readers' forkserver imports while the files are hashed
    # A file last written more than ``settle`` ago has held still that long already (the
    # daemon's quiet period has passed too): a second look would only add the wait.
    if settle and any(time.time() - mtime_ns / 1e9 < settle for _size, mtime_ns in first.values()):
        time.sleep(settle)
    todo: dict[Path, tuple[int, float, str]] = {}
    for path, before in first.items():
        try:
            st = path.stat()
        except FileNotFoundError:
            st = None
        if st is None or (st.st_size, st.st_mtime_ns) != before:
            log.info("跳过 %s: 文件仍在写入 (not stable yet)", path)
            results[path] = FileResult(path, "unstable", "文件仍在写入")
            continue
        if st.st_size == 0:
            # held still at 0 bytes: a save that never finished, not one in progress
            results[path] = _failed(store, path, known.get(str(path)), UnreadableWorkbook(
                path, "空文件（0 字节，保存未完成），保留上次读取的行 (empty file: 0 bytes)"), 0, st.st_mtime, now)
            continue
        if st.st_size > MAX_FILE_BYTES:
            results[path] = _failed(store, path, known.get(str(path)), UnreadableWorkbook(
                path, f"文件过大（{st.st_size >> 20} MiB，工作簿最多 {MAX_FILE_BYTES >> 20} MiB），未读取，"
                      f"保留上次读取的行 (file too large)"), st.st_size, st.st_mtime, now)
            continue
        try:
            digest = file_hash(path)
        except OSError as exc:   # e.g. an antivirus or another user holds it, or it vanished
            reason = ("文件在读取前被删除或移走 (file vanished)" if isinstance(exc, FileNotFoundError)
                      else f"无法打开文件 (cannot open: {exc.strerror or exc})")
            results[path] = _failed(store, path, known.get(str(path)), UnreadableWorkbook(path, reason),
                                    st.st_size, st.st_mtime, now)
            continue
        prev = known.get(str(path))
        if prev is not None and prev.content_hash == digest and prev.status == "ok" and not force:
            # saved again without a change (or copied by a sync client): remember the new
            # stamp so the next pass needs no hash and no wait
            with store.begin() as c:
                c.execute(t.sources.update().where(t.sources.c.path == str(path))
                          .values(size=st.st_size, mtime=st.st_mtime))
            results[path] = FileResult(path, "unchanged", rows=prev.rows or 0)
            continue
        todo[path] = (st.st_size, st.st_mtime, digest)
    if progress is not None:
        for path in results:
            progress(path)
    for path, got in read_many_isolated(list(todo), now=now, jobs=jobs, timeout=timeout, memory_mb=2048):
        size, mtime, digest = todo[path]
        prev = known.get(str(path))
        if isinstance(got, UnreadableWorkbook):
            results[path] = _failed(store, path, prev, got, size, mtime, now)
        else:
            try:
                counts = ingest_prepared(store, path, got, file_hash=digest, size=size, mtime=mtime, now=now)
            finally:
                if isinstance(got.rows, PackedRows):
                    got.rows.close()   # its temporary file goes now, not when collected
            log.info("已读取 %s: %d 行（新 %d，改 %d，删 %d）", path, len(got.rows), counts["new"],
                     counts["changed"], counts["deleted"])
            results[path] = FileResult(path, "read", rows=len(got.rows))
        del got   # before the next file's rows arrive
        if progress is not None:
            progress(path)
    return [results[p] for p in paths]


def _roots(folders: list[Path]) -> list[str]:
    return sorted({str(real_path(f)) for f in folders} | {str(f) for f in folders})


def _under(path: str, roots: list[str]) -> bool:
    # "SH01" must not claim the files of a folder called "SH010"
    return any(path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def pending_retries(store: Store, folders: list[Path]) -> dict[Path, datetime]:
    """Files under ``folders`` waiting for a retry after a failed read, with when each is due.

    The daemon sleeps until the earliest of these, so a workbook fixed on a share that reports
    no events is picked up when its backoff ends, not at the next full rescan. Files gone from
    the folder or outside the watched folders are left out: nothing would retry them.
    """
    roots = _roots(folders)
    with store.engine.connect() as c:
        rows = c.execute(select(t.sources.c.path, t.sources.c.next_try)
                         .where(t.sources.c.status.in_(("retrying", "error")))
                         .where(t.sources.c.next_try.is_not(None))).all()
    due: dict[Path, datetime] = {}
    for path, next_try in rows:
        if _under(path, roots) and is_file(Path(path)):
            due[Path(path)] = next_try
    return due


def scan(store: Store, folders: list[Path], *, out: Path | None, now: datetime, settle: float = 0.0,
         only: set[Path] | None = None, progress: Callable[[Path], object] | None = None,
         empty_grace: timedelta | None = EMPTY_FOLDER_GRACE) -> MergeReport:
    """Look at every workbook in ``folders`` (or only the hinted ones) and update the store."""
    report = MergeReport()
    known = _known(store)
    paths: list[Path] = []
    blind = report.blind     # folder -> why it cannot be seen
    empty: set[Path] = set()
    folder: Path | None
    for folder in folders:
        why = unseen(folder)
        if why is not None:
            blind[folder] = f"{why}；保留其上次读取的行 (rows kept)"
            continue
        found, unreadable = scan_folder(folder, out=out)
        for where, why in unreadable.items():
            blind[where] = f"文件夹无法列出，保留其上次读取的行 (cannot list folder: {why}; rows kept)"
        if not found and not unreadable:
            empty.add(folder)
        paths += found
    paths = sorted(set(paths))   # a folder given inside another one lists its files twice
    if only is not None:
        paths = [p for p in paths if p in only]
    for res in read_files(store, paths, known=known, now=now, settle=settle, progress=progress):
        {"read": report.read, "failed": report.failed, "retry_later": report.failed}.get(res.outcome, report.skipped).append(res)
    if only is None:
        present = {path_text(p) for p in paths}
        for path, row in known.items():
            if path in present or row.status == "missing" or is_ignored(Path(path), out=out):
                continue
            folder = _folder_of(path, folders)
            if folder is None:
                continue
            dark = next((w for w in blind if _under(path, _roots([w]))), None)
            if dark is not None:
                _unavailable(store, path, row, blind[dark], now, None)
                report.unavailable.append(FileResult(Path(path), "unavailable", blind[dark]))
            elif folder in empty:
                why = ("门店文件夹中突然没有任何工作簿（共享盘可能未挂载），暂时保留其行 "
                       "(folder suddenly holds no workbook: rows kept for now)")
                if _unavailable(store, path, row, why, now, empty_grace):
                    report.unavailable.append(FileResult(Path(path), "unavailable", why))
            else:
                mark_missing(store, path, now=now)
                log.info("文件已删除 %s: 其行标记为已删除", path)
    return report


def _folder_of(path: str, folders: list[Path]) -> Path | None:
    """The watched folder ``path`` lies in (the deepest, when folders nest)."""
    best: Path | None = None
    for folder in folders:
        if _under(path, _roots([folder])) and (best is None or len(str(folder)) > len(str(best))):
            best = folder
    return best
