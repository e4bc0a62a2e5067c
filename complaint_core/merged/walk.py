"""One walk over the store's complaints, shop by shop, feeding every sheet of the merged workbook.

Decoding a stored complaint costs more than anything done with it afterwards, and a chain's
million complaints do not fit a shop PC's memory. So each shop's complaints are decoded once,
turned into that shop's ``Piece`` (全部投诉's rows encoded and compressed, 逾期's lines,
汇总's counts, 案例手册's cases, its archived complaints, the managers' cells it keeps) and
dropped before the next shop's (issue 17). A shop whose rows, managers' cells and clock
horizon have not moved since the last write is not decoded at all: its piece is reused
(merged/pieces.py), so one shop's save costs that shop's work.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from ..overdue import (
    LISTED,
    Deadline,
    OverdueItem,
    deadline_state,
    record_deadlines,
    record_items,
)
from ..rules_book import Rules
from ..store.codec import ALL_SHEET
from ..store.view import ManagerCells, Record, StoreView
from . import makers
from .archive import Year, closed_year
from .deflate import FileSegment, Segment
from .pieces import (
    FORMAT,
    PACK_FROM,
    ChainTally,
    Line,
    Piece,
    PieceCache,
    edits_hash,
    pack_lines,
    shop_mark,
    state_cell,
    take_archived,
    unpack_lines,
    xml_bytes,
    year_end,
)
from .readback import rendered_table_rows
from .report import CaseKey, Summary, case_of, current_loss_ids, overdue_row
from .rowxml import Cells, text_cell
from .sheets import AllRows, finding_rows, orphan, typed_cells
from .xlsx import RowCodec, RowSpool


@dataclass
class Sinks:
    """The spools the walk fills, one per big sheet (``_rendered`` included)."""

    all_rows: RowSpool
    overdue: RowSpool
    rendered: RowSpool
    cases: RowSpool
    findings: RowSpool

    def codecs(self) -> Codecs:
        return Codecs(self.all_rows.codec, self.overdue.codec, self.rendered.codec, self.cases.codec,
                      self.findings.codec)


@dataclass(frozen=True)
class Codecs:
    """How a piece's rows are encoded, one per spool: all a piece needs of the book, so that a
    piece maker in another process (merged/makers.py) encodes exactly as the book would."""

    all_rows: RowCodec
    overdue: RowCodec
    rendered: RowCodec
    cases: RowCodec
    findings: RowCodec


@dataclass
class Walked:
    """What the walk found besides the rows it put into the spools."""

    now: datetime
    rows: int = 0                         # rows of 全部投诉
    conflicts_shown: int = 0              # rows of 冲突 (conflicts and orphaned manager cells)
    applied: int = 0                      # managers' cells laid over the shops' values
    reused: int = 0                       # shops whose piece of the last write was reused
    apart: int = 0                        # shops whose piece a maker process made (merged/makers.py)
    penalties_made: int = 0               # shops whose part of 处罚 was made again (merged/penalty_parts.py)
    shops: set[str] = field(default_factory=set)   # every shop the store holds
    sources: set[str] = field(default_factory=set)  # every file with findings on 校验问题
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    loss_ids: set[str] = field(default_factory=set)
    years: dict[int, Year] = field(default_factory=dict)   # closed years that go to archives
    summary: Summary = field(init=False)

    tally: ChainTally | None = None

    def __post_init__(self) -> None:
        self.summary = Summary(self.now, chain=self.tally)


@dataclass
class Context:
    """What every shop's piece is made with besides its own rows (the same for all shops of a walk)."""

    now: datetime
    namespace: str
    edits: ManagerCells
    typed: dict[str, dict[str, Any]]
    rules: Rules
    first_kept: int


