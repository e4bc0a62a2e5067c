"""Shops' pieces made in other processes while the walk lays them in the shops' order (issue 17).

A full write of a hundred shops spends most of its time making pieces: decoding each shop's
complaints and encoding its 全部投诉 rows, 逾期 lines and cases. One shop's piece does not
depend on another's, so on a PC with two cores two makers work at once while the render lays
what they made, in the same order as ever: the workbook is the same, only sooner.

A maker reads the store over its own connection (the render only reads meanwhile; WAL lets
both read) and answers only for the rows the render saw: when a shop's mark is not the one
the render read (another process stored that shop meanwhile), the maker says so and the render
makes that shop itself, in its own transaction. A maker that fails or dies costs speed only:
the render makes the shop itself, and once no maker is left, every shop after it.

Makers start only when there is enough to make: a process costs about a second to start
(importing the store and the sheets), a shop of 1,000 complaints about a tenth of that to
make. A save of one shop never starts one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..heap import keep_freed_memory, release_freed
from ..isolate import child_context, start_child
from ..procname import MAKER, name_process
from . import keptfile
from .deflate import Segment
from .pieces import Piece, PieceCache, shop_mark, take_archived
from .sheets import FINDINGS_ONE_BY_ONE

if TYPE_CHECKING:
    from .walk import Codecs, Context

log = logging.getLogger("complaint_desk.merged")

# a shop of more complaints than this is big: the maker gives back what it freed after it
BIG_SHOP = 4_000
# the rows still to make from which makers pay for their start (docs/performance.md)
MIN_ROWS = 20_000
# pieces asked for ahead of the one being laid: memory stays a few shops' worth. Fewer when
# those shops hold more than AHEAD_ROWS complaints (a chain of big shops), but never fewer
# than AHEAD_LEAST, one for each of two makers: the render's memory then does not grow with
# the size of its shops either
AHEAD = 4
AHEAD_ROWS = 4_000
AHEAD_LEAST = 2
# seconds without any answer from a busy maker after which it is taken for hung and stopped
# (a shop of 30,000 complaints takes a few seconds): the render makes its shop itself
PATIENCE = 300.0


def workers() -> int:
    """Makers to start: one per core, at most four; none on one core (the render is as fast)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores < 2 else min(cores, 4)


