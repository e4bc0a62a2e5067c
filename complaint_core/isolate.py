"""Parse untrusted workbooks in a child process with time and memory limits.

python-calamine is native code: on a hostile file it can allocate without bound or abort
the whole process (one corpus .xls does), and no ``try`` stops that. The daemon that merges
every shop must survive any file a shop drops, so it parses in a child it can kill. The
forkserver context is used because the daemon is multithreaded (fork would copy locks held
by other threads); the reader is preloaded so each child starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing as mp
import os
import pickle
import sys
import tempfile
import threading
import time
import types
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

from .ahead import ahead
from .errors import BadSetting, UnreadableWorkbook
from .heap import keep_freed_memory
from .model import ComplaintTable, Finding
from .procname import READER, name_process

if TYPE_CHECKING:
    from .clock import Clock
    from .store.codec import Prepared

_CTX: Any = None


def child_context() -> Any:
    """The multiprocessing context every child of Complaint Desk starts from (forkserver on
    Linux, spawn elsewhere): readers here, piece makers (merged/makers.py)."""
    global _CTX
    if _CTX is None:
        if sys.platform.startswith("linux"):
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["python_calamine", "complaint_core.reader", "complaint_core.validate",
                                        "complaint_core.store.codec", "complaint_core.bigfile", "complaint_core.bounds_ods",
                                        "complaint_core.bounds_xls", "complaint_core.bounds_xlsb"])
        else:
            ctx = mp.get_context("spawn")
        _CTX = ctx
    return _CTX


@dataclass(frozen=True, slots=True)
class Checked:
    """What ``validate`` needs of one file, made in the child: small to send back (no rows)."""

    rows: int                   # complaint rows over every table
    sheets: list[str]           # the sheets holding a complaint table, in reading order
    findings: list[Finding]
    # years a business-hour deadline falls in that no calendar knows: the parent logs them (the
    # child's log goes nowhere), naming the chinese-calendar release that would know them
    uncovered: list[int] = field(default_factory=list)


def _mapped() -> int:
    """Bytes of address space this process has mapped now (Linux's /proc); 0 where unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _limit(memory_mb: int, errors: str | None = None) -> None:
    """The child's own limits: ``memory_mb`` of address space beyond what the interpreter and
    its libraries already map, and no panic text on the daemon's stderr (it goes to the file
    ``errors``, where the parent looks for why the child died).

    Beyond, not in all: the interpreter maps 50 MB or so before it reads anything, more or
    less by platform and by whether its modules come compiled, and a limit counted from zero
    left a small file a few MB one day and none the next."""
    try:
        import resource

        limit = _mapped() + (memory_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # Windows has no RLIMIT_AS: the timeout still protects the daemon
    # Rust prints panic messages to stderr; the parent reports the reason in one line instead.
    try:
        sink = os.open(errors or os.devnull, os.O_WRONLY | os.O_TRUNC)
        os.dup2(sink, 2)
        os.close(sink)
    except OSError:
        pass


def _over(memory_mb: int) -> str:
    return f"读取时内存超过 {memory_mb} MiB (memory limit)"


def _work(path: str, memory_mb: int, now: datetime | Clock | None = None, lang: str | None = None) -> tuple[Any, ...]:
    """Read one file (and check or encode it): the answer to send, never an exception."""
    from .reader import read_tables

    try:
        facts = None
        if now is not None and lang is None:
            from .bigfile import prepare_in_windows
            from .safety import check_workbook

            facts = check_workbook(path)   # once, for the windows and the whole read alike
            # one big complaint sheet: read, checked and encoded a window of rows at a time
            windowed = prepare_in_windows(path, cast(datetime, now), facts)   # a Clock only comes with lang
            if windowed is not None:
                return ("ok", windowed)
        tables = read_tables(path, facts)
        if now is None:
            result: Any = ("ok", tables)
        elif lang is not None:
            from .clock import Clock
            from .validate import validate_tables

            if isinstance(now, Clock):   # `validate --now`: that moment in this shop's own zone
                first = tables[0].settings if tables else None
                now = now.now(first.timezone if first is not None else None)

            from .settings import DEFAULTS
            from .validate import holiday_gaps

            uncovered = sorted({y for t in tables for y in holiday_gaps(t, t.settings or DEFAULTS)})
            result = ("ok", Checked(sum(len(t.rows) for t in tables), list(dict.fromkeys(t.sheet for t in tables)),
                                    validate_tables(tables, now=now, lang=lang), uncovered))
        else:
            # validating and encoding here too: with several children, two shops' checks and
            # JSON run at once, and the daemon only stores the result
            from .store.codec import prepare
            from .validate import table_dues, validate_tables
            dues = [table_dues(t) for t in tables]   # the checks and the store need the same deadlines
            findings = validate_tables(tables, now=cast(datetime, now), dues=dues)   # a Clock only comes with lang
            # the rows go as they are encoded: the child's memory stays that of the file read
            result = ("ok", prepare(tables, findings, Path(path), dues, consume=True))
    except UnreadableWorkbook as exc:
        result = ("error", type(exc).__name__, exc.reason)
    except BadSetting as exc:
        # the shop's 设置 or 节假日 has a value no deadline can be worked out with: said as it is
        # (it names the cell), not as a workbook that cannot be parsed, and the child reads on
        result = ("error", "UnreadableWorkbook", f"设置有误，本文件未合并：{exc} (bad setting: file not merged)")
    except MemoryError:
        # the 4th item says "memory": a child that read other files first may only have run
        # short because of them, so the parent reads this file again in a fresh child
        result = ("error", "UnreadableWorkbook", _over(memory_mb), "memory")
    except BaseException as exc:  # noqa: BLE001 - report anything as one line, never a traceback
        # "odd": the child goes after this file, whatever the library left half-done in it
        result = ("error", "UnreadableWorkbook", f"工作簿无法解析 ({type(exc).__name__}: {str(exc)[:200]})", "odd")
    return cast(tuple[Any, ...], result)


def _answer(conn: Any, result: tuple[Any, ...]) -> bool:
    """Send ``result``; False when the parent is gone (it stopped reading, or died)."""
    try:
        _send(conn, result)
        return True
    except (OSError, EOFError):
        return False
    except MemoryError:   # e.g. while pickling a huge table: try again in a fresh child
        instead = ("error", "UnreadableWorkbook", "结果无法传回 (MemoryError)", "memory")
    except BaseException as exc:  # noqa: BLE001
        instead = ("error", "UnreadableWorkbook", f"结果无法传回 ({type(exc).__name__})", "odd")
    try:
        conn.send(instead)
    except (OSError, EOFError):
        return False
    return True


def _serve(memory_mb: int, conn: Any, now: datetime | Clock | None = None, lang: str | None = None,
           errors: str | None = None) -> None:
    """A reader child: reads the files the parent sends, one at a time, until it sends None.

    One child reads many files because a new process pays for its memory again (page faults,
    fresh arenas): a 1,000-row file took 0.13-0.16 s in a new child and 0.09-0.10 s in one
    that had read a file before (issue 17). Each file still has its own deadline, and the
    parent knows which file a child died on, because a child holds one file at a time.
    """
    _limit(memory_mb, errors)
    name_process(READER)
    keep_freed_memory()   # the next file reuses this one's pages (complaint_core/heap.py)
    # the cycle collector would walk every row being made; it runs once between files instead,
    # over what that file left (the modules loaded so far are frozen out of its way)
    gc.disable()
    gc.freeze()
    try:
        while True:
            try:
                path = conn.recv()
            except (EOFError, OSError):
                return   # the parent is gone
            if path is None:
                return
            try:   # what stderr holds is about this file only
                os.ftruncate(2, 0)
                os.lseek(2, 0, os.SEEK_SET)
            except OSError:
                pass
            result = _work(path, memory_mb, now, lang)
            if not _answer(conn, result):
                return
            del result
            # what the file left in a cycle is freed; what is still alive after that (caches
            # the first files filled, and on Windows, where nothing is preloaded, the reader's
            # modules imported by the first file) is frozen too, so the next collection does
            # not walk it again: walking those modules cost 16 ms a file, for two objects freed
            gc.collect()
            gc.freeze()
    finally:
        conn.close()
        if errors is not None:   # a child that ends on its own cleans up after itself
            with contextlib.suppress(OSError):
                os.unlink(errors)


_SLICE = 500   # rows of a prepared file per message


def _send(conn: Any, result: tuple[Any, ...]) -> None:
    """Send the answer; a prepared file's rows go in slices, so that the daemon never holds the
    whole file both as one pickled message and as the rows made from it (issue 17)."""
    from .store.codec import Prepared

    if result[0] == "ok" and isinstance(result[1], Prepared) and isinstance(result[1].rows, PackedRows):
        # made a window at a time (``bigfile``): its slices are pickled already
        packed = result[1].rows
        try:
            _send_head(conn, result[1], packed.slices, len(packed))
            for data in packed.raw():
                conn.send_bytes(data)
        finally:
            packed.close()
        return
    if result[0] == "ok" and isinstance(result[1], Prepared) and len(result[1].rows) > _SLICE:
        rows = result[1].rows
        count = (len(rows) + _SLICE - 1) // _SLICE
        _send_head(conn, result[1], count, len(rows))
        for i in range(count):
            conn.send(rows[i * _SLICE:(i + 1) * _SLICE])
        return
    conn.send(result)


def _send_head(conn: Any, prepared: Any, slices: int, rows: int) -> None:
    """What comes before a sliced answer's slices: the prepared file without its rows, then its
    findings' JSON as the bytes they are, in pieces the daemon sets aside as they come
    (pickled into the message, the daemon held them twice, and again while the file waited:
    8 MB each time for a file of 30,000 complaints, issue 17)."""
    from .store.codec import byte_pieces

    pieces = list(byte_pieces(prepared.findings_json, _FINDINGS_PIECE))
    conn.send(("ok-sliced", dataclasses.replace(prepared, rows=[], findings_json=b""), slices, rows, len(pieces)))
    for piece in pieces:
        conn.send_bytes(piece)


_FINDINGS_PIECE = 1 << 20   # bytes of a file's findings sent at a time


# a file's pickled rows wait their turn in memory up to this size, in a temporary file beyond:
# a shop with years of history in one workbook (30,000 complaints, 41 MB pickled) no longer
# sits in the daemon's memory while the file before it is stored (issue 17)
_IN_MEMORY = 4 << 20


class _Spool:
    """Pieces of bytes kept in memory while they add up to little, in a temporary file beyond,
    each read back by its number. They move to the file one by one: tempfile's
    ``SpooledTemporaryFile`` copies all it holds at once when it rolls over, and the daemon held
    a file's first 4 MiB of rows twice for a moment (issue 17)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held: list[bytes] | None = []
        self._file: Any = None
        self._places: list[tuple[int, int]] = []   # (offset, length) of each piece

    def add(self, data: bytes) -> None:
        at = self.size
        if self._held is not None and at + len(data) > self._limit:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            for piece in self._held:
                self._file.write(piece)
            self._held = None
        if self._held is not None:
            self._held.append(data)
        else:
            self._file.seek(at)
            self._file.write(data)
        self._places.append((at, len(data)))

    def __len__(self) -> int:
        return len(self._places)

    def get(self, n: int) -> bytes:
        if self._held is not None:
            return self._held[n]
        offset, length = self._places[n]
        self._file.seek(offset)
        data: bytes = self._file.read(length)
        return data

    @property
    def in_memory(self) -> bool:
        return self._held is not None

    @property
    def size(self) -> int:
        return self._places[-1][0] + self._places[-1][1] if self._places else 0

    def all(self) -> bytes:
        """Every piece, one after another."""
        if self._held is not None:
            return b"".join(self._held)
        self._file.seek(0)
        data: bytes = self._file.read()
        return data

    def close(self) -> None:
        self._held = None
        if self._file is not None:
            self._file.close()


class PackedRows(Sequence[Any]):
    """A prepared file's rows as its reader sent them: pickled slices of ``_SLICE`` rows, in
    memory while small and in a temporary file beyond. A slice is unpickled only while it is
    iterated, so the daemon stores a file a slice at a time and never holds all its rows (a
    shop of 30,000 complaints held 100 MB of rows in the daemon while they were stored)."""

    def __init__(self, count: int) -> None:
        self._count = count   # 0 while a reader child is still adding its slices (``seal``)
        self._spool = _Spool(_IN_MEMORY)
        self._with: list[_Spool] = []

    def add(self, data: bytes) -> None:
        """The next slice, as the child pickled it."""
        self._spool.add(data)

    def seal(self, count: int) -> None:
        """The rows added, once the last slice is (a child that makes its slices as it reads)."""
        self._count = count

    @property
    def slices(self) -> int:
        return len(self._spool)

    def raw(self) -> Iterator[bytes]:
        """Each slice as it was pickled (what the child sends)."""
        for n in range(len(self._spool)):
            yield self._spool.get(n)

    def _slice(self, n: int) -> list[Any]:
        rows: list[Any] = pickle.loads(self._spool.get(n))   # noqa: S301 - sent by our own reader child
        if len(rows) != min(_SLICE, self._count - n * _SLICE):
            raise ValueError(f"slice {n} of a prepared file holds {len(rows)} rows")
        return rows

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        for n in range(len(self._spool)):
            yield from self._slice(n)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._slice(index // _SLICE)[index % _SLICE]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def keep_with(self, other: _Spool) -> None:
        """Close ``other`` (the file's findings kept apart) with these rows."""
        self._with.append(other)

    def close(self) -> None:
        self._spool.close()
        for other in self._with:
            other.close()


class Packed:
    """A prepared file as its slices arrived, still pickled (``PackedRows``): the file read
    ahead of the one the daemon is storing waits so, and its rows are unpickled a slice at a
    time when its turn comes. Its findings' JSON waits beside them, in a temporary file when
    big: the daemon held the findings of the files read ahead beside those it stored (8 MB a
    file of 30,000 complaints, issue 17)."""

    def __init__(self, prepared: Prepared, rows: PackedRows) -> None:
        self.prepared = prepared
        self.rows = rows
        self._findings = _Spool(_FINDINGS_PIECE)

    def add_findings(self, piece: bytes) -> None:
        """The next piece of the file's findings' JSON, as the reader sent it."""
        self._findings.add(piece)

    def open(self) -> Prepared:
        """The file to store, its findings still apart when big (they go into the store a
        piece at a time: ``ingest``); they go with its rows (``PackedRows.close``)."""
        if self._findings.in_memory:
            findings: bytes | _SetAside = self._findings.all()
            self._findings.close()
        else:
            findings = _SetAside(self._findings)
            self.rows.keep_with(self._findings)
        return dataclasses.replace(self.prepared, rows=self.rows, findings_json=findings)


class _SetAside:
    """A file's findings' JSON as it waited in a temporary file (``codec.FindingsText``)."""

    def __init__(self, spool: _Spool) -> None:
        self._spool = spool

    def __len__(self) -> int:
        return self._spool.size

    def pieces(self) -> Iterator[bytes]:
        for n in range(len(self._spool)):
            yield self._spool.get(n)



def _receive(conn: Any) -> tuple[Any, ...]:
    answer: tuple[Any, ...] = conn.recv()
    if answer[0] != "ok-sliced":
        return answer
    rows = PackedRows(answer[3])
    try:
        packed = Packed(answer[1], rows)
        try:
            for _ in range(answer[4]):   # its findings set aside first, as they come
                packed.add_findings(conn.recv_bytes())
            for _ in range(answer[2]):
                data = conn.recv_bytes()
                rows.add(data)
        except OSError as exc:
            # the temp folder is full or gone: said as that, not as a reader that crashed;
            # the child goes ("odd": the rest of its answer is still in the pipe) and the file
            # is tried again later, as any file that could not be read
            if isinstance(exc, ConnectionError):
                raise
            rows.close()
            return ("error", "UnreadableWorkbook",
                    f"临时文件夹无法写入（磁盘已满？），本文件未合并 (temp folder: {exc.strerror or exc})", "odd")
    except BaseException:
        rows.close()
        raise
    return ("ok", packed)


_START = threading.Lock()


def start_child(proc: Any) -> None:
    """Start ``proc`` without the child re-running the program's main module.

    A forkserver/spawn child imports the parent's ``__main__`` again (for the daemon: the
    CLI, click, SQLAlchemy), which cost ~0.4 s per file, more than reading it; Python 3.11's
    forkserver cannot preload it either. The child only needs this module, so for the
    moment of the start ``__main__`` is a bare stand-in.
    """
    with _START:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            sys.modules["__main__"] = real


def warm_children() -> None:
    """Have the process children are forked from start now, when the caller knows it will
    read: its imports (a quarter of a second) then overlap the caller's own work before the
    first child (hashing the files, opening the store) instead of delaying it. Nothing to
    do where children are spawned (Windows, macOS) or once it runs."""
    if child_context().get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    # the server imports the preload list only (no "__main__" in it); each child it forks is
    # kept from the caller's main module by start_child
    forkserver.ensure_running()


_STARTED = [0]   # reader children started in this process (tests count them)

FILES_PER_CHILD = 32   # then a fresh child: what a long run leaves in one heap stays bounded
# a file this big (about 4,500 complaints) leaves its child after it: the heap it grew is not
# kept for the files that follow. At 16 MiB (50,000 complaints), what one file of 30,000 left
# added 28 MiB to the next one's peak (issue 17); a fresh child costs far less than such a file
BIG_FILE = 3 << 19   # 1.5 MiB

# Each file's time limit grows with its size: the limit is there for a file that hangs the
# parser, not for a shop with years of history in one workbook. A 33 MB workbook of 100,000
# complaints took 24 s to read, check and encode on a slow hour of a 2-core machine, past the
# daemon's 20 s, and was refused at every retry; a few KB of hostile XML still get the base.
SECONDS_PER_MB = 3.0


def time_limit(base: float, size: int, per_mb: float = SECONDS_PER_MB) -> float:
    """Seconds a reader child may spend on a file of ``size`` bytes."""
    return base + per_mb * size / (1 << 20)


def _seconds(limit: float) -> str:
    return f"{limit:.0f}" if limit >= 10 else f"{limit:.3g}"


_ERRORS_PREFIX = "complaint-desk-reader-"
_SWEPT = [False]


def sweep_stale_errors(folder: str | None = None) -> int:
    """Delete the reader children's stderr files left by daemons that are gone; how many.

    A child deletes its own file when it ends, and the daemon when it stops the child; only
    when both were killed at once (a PC switched off, ``kill -9`` of the whole group) is the
    file left behind. Each file names the daemon's process id: a file whose process is no
    longer running belongs to nobody.
    """
    folder = folder or tempfile.gettempdir()
    removed = 0
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_ERRORS_PREFIX) and n.endswith(".txt")]
    except OSError:
        return 0
    for name in names:
        pid_text = name[len(_ERRORS_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _running(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed += 1
    return removed


def _running(pid: int) -> bool:
    if os.name != "posix":
        # Windows' os.kill ends the process whatever the signal: there, files are never taken
        # for left behind (Windows' own clean-up of the temp folder removes them)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # another user's process (no permission): running
        return True
    return True


class _Reader:
    """One reader child, given one file at a time, each with its own deadline."""

    def __init__(self, timeout: float, memory_mb: int, now: datetime | Clock | None, lang: str | None = None,
                 per_mb: float = SECONDS_PER_MB) -> None:
        ctx = child_context()
        if not _SWEPT[0]:   # once per process, before this process leaves files of its own
            _SWEPT[0] = True
            sweep_stale_errors()
        self.timeout = timeout
        self.per_mb = per_mb
        self.limit = timeout   # the time limit of the file given
        self.memory_mb = memory_mb
        # the child's stderr: Rust says there why it aborted ("memory allocation of … failed")
        fd, self.errors = tempfile.mkstemp(prefix=f"{_ERRORS_PREFIX}{os.getpid()}-", suffix=".txt")
        os.close(fd)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(memory_mb, child, now, lang, self.errors), daemon=True)
        start_child(self.proc)
        child.close()
        _STARTED[0] += 1
        self.served = 0
        self.last = False   # this child goes after the file it holds
        self.path: Path | None = None
        self.deadline = float("inf")
        self.alive = True

    def give(self, path: Path, last: bool = False) -> bool:
        """Hand the child ``path``; False if the child is gone (it died while idle)."""
        try:
            self.conn.send(str(path))
        except OSError:
            self.stop()
            return False
        self.last = last
        self.path = path
        self.served += 1
        self.limit = time_limit(self.timeout, _size(path), self.per_mb)
        self.deadline = time.monotonic() + self.limit
        return True

    def take(self) -> tuple[tuple[Any, ...] | UnreadableWorkbook, bool]:
        """The answer for the file given (call when ``conn`` is readable or the deadline
        passed), and whether to read that file again in a fresh child: it ran out of memory
        or crashed in a child that had read other files before it."""
        path = cast(Path, self.path)
        self.deadline = float("inf")
        if not self.conn.poll(0):
            self.stop()
            return UnreadableWorkbook(path, f"读取超过 {_seconds(self.limit)} 秒，已中止 (timed out)"), False
        try:
            answer = _receive(self.conn)
        except (EOFError, OSError):
            said = self._said()
            self.stop()
            from .safety import kind_hint

            # the parser aborts when an allocation fails (no MemoryError reaches Python): its
            # words on stderr say it was the memory limit, which a clerk can act on
            why = (_over(self.memory_mb) if b"memory allocation of" in said
                   else f"读取进程崩溃（退出码 {self.proc.exitcode}） (reader crashed)")
            return UnreadableWorkbook(path, f"{why}：{kind_hint(path)} 文件可能已损坏，或在表格之外很远处有内容"
                                            "（如 XFD1048576 单元格）"), self.served > 1
        self.path = None
        if answer[0] == "ok":
            return answer[1:], False
        from . import errors

        cls: type[UnreadableWorkbook] = getattr(errors, answer[1], UnreadableWorkbook)
        if len(answer) > 3:
            # out of memory, or a failure the reader did not foresee: this child reads no
            # more files, whatever the file left in it
            self.stop()
        return cls(path, answer[2]), answer[3:] == ("memory",) and self.served > 1

    def _said(self) -> bytes:
        """The start of what the child wrote to stderr for the file it held."""
        self.proc.join(1)   # it is dying: let it finish writing
        try:
            with open(self.errors, "rb") as fh:
                return fh.read(4096)
        except OSError:
            return b""

    def spent(self) -> bool:
        return not self.alive or self.last or self.served >= FILES_PER_CHILD

    def stop(self) -> None:
        """End the child: asked to leave when it is idle and well, killed otherwise."""
        if not self.alive:
            return
        self.alive = False
        if self.path is None and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(1)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()
        with contextlib.suppress(OSError):
            os.unlink(self.errors)


def read_tables_isolated(
    path: str | Path, *, timeout: float = 10.0, memory_mb: int = 2048, per_mb: float = SECONDS_PER_MB
) -> list[ComplaintTable]:
    """``reader.read_tables`` in a killable child; hangs, crashes and memory runaways become
    UnreadableWorkbook with the reason. The CLI reads this way too: python-calamine aborts the
    whole process on some hostile xls/ods/xlsb files, and a shop owner must see one line."""
    from .safety import regular_file

    regular_file(Path(path))   # a pipe or a missing file: said here, no child started
    reading = _many([Path(path)], 1, lambda: _Reader(timeout, memory_mb, None, per_mb=per_mb))
    try:
        got = next(reading)[1]
    finally:
        reading.close()   # the child leaves now, not when the generator is collected
    if isinstance(got, UnreadableWorkbook):
        raise got
    return cast(list[ComplaintTable], got)   # unpickled from the child: what _work sent


def read_workbook_isolated(
    path: str | Path, *, timeout: float = 10.0, memory_mb: int = 2048, per_mb: float = SECONDS_PER_MB
) -> ComplaintTable:
    """The first complaint table of ``path`` (see read_tables_isolated)."""
    return read_tables_isolated(path, timeout=timeout, memory_mb=memory_mb, per_mb=per_mb)[0]


def read_many_isolated(
    paths: Iterable[Path], *, now: datetime, jobs: int | None = None, timeout: float = 20.0,
    memory_mb: int = 2048, per_mb: float = SECONDS_PER_MB,
) -> Iterator[tuple[Path, Prepared | UnreadableWorkbook]]:
    """Read, validate and encode several shop files, ``jobs`` children at a time (default: one
    per core, at most 4), each file with its own time limit (``timeout`` seconds plus ``per_mb``
    for each MB of the file: ``time_limit``) and each child with its own memory limit; a child
    reads up to FILES_PER_CHILD files, one at a time; yields in completion order a
    ``store.codec.Prepared`` (what the store needs, small to send back) or the reason the file
    was refused.

    A merge of 100 shops is mostly waiting on the reader: on a 2-core shop PC two children
    halve it, while the parent stores what they return. The answers are taken in a thread
    (``ahead``), one file ahead of the caller: a child that finished is given its next file
    while the caller still stores the last one.
    """
    yield from _many_ahead(paths, jobs, lambda: _Reader(timeout, memory_mb, now, per_mb=per_mb))


def check_many_isolated(
    paths: Iterable[Path], *, now: datetime | Clock, lang: str = "zh", jobs: int | None = None, timeout: float = 60.0,
    memory_mb: int = 2048, per_mb: float = SECONDS_PER_MB,
) -> Iterator[tuple[Path, Checked | UnreadableWorkbook]]:
    """``validate``'s reading: every table of each file read and checked in a child (several
    at once), only the findings sent back; yields in completion order (taken one file ahead,
    as ``read_many_isolated``)."""
    yield from _many_ahead(paths, jobs, lambda: _Reader(timeout, memory_mb, now, lang, per_mb))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0   # gone or unreadable: the child says why


def _many_ahead(paths: Iterable[Path], jobs: int | None, new: Any) -> Generator[tuple[Path, Any], None, None]:
    """``_many`` in a thread, one answer ahead of the caller (``ahead``); the answer waiting
    there stays as its reader sent it (``Packed``) and is unpacked in the caller's turn."""
    todo = list(paths)
    reading = ahead(lambda stop: _many(todo, jobs, new, stop), name="complaint-desk-readers")
    try:
        for path, got in reading:
            yield path, got.open() if isinstance(got, Packed) else got
    finally:
        reading.close()   # a caller that stops early: the children leave now


# how often a read whose caller may stop early (``ahead``) looks whether the caller has gone
_STOP_POLL = 0.2


def _many(paths: Iterable[Path], jobs: int | None, new: Any,
          stop: threading.Event | None = None) -> Generator[tuple[Path, Any], None, None]:
    todo: deque[tuple[Path, bool]] = deque((p, False) for p in paths)   # (file, needs a fresh child)
    jobs = max(1, jobs or min(os.cpu_count() or 1, 4))
    idle: list[_Reader] = []
    busy: list[_Reader] = []
    failed: list[tuple[Path, UnreadableWorkbook]] = []

    def hand_out() -> None:
        while todo and len(busy) < jobs:
            path, fresh = todo.popleft()
            # a file read again because a used child ran short, or a big one, leaves its
            # child after it: what it needed stays in that heap
            last = fresh or _size(path) > BIG_FILE
            reader = idle.pop() if idle and not fresh else None
            if reader is None or not reader.give(path, last):   # an idle child may have died
                if len(idle) + len(busy) >= jobs and idle:
                    idle.pop().stop()   # room for the fresh child this file needs
                reader = new()
                if not reader.give(path, last):   # a child that died at once: said for this file
                    failed.append((path, UnreadableWorkbook(path, "读取进程无法启动 (reader could not start)")))
                    continue
            busy.append(reader)

    try:
        while todo or busy or failed:
            if stop is not None and stop.is_set():
                return   # the caller has gone: the children stop below
            hand_out()
            while failed:
                yield failed.pop()
            if not busy:
                continue
            wait_for = max(0.0, min(r.deadline for r in busy) - time.monotonic())
            if stop is not None:
                wait_for = min(wait_for, _STOP_POLL)
            ready = set(wait([r.conn for r in busy], timeout=wait_for))
            now_m = time.monotonic()
            for reader in [r for r in busy if r.conn in ready or r.deadline <= now_m]:
                busy.remove(reader)
                path = cast(Path, reader.path)
                got, again = reader.take()
                if reader.spent():
                    reader.stop()
                else:
                    idle.append(reader)
                if again:
                    todo.appendleft((path, True))
                    continue
                # give out the next file before handing this one over: the children read while
                # the caller stores what they returned
                hand_out()
                # one file's rows at a time in this process: a child that finished meanwhile
                # keeps its answer until the caller has stored this one (memory follows the
                # largest file, not the number of children)
                yield path, got if isinstance(got, UnreadableWorkbook) else got[0]
                del got
    finally:
        for reader in idle + busy:   # done, or the caller stopped early: no child outlives the read
            reader.stop()