def walk(view: StoreView, now: datetime, *, closed_years: int, sinks: Sinks, namespace: str,
         cache: PieceCache | None, stored_loss: set[str], tally: ChainTally, url: str | None = None) -> Walked:
    """Walk every shop once, reusing the pieces ``cache`` holds that are still good.
    ``stored_loss``: the loss penalty lines the store holds (only those are looked up in the
    walk's ``loss_ids``: the lines the current rules still give). ``url``: the store's, for
    makers in other processes (merged/makers.py) when there is much to make; None: none."""
    out = Walked(now, tally=tally)
    edits = view.manager_edits(ALL_SHEET)
    ctx = Context(now, namespace, edits, typed_cells(edits), view.rules(), now.year - max(closed_years, 1) + 1)
    seen: set[str] = set()
    marks = view.shop_marks()
    order = sorted(marks)
    codecs = sinks.codecs()
    team = _Team(url, ctx, codecs, cache, marks, order)
    ahead: deque[tuple[str, str, Piece | None]] = deque()   # (shop, mark, piece; None: asked of a maker)

    def lay_first() -> None:
        shop, mark, piece = ahead.popleft()
        if piece is None and team.makers is not None:
            piece = team.makers.take(shop)
            out.apart += piece is not None
        if piece is None:
            piece = make_piece(view.shop_records(shop), mark, ctx, codecs)
            archived = take_archived(piece)
            if cache is not None:
                cache.save(shop, piece)
                cache.save_archived(shop, piece.token, archived)
        tally.sync(shop, piece)
        _lay(shop, piece, out, sinks, seen, stored_loss)

    try:
        for shop in order:
            mark = shop_mark(namespace, marks[shop])
            def holds(piece: Piece, mark: str = mark) -> bool:
                return piece.usable(mark, edits, now)

            # a piece that no longer holds is turned down before its rows are read
            piece = cache.load(shop, holds) if cache is not None else None
            if piece is not None:
                out.reused += 1
            else:
                if team.wanted(shop):
                    assert team.makers is not None
                    team.makers.ask(shop, marks[shop])
            ahead.append((shop, mark, piece))
            while ahead and (team.makers is None or len(ahead) > makers.AHEAD or (
                    len(ahead) > makers.AHEAD_LEAST and sum(marks[s][0] for s, _m, _p in ahead) > makers.AHEAD_ROWS)):
                lay_first()
        # the files' 校验问题 rows next: makers that finished the last shops start on them
        # while the render lays those shops (a first write's 170,000 findings took 1.5 s)
        files = view.finding_digests()   # (path, shop, digest): the findings themselves stay in the store
        paths = deque(path for path, _shop, _digest in files if team.makers is not None)
        asked: set[str] = set()

        def ask_findings() -> None:
            # a few files ahead of the one being laid, as for the shops: memory stays flat
            while paths and len(asked) < makers.AHEAD and team.makers is not None:
                asked.add(paths[0])
                team.makers.ask_findings(paths.popleft())

        ask_findings()
        while ahead:
            lay_first()
        tally.settle(set(marks))   # every shop is counted: the chain's totals are summed meanwhile
        for path, shop, digest in files:
            out.sources.add(path)
            key = findings_key(path, shop, digest)
            made = None
            if team.makers is not None and path in asked:
                asked.discard(path)
                made = team.makers.take_findings(path)
                ask_findings()
            got: tuple[Segment | FileSegment, int] | None = made[1:] if made is not None and made[0] == key else None
            if got is None and cache is not None:
                got = cache.findings(path, key)
            if got is None:
                # read only now: most writes keep most files' rows (a shop's save changes one file's)
                stored = view.finding_file(path)
                if stored is None:   # never so today: a file's findings are replaced, not removed
                    continue
                # encoded and kept as read now: where the store's read does not hold still
                # (PostgreSQL reads what is committed), a file stored again since its digest
                # was read is never kept under another content's key
                shop, data, digest = stored
                got = encode_findings(sinks.findings.codec, path, shop, data)
                if cache is not None:
                    cache.save_findings(path, findings_key(path, shop, digest), *got)
            sinks.findings.add_segment(*got)
    finally:
        team.close()
    out.orphans += [orphan(ref, cells, None) for ref, cells in ctx.typed.items() if ref not in seen]
    out.shops = set(marks)
    return out