def shared(url: str) -> bool:
    """Whether another process can open the store at ``url`` (an in-memory SQLite store lives
    in one process only)."""
    return not (url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"))


Mark = tuple[int, int, int]


def _serve(conn: Any, url: str, ctx: Context, codecs: Codecs, folder: str | None) -> None:
    """A maker's loop. In: ("piece", shop, mark) or ("findings", path, None). Out: ("filed", token)
    (the piece is kept in the cache), ("ok",) and then the packed piece as bytes (``keptfile``),
    ("findings", key, segment, rows), ("cached",), ("moved",) or ("error", why)."""
    from ..store.db import connect_store
    from .walk import encode_findings, findings_key, make_piece

    name_process(MAKER)
    keep_freed_memory()   # the next shop reuses this one's pages (complaint_core/heap.py)
    store = connect_store(url)
    cache = PieceCache(Path(folder)) if folder is not None else None
    # as in a reader child (isolate._serve): the cycle collector would walk every record and
    # row of the shop being made (5-10% of a maker's time); it runs once between shops instead,
    # and what is still alive then (modules, caches) is frozen out of its way
    gc.disable()
    big = False
    try:
        while True:
            gc.collect()
            if big:
                # what a big shop left in this maker's heap (kept for the next shop) would add
                # to the next big shop's peak: given back once the piece has gone
                release_freed()
                big = False
            gc.freeze()
            ask = conn.recv()
            if ask is None:
                return
            kind, name, mark = ask
            try:
                if kind == "findings":
                    with store.engine.connect() as c:
                        got = store.finding_pieces(name, c)
                        if got is None:
                            conn.send(("moved",))
                            continue
                        shop, digest, size, pieces = got
                        with contextlib.closing(pieces):   # before the connection, read or not
                            # a big file's findings leave their rows and segment in this heap as
                            # a big shop does: without giving them back, each such file added
                            # 10-25 MiB to the maker (issue 17: 71 -> 123 MiB over four files of
                            # 30,000 complaints)
                            big = size > FINDINGS_ONE_BY_ONE
                            key = findings_key(name, shop, digest)
                            if cache is not None and cache.has_findings(name, key):
                                conn.send(("cached",))   # the render reads it from there
                                continue
                            # a big file's JSON decoded as it is read; a small one's at once (faster)
                            data = pieces if big else b"".join(pieces)
                            segment, rows = encode_findings(codecs.findings, name, shop, data)
                    if cache is not None:
                        cache.save_findings(name, key, segment, rows)
                    conn.send(("findings", key, segment, rows))
                    continue
                with _spill(folder) as spill, store.engine.connect() as c:
                    if store.shop_marks(c, shop=name).get(name) != mark:
                        conn.send(("moved",))
                        continue
                    piece = make_piece(store.shop_records(name, c), shop_mark(ctx.namespace, mark), ctx, codecs,
                                       spill=spill)
                    # made from the rows the render saw: rows only ever gain versions, so an
                    # unmoved mark after the make means nothing moved during it either
                    if store.shop_marks(c, shop=name).get(name) != mark:
                        conn.send(("moved",))
                        continue
                    archived = take_archived(piece)   # kept beside the piece, not sent
                    token = piece.token
                    big = len(piece.refs) > BIG_SHOP
                    # kept, the piece is not sent: the render lays it from its file, its rows
                    # copied from there into the package. Where it cannot be kept it goes once
                    # packed, the bytes sent as they are, not pickled again into a message: a
                    # maker held three copies of a shop's piece at once, and its memory grew with
                    # the size of the shop (issue 17)
                    if cache is not None and cache.save(name, piece):
                        del piece
                        cache.save_archived(name, token, archived)
                        del archived
                        conn.send(("filed", token))
                        continue
                    del archived
                    data = keptfile.dumps(piece)
                    del piece
                conn.send(("ok",))
                conn.send_bytes(data)
                del data
            except Exception as exc:  # noqa: BLE001 - the render makes this shop itself
                conn.send(("error", f"{type(exc).__name__}: {str(exc)[:200]}"))
    except (EOFError, OSError):
        return   # the render has gone: nothing to answer
    finally:
        store.engine.dispose()


@contextlib.contextmanager
def _spill(folder: str | None) -> Iterator[BinaryIO | None]:
    """A nameless file in the pieces' folder for a piece's rows as they are made (``make_piece``),
    gone once the piece is kept; None (the rows stay in memory) where none can be made there."""
    fh: BinaryIO | None = None
    if folder is not None and os.path.isdir(folder):
        try:
            fh = cast(BinaryIO, tempfile.TemporaryFile(dir=folder, buffering=0))  # noqa: SIM115 - closed below
        except OSError:
            fh = None
    try:
        yield fh
    finally:
        if fh is not None:
            fh.close()


Job = tuple[str, str]   # ("piece", shop) or ("findings", path)


@dataclass
class _Worker:
    proc: Any
    conn: Any
    job: Job | None = None       # what it is making, None when idle


class Makers:
    """Up to ``count`` maker processes for one walk; ``ask`` queues a shop, ``take`` waits for
    its piece (None: the render makes it itself); ``ask_findings`` and ``take_findings`` do
    the same for one file's 校验问题 rows, once the shops are asked for."""

    def __init__(self, url: str, ctx: Context, codecs: Codecs, *, cache: PieceCache | None, count: int) -> None:
        mp = child_context()
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[Job, Mark | None]] = deque()
        self._done: dict[Job, Any] = {}
        self._cache = cache
        folder = str(cache.folder) if cache is not None else None
        for _ in range(count):
            mine, theirs = mp.Pipe()
            proc = mp.Process(target=_serve, args=(theirs, url, ctx, codecs, folder), daemon=True)
            start_child(proc)
            theirs.close()
            self._workers.append(_Worker(proc, mine))

    def ask(self, shop: str, mark: Mark) -> None:
        self._queue.append((("piece", shop), mark))
        self._dispatch()

    def take(self, shop: str) -> Piece | None:
        """The piece of ``shop`` (asked before), once made; None when the render must make it."""
        got: tuple[str, Any] | None = self._take(("piece", shop))
        if got is None:
            return None
        how, what = got
        if how == "filed":
            # the maker kept it: its rows stay in its file (another write that kept a piece
            # of this shop since has another token: then the render makes it itself)
            return None if self._cache is None else self._cache.load(shop, lambda p: p.token == what)
        # kept packed until laid: a made piece waiting its turn takes half the memory so
        piece: Piece = keptfile.loads(what)
        return piece

    def ask_findings(self, path: str) -> None:
        self._queue.append((("findings", path), None))
        self._dispatch()

    def take_findings(self, path: str) -> tuple[str, Segment, int] | None:
        """(key, rows encoded, how many) of the file ``path`` (asked before); None when the
        render finds them in the cache or encodes them itself."""
        got: tuple[str, Segment, int] | None = self._take(("findings", path))
        return got

    def _take(self, job: Job) -> Any:
        while job not in self._done:
            busy = [w for w in self._workers if w.job is not None]
            if not busy:   # every maker is gone: what is still queued is the render's
                self._done.update({j: None for j, _m in self._queue})
                self._queue.clear()
                break
            ready = wait([w.conn for w in busy], timeout=PATIENCE)
            if not ready:
                log.warning("汇总子进程 %s 秒无响应，已停止，由主进程继续 (piece makers hung)", PATIENCE)
                for worker in busy:
                    assert worker.job is not None   # busy: it holds a job
                    self._done[worker.job] = None
                    self._drop(worker)
            for conn in ready:
                worker = next(w for w in busy if w.conn is conn)
                self._answer(worker)
            self._dispatch()
        return self._done.pop(job, None)

    def _answer(self, worker: _Worker) -> None:
        job, worker.job = worker.job, None
        assert job is not None
        try:
            answer = worker.conn.recv()
            if answer[0] == "ok":
                answer = ("ok", worker.conn.recv_bytes())   # the packed piece, sent right after
        except (EOFError, OSError):
            log.info("汇总子进程已退出，由主进程继续 (piece maker exited: %s)", worker.proc.exitcode)
            self._drop(worker)
            self._done[job] = None
            return
        if answer[0] in ("ok", "filed"):
            self._done[job] = answer
        elif answer[0] == "findings":
            self._done[job] = answer[1:]
        else:
            if answer[0] == "error":
                log.info("%s 由主进程重做 (piece maker failed: %s)", job[1], answer[1])
            self._done[job] = None

    def _dispatch(self) -> None:
        for worker in list(self._workers):
            if not self._queue:
                return
            if worker.job is None:
                job, mark = self._queue.popleft()
                try:
                    worker.conn.send((*job, mark))
                except (OSError, ValueError):
                    self._drop(worker)
                    self._done[job] = None
                    continue
                worker.job = job

    def _drop(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        if worker.proc.is_alive():
            worker.proc.kill()
        worker.proc.join(5)

    def close(self) -> None:
        for worker in list(self._workers):
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in list(self._workers):
            worker.proc.join(5)
            self._drop(worker)
