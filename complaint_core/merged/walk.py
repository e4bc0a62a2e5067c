"""One walk over the store's complaints, shop by shop, feeding every sheet of the merged workbook.

Decoding a stored complaint costs more than anything done with it afterwards, and a chain's
million complaints do not fit a shop PC's memory. So each shop's complaints are decoded once,
handed to every sheet that needs them (全部投诉's rows, 逾期's items, 汇总's counts,
案例手册's cases, the yearly archives, the managers' cells to keep) and dropped before the next
shop's (issue 17). The rows go into sinks as they are made: the writer's spools, which encode
them to worksheet XML on disk, or plain lists when a test wants to look at the values.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..store.codec import ALL_SHEET
from ..store.view import ManagerCells, StoreView
from .archive import Year, closed_year
from .readback import rendered_rows
from .report import CaseKey, Summary, case_of, current_loss_ids, flagged_in, overdue_row
from .sheets import AllRows, orphan, typed_cells


class Sink(Protocol):
    """Where a sheet's rows go as they are made."""

    def add(self, row: list[Any]) -> None: ...


class ListSink(list[list[Any]]):
    """Rows kept as values (a test, or a small sheet)."""

    def add(self, row: list[Any]) -> None:
        self.append(row)


class CaseSorter:
    """案例手册's rows in their order (category, outcome, latest first) without holding them:
    each row goes to a temporary file as it comes, only its place stays in memory."""

    def __init__(self) -> None:
        self._file: Any = tempfile.TemporaryFile(prefix="complaint-desk-cases-")  # noqa: SIM115 - closed by close()
        self._places: list[tuple[CaseKey, int, int, int]] = []   # (order, arrival, offset, length)

    def add(self, key: CaseKey, row: list[Any]) -> None:
        data = pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)
        self._places.append((key, len(self._places), self._file.tell(), len(data)))
        self._file.write(data)

    def __len__(self) -> int:
        return len(self._places)

    def rows(self) -> Iterator[list[Any]]:
        # arrival breaks ties: equal cases keep the sheet's order, as a stable sort would
        self._places.sort()
        for _key, _n, offset, length in self._places:
            self._file.seek(offset)
            row: list[Any] = pickle.loads(self._file.read(length))   # noqa: S301 - our own temp file
            yield row
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()


@dataclass
class Walked:
    """What the walk found besides the rows it put into the sinks."""

    now: datetime
    rows: int = 0                         # rows of 全部投诉
    conflicts_shown: int = 0              # rows of 冲突 (conflicts and orphaned manager cells)
    applied: int = 0                      # managers' cells laid over the shops' values
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    loss_ids: set[str] = field(default_factory=set)
    years: dict[int, Year] = field(default_factory=dict)   # closed years that go to archives
    summary: Summary = field(init=False)
    cases: CaseSorter = field(default_factory=CaseSorter)

    def __post_init__(self) -> None:
        self.summary = Summary(self.now)


def walk(view: StoreView, now: datetime, *, closed_years: int, all_rows: Sink, overdue_rows: Sink,
         rendered: Sink, need_loss: bool) -> Walked:
    """Walk every stored complaint once. ``need_loss``: the store holds loss penalty lines,
    whose rules must be re-applied to know which are still current (处罚)."""
    out = Walked(now)
    edits: ManagerCells = view.manager_edits(ALL_SHEET)
    typed = typed_cells(edits)
    seen: set[str] = set()
    make = AllRows()
    owned = [(i, c.key) for i, c in enumerate(make.columns) if c.manager_owned]
    rules = view.rules()
    keys = view.flagged_keys(now + timedelta(hours=view.warn_hours()))
    first_kept = now.year - max(closed_years, 1) + 1
    for records, conflicts in view.shop_batches():
        out.conflicts.extend(conflicts)
        live = [r for r in records if not r["deleted"]]
        out.summary.add(live)
        if need_loss:
            out.loss_ids |= current_loss_ids(live, rules)
        kept = []
        for r in records:
            ref = r["record_ref"]
            if ref in typed:
                seen.add(ref)
                if r["deleted"]:
                    out.orphans.append(orphan(ref, typed[ref], r))
            year = closed_year(r)
            if year is not None and year < first_kept:
                out.years.setdefault(year, Year(year)).add(r, edits)
            else:
                kept.append(r)
        for r in kept:
            row = make(r)
            cells = edits.get((r["record_ref"],))
            if cells:
                for i, key in owned:
                    if key in cells:
                        row[i] = cells[key]
                        out.applied += 1
            all_rows.add(row)
            out.rows += 1
            for line in rendered_rows(ALL_SHEET, [r["record_ref"]], {k: row[i] for i, k in owned}):
                rendered.add(line)
            if not r["deleted"] and (case := case_of(r, now)) is not None:
                out.cases.add(*case)
        for item in flagged_in([r for r in kept if not r["deleted"]], keys, now):
            overdue_rows.add(overdue_row(item))
    out.orphans += [orphan(ref, cells, None) for ref, cells in typed.items() if ref not in seen]
    return out