class _Team:
    """The walk's makers, started when the rows still to make are worth a process's start
    (``makers.MIN_ROWS``): at once when the shops without any piece hold that many (a first
    write, a new chain), or once the shops whose piece no longer holds add up to that many (new
    rules remake every shop: the first ones are made here, the rest by makers)."""

    def __init__(self, url: str | None, ctx: Context, codecs: Codecs, cache: PieceCache | None,
                 marks: dict[str, tuple[int, int, int]], order: list[str]) -> None:
        self.makers: makers.Makers | None = None
        self._args = (url, ctx, codecs, cache)
        self._count = makers.workers() if url is not None and makers.shared(url) else 0
        self._marks = marks
        self._bare = sum(marks[shop][0] for shop in order if cache is None or not cache.has(shop))
        self._unusable = 0

    def wanted(self, shop: str) -> bool:
        """``shop`` must be made: whether a maker makes it (starting them if now worth it)."""
        if self.makers is None and self._count:
            self._unusable += self._marks[shop][0]
            if max(self._bare, self._unusable) >= makers.MIN_ROWS:
                url, ctx, codecs, cache = self._args
                assert url is not None
                self.makers = makers.Makers(url, ctx, codecs, cache=cache, count=self._count)
        return self.makers is not None

    def close(self) -> None:
        if self.makers is not None:
            self.makers.close()


def findings_key(path: str, shop: str, digest: str) -> str:
    """What a file's encoded 校验问题 rows are kept under: they change only with its findings
    (``digest``: of their stored JSON, ``Store.finding_digests``)."""
    return hashlib.sha256(f"{FORMAT}|{shop}|{path}|{digest}".encode()).hexdigest()


def encode_findings(codec: RowCodec, path: str, shop: str, data: str | bytes | Iterable[bytes]) -> tuple[Segment, int]:
    """A file's 校验问题 rows (``Store.finding_file`` gives its stored JSON), encoded."""
    count = 0

    def counted() -> Iterator[list[Any]]:
        nonlocal count
        for row in finding_rows(path, shop, data):
            count += 1
            yield row

    return codec.encode(counted()), count


