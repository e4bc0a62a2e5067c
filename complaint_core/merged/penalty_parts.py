"""处罚 kept per shop between writes (issue 17), as merged/pieces.py keeps the shops' other rows.

处罚 lists every penalty line the scans ever stored: years of per-day lines, 170,000 in the
bench's chain of 100 shops after a day of scans. It was read, built, encoded and compressed
again at every write: two thirds of a one-shop save's rewrite under ``complaint-desk run``,
where the scan after each read adds that shop's new lines.

The sheet lists the lines by month, then shop (code-point order, as the shops' other rows),
then day. One shop's lines of one month are one compressed segment (merged/deflate.py), kept
with their totals per person (``penalties.month_sums``), so a write lays the unchanged shops'
segments as they are and makes only the changed shops' again. A shop's part is used again
when it holds the same lines and the same decisions on them:

- the lines: a scan only ever adds lines (``Store.penalty_marks``: their count, first and last
  id; the same three mean the same lines);
- what managers decided on them (处罚确认) and which of its loss lines the current rules still
  give (a loss line the rules no longer give is listed only once a manager decided on it);
- the cell styles, the store and this module's format (``namespace``).

汇总's monthly totals add the parts' sums month by month in the sheet's order, whether a part
was made now or kept, so a write with every part kept and one with none show the same figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ..penalties import LOSS_KINDS, MonthSums, PenaltyEvent, add_sums, month_sums, totals_rows
from ..store.view import ManagerCells, StoreView
from .deflate import Segment
from .readback import rendered_rows
from .report import ledger, penalty_row

if TYPE_CHECKING:
    from .pieces import PieceCache
    from .xlsx import RowSpool

FORMAT = 1   # raise when a part's shape or the rows it encodes change


@dataclass
class Month:
    """One shop's lines of one month: 处罚's rows and their ``_rendered`` rows, encoded and
    compressed, and the amounts per person."""

    month: str
    rows: Segment
    count: int
    rendered: Segment | None   # the lines a manager decided on (None: none)
    rendered_count: int
    sums: MonthSums


@dataclass
class PenaltyPart:
    """One shop's part of 处罚 as of its ``mark`` and ``state``."""

    mark: str                 # namespace and the shop's (count, first id, last id)
    state: str                # ``decisions`` on its lines when it was made
    ids: list[str]            # its lines' ids (listed or not), by day
    loss: list[str]           # those of them that are loss lines (损失处罚)
    months: list[Month]
    applied: int              # lines with a 处罚确认 cell saved in the store


def namespace(store_id: str, styles: dict[str, int]) -> str:
    """What every part depends on besides its own shop's lines."""
    raw = json.dumps([FORMAT, store_id, sorted(styles.items())], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def decisions(ids: Iterable[str], loss: Iterable[str], typed: ManagerCells, listed_loss: set[str]) -> str:
    """A digest of what decides how a shop's lines read: each 处罚确认 saved for one of ``ids``,
    and which of its ``loss`` lines are listed (``listed_loss``)."""
    h = hashlib.sha256()
    for i in ids if typed else ():
        cells = typed.get((i,))
        if cells is not None and "confirm" in cells:
            h.update(f"{i}\x1f{cells['confirm'] or ''}\x1e".encode())
    h.update(b"\x1d")
    for i in loss:
        h.update(f"{i}\x1f{int(i in listed_loss)}\x1e".encode())
    return h.hexdigest()


def _listed_loss(loss: Iterable[str], current: set[str], conf: dict[str, str]) -> set[str]:
    """The loss lines 处罚 lists: those the current rules give, and those a manager decided on."""
    return {i for i in loss if i in current or conf.get(i)}


def make_part(mark: str, events: list[PenaltyEvent], *, current_loss: set[str], conf: dict[str, str],
              typed: ManagerCells, rows: RowSpool, rendered: RowSpool) -> PenaltyPart:
    """One shop's part from its ``events`` (by day), encoded with the spools' codecs."""
    ids = [e.event_id for e in events]
    loss = [e.event_id for e in events if e.kind in LOSS_KINDS]
    months: list[Month] = []
    applied = 0
    for month, group in groupby(ledger(events, current_loss, conf), key=attrgetter("month")):
        listed = list(group)
        lines = [penalty_row(e, conf) for e in listed]
        marks: list[list[Any]] = []
        for line in lines:
            applied += 1 if "confirm" in typed.get((line[0],), {}) else 0
            marks += rendered_rows("处罚", [line[0]], {"confirm": line[-1]})
        months.append(Month(month, rows.codec.encode(lines), len(lines),
                            rendered.codec.encode(marks) if marks else None, len(marks),
                            month_sums(listed, conf)))
    state = decisions(ids, loss, typed, _listed_loss(loss, current_loss, conf))
    return PenaltyPart(mark, state, ids, loss, months, applied)


@dataclass
class Laid:
    totals: list[dict[str, Any]]   # 汇总's penalty totals per person and month (``totals_rows``)
    applied: int                   # 处罚确认 cells laid over the lines
    made: int                      # shops whose part was made by this write
    shops: set[str]                # shops with lines (the parts the cache keeps)


def lay_penalties(view: StoreView, *, store_id: str, styles: dict[str, int], current_loss: set[str],
                  rows: RowSpool, rendered: RowSpool, cache: PieceCache | None) -> Laid:
    """Lay 处罚's rows into ``rows`` and their ``_rendered`` rows into ``rendered``, taking each
    shop's part from ``cache`` when it is still right, else making it (and keeping it)."""
    space = namespace(store_id, styles)
    marks = {shop: f"{space}|{n}|{lo}|{hi}" for shop, (n, lo, hi) in view.penalty_marks().items()}
    typed = view.manager_edits("处罚")
    conf = view.confirmations()
    parts: dict[str, PenaltyPart] = {}
    for shop, mark in marks.items():
        def holds(part: PenaltyPart, mark: str = mark) -> bool:
            return part.mark == mark and part.state == decisions(part.ids, part.loss, typed,
                                                                 _listed_loss(part.loss, current_loss, conf))

        part = cache.penalties(shop, holds) if cache is not None else None
        if part is not None:
            parts[shop] = part
            part.ids = part.loss = []   # checked: only its segments and sums are laid
    missing = sorted(set(marks) - set(parts))
    for shop, events in view.shop_penalty_events(missing):
        part = make_part(marks[shop], events, current_loss=current_loss, conf=conf, typed=typed,
                         rows=rows, rendered=rendered)
        if cache is not None:
            cache.save_penalties(shop, part)
        parts[shop] = part
        part.ids = part.loss = []
    sums: MonthSums = {}
    for month in _months(parts):
        for shop in sorted(parts):
            got = month.get(shop)
            if got is None:
                continue
            rows.add_segment(got.rows, got.count)
            if got.rendered is not None:
                rendered.add_segment(got.rendered, got.rendered_count)
            add_sums(sums, got.sums)
    return Laid(totals_rows(sums), sum(p.applied for p in parts.values()), len(missing), set(parts))


def _months(parts: dict[str, PenaltyPart]) -> Iterator[dict[str, Month]]:
    """Month by month (oldest first): each shop's lines of that month."""
    by_month: dict[str, dict[str, Month]] = {}
    for shop, part in parts.items():
        for m in part.months:
            by_month.setdefault(m.month, {})[shop] = m
    for month in sorted(by_month):
        yield by_month[month]