def make_piece(chunks: Iterator[tuple[list[Record], list[dict[str, Any]]]], mark: str, ctx: Context,
               codecs: Codecs, spill: BinaryIO | None = None) -> Piece:
    """One shop's piece, from its decoded complaints (a chunk at a time), as of ``ctx.now``.

    ``spill``: a file (open for reading and writing, unbuffered) the rows' compressed segments
    are written to as they are made, the piece holding where they are: a piece maker keeps a
    shop's piece in a file, and held them in memory until then (14 MiB for a shop of 30,000
    complaints, issue 17). The file stays open until the piece is kept."""
    now = ctx.now
    make = AllRows()
    piece = Piece(mark=mark, token=uuid.uuid4().hex, refs=[], edits="", made=now, until=year_end(now), rows=0, all_xml=[], rendered_rows=0,
                  rendered_xml=[], applied=0, summary=Summary(now), dyn=[], lines=[], cases=[], loss_ids=set(),
                  conflicts=[], orphans=[], seen=set())
    years: dict[int, Year] = {}
    lined = 0   # 逾期 lines so far

    def spilt(segment: Segment) -> Segment | FileSegment:
        if spill is None:
            return segment
        at = spill.seek(0, os.SEEK_END)
        spill.write(segment.data)
        return FileSegment(spill, at, len(segment.data), segment.crc, segment.size)

    def add(records: list[Record], conflicts: list[dict[str, Any]]) -> None:
        """One chunk of the shop's complaints into the piece (what it leaves behind is freed on return)."""
        nonlocal lined
        piece.conflicts += conflicts
        piece.refs += [r["record_ref"] for r in records]
        live = [r for r in records if not r["deleted"]]
        states: Counter[tuple[str, str]] = Counter()
        # id(record) -> those of its deadlines 逾期 lists or may list: met late, or still open
        listed: dict[int, list[Deadline]] = {}
        for r in live:
            found = record_deadlines(r)          # worked out once for 汇总 and 逾期
            for deadline in found:
                kind, due, done, warn = deadline
                state = deadline_state(due, done, now, warn)
                states[(kind, state)] += 1
                if done is None:
                    # open: its state (not yet, due soon, overdue) and its 逾期 line are worked
                    # out at each write, so the piece still holds when the deadline comes within
                    # its warning time (a chain with deadlines ahead made a few shops again at
                    # most saves: at 3,000 complaints a shop, a save then took 7 s, not 2.5)
                    piece.dyn.append((kind, due, warn))
                if done is None or state in LISTED:
                    listed.setdefault(id(r), []).append(deadline)
            done = r.get("resolved_at")
            if isinstance(done, datetime) and done > now:
                piece.until = min(piece.until, done)              # resolved later than now: 未解决 until then
        piece.summary.add(live, states)
        piece.loss_ids |= current_loss_ids(live, ctx.rules)
        rows: list[list[Any]] = []
        kept: list[Record] = []
        cases: list[tuple[CaseKey, list[Any]]] = []
        archived: dict[int, list[list[Any]]] = {}
        for r in records:
            ref = r["record_ref"]
            if ref in ctx.typed:
                piece.seen.add(ref)
                if r["deleted"]:
                    piece.orphans.append(orphan(ref, ctx.typed[ref], r))
            row = make(r)
            laid = make.lay(row, ctx.edits.get((ref,)))   # an archive shows the managers' cells too
            year = closed_year(r)
            if year is not None and year < ctx.first_kept:
                years.setdefault(year, Year(year)).add(r, ctx.edits)
                archived.setdefault(year, []).append(row)
                continue
            kept.append(r)
            piece.applied += laid
            rows.append(row)
            if not r["deleted"] and (case := case_of(r, now)) is not None:
                cases.append(case)
        piece.rows += len(rows)
        # the archived complaints' rows, encoded here where they are decoded anyway: a year's
        # archive is then put together from the shops' rows (archive.write_archives) instead
        # of decoding the year from the store again
        for year, made in archived.items():
            piece.archived.setdefault(year, []).append((spilt(codecs.all_rows.encode(made)), len(made)))
        rendered = rendered_table_rows(ALL_SHEET, [r["record_ref"] for r in kept], rows, make.owned)
        piece.all_xml.append((spilt(codecs.all_rows.encode(rows)), len(rows)))
        piece.rendered_rows += len(rendered)
        piece.rendered_xml.append((spilt(codecs.rendered.encode(rendered)), len(rendered)))
        piece.cases += zip([key for key, _ in cases], map(xml_bytes, codecs.cases.cells.rows([row for _, row in cases])),
                           strict=True)
        shown = [(r, listed[id(r)]) for r in kept if id(r) in listed]
        warns = {r["record_id"]: found[0][3] for r, found in shown}
        items = [item for r, found in shown for item in record_items(r, found, now=now)]
        if items:
            piece.lines.append(_lines(items, warns, codecs.overdue))
            lined += len(items)
            if lined >= PACK_FROM:   # a big shop: its batches so far, and from now on each, packed
                piece.lines = [pack_lines(b) if isinstance(b, list) else b for b in piece.lines]

    for chunk in chunks:
        add(*chunk)
        # a big shop comes a chunk at a time: this one's records, rows and lines are let go of
        # before the next is read and decoded, so that two chunks are never held at once
        del chunk
    # …and the states of the deadlines worked out at each write are left out of the fixed counts
    piece.summary.states.subtract((kind, deadline_state(due, None, now, warn)) for kind, due, warn in piece.dyn)
    piece.summary.states = +piece.summary.states
    piece.edits = edits_hash(piece.refs, ctx.edits)
    piece.years = {y: (v.shop_keys, v.fingerprint) for y, v in years.items()}
    return piece


def _lines(items: list[OverdueItem], warns: dict[str, timedelta], sink: RowCodec) -> list[Line]:
    """逾期's lines of ``items`` (met late, or still open): a deadline met late reads the same
    from now on and is encoded whole; one still open keeps its fixed cells encoded and is
    finished at each write (``_lay``), listed from the moment it is due soon."""
    late = [i for i, item in enumerate(items) if item.state == "done_late"]
    open_ = [i for i, item in enumerate(items) if item.state != "done_late"]
    out: list[Line] = [b""] * len(items)
    for i, xml in zip(late, sink.cells.rows([overdue_row(items[i]) for i in late]), strict=True):
        out[i] = xml_bytes(xml)
    rows = [overdue_row(items[i], why="") for i in open_]   # state, hours late and the rest of why: at each write
    pre = sink.cells.many([row[:4] for row in rows], pad=True)
    post = sink.cells.many([row[6:8] for row in rows], pad=True, first=6)
    for i, head, tail in zip(open_, pre, post, strict=True):
        item = items[i]
        out[i] = (item.due, warns[item.record_id], xml_bytes(head), xml_bytes(tail), item.how)
    return out


def _finished(lines: list[Line], now: datetime, cells: Cells) -> list[bytes]:
    """逾期's rows of a piece's lines as of ``now``: an open deadline listed once it is within its
    warning time, its state, hours late and "截至 … 仍未完成" filled in, the shop's lines at
    once (a column's texts checked once)."""
    # an open deadline is on 逾期 from the moment it is due soon
    lines = [line for line in lines if isinstance(line, bytes) or now >= line[0] - line[1]]
    opened = [line for line in lines if not isinstance(line, bytes)]
    past = [now > line[0] for line in opened]
    until = f"；截至 {now.isoformat(sep=' ', timespec='minutes')} 仍未完成"
    whys = [line[4] + until if late else line[4] for line, late in zip(opened, past, strict=True)]
    hours = [round((now - line[0]).total_seconds() / 3600, 1) if late else 0.0
             for line, late in zip(opened, past, strict=True)]
    # made due soon or overdue, and the clock only goes on: still due soon when not past
    why_cells = cells.many([[w] for w in whys], first=8) if all(whys) else [text_cell(w) for w in whys]
    made = iter(zip(past, cells.many([[h] for h in hours], first=5), why_cells, strict=True))
    overdue, soon = state_cell("overdue"), state_cell("due_soon")
    rows: list[bytes] = []
    for line in lines:
        if isinstance(line, bytes):
            rows.append(line)
            continue
        late, hours_cell, why_cell = next(made)
        rows.append(b"".join((b"<row>", line[2], overdue if late else soon, xml_bytes(hours_cell), line[3],
                              xml_bytes(why_cell), b"</row>")))
    return rows


def _lay(shop: str, piece: Piece, out: Walked, sinks: Sinks, seen: set[str], stored_loss: set[str]) -> None:
    """Put one shop's piece into the spools and the walk's totals."""
    now = out.now
    for segment, count in piece.all_xml:
        sinks.all_rows.add_segment(segment, count)
    for segment, count in piece.rendered_xml:
        sinks.rendered.add_segment(segment, count)
    out.rows += piece.rows
    out.applied += piece.applied
    out.summary.merge(piece.summary)   # its states are those that no longer change…
    out.summary.states.update((kind, deadline_state(due, None, now, warn)) for kind, due, warn in piece.dyn)
    for batch in piece.lines:   # one batch unpacked at a time
        sinks.overdue.extend_xml(_finished(unpack_lines(batch), now, sinks.overdue.cells))
    out.loss_ids |= piece.loss_ids & stored_loss
    out.conflicts += piece.conflicts
    out.orphans += piece.orphans
    seen |= piece.seen
    for year, (keys, digest) in piece.years.items():
        out.years.setdefault(year, Year(year)).extend(keys, digest, shop, piece.token)
