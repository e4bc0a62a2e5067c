"""A workbook for today, archives for history (docs/sync.md, "Archives").

The merged workbook keeps the open complaints and the closed ones of the last ``closed_years``
years (this year included). A complaint closed earlier goes to one archive workbook per year
beside it, ``<merged name>-2024.xlsx``: written when its year leaves the merged workbook, and
again only when one of its rows (or a manager's cell on one) changes. A year with more rows
than an Excel sheet holds is split into ``-2024-2.xlsx``, ``-2024-3.xlsx``…: nothing is dropped.

Archives are read-only: what a manager types into one is not read back. Their cells stay in
the store (typed into the merged workbook while the complaint was there) and are shown in the
archive; the sheet's note says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..safety import real_path
from ..store import Store
from ..store.codec import ALL_SHEET, content_hash
from .model import SheetData
from .sheets import AllRows, all_sheet
from .xlsx import EXCEL_MAX_ROWS, write_workbook

log = logging.getLogger("complaint_desk.merged")

CLOSED_STATUSES = ("已解决", "已回访", "已关闭", "不成立")
DEFAULT_CLOSED_YEARS = 2       # this year and the previous one stay in the merged workbook
SETTING = "closed_years"       # chain_rules row: [store] closed_years as the config last said
# rows per archive workbook: the sheet's note and header take two of Excel's rows
ARCHIVE_MAX_ROWS = EXCEL_MAX_ROWS - 2
NOTE = ("只读归档：{year} 年已结案的投诉（按解决时间，无解决时间的按受理时间）。在此修改不会被保存；"
        "主管批示保存在数据库中并显示在此 (read-only archive: typing here is not kept)")


def closed_year(rec: dict[str, Any]) -> int | None:
    """The year a complaint closed in, or None while it is open."""
    done = rec.get("resolved_at")
    closed = (rec.get("status") in CLOSED_STATUSES or rec.get("validity") == "不成立"
              or isinstance(done, datetime))
    if not closed:
        return None
    when = done if isinstance(done, datetime) else rec.get("received_at")
    return when.year if isinstance(when, datetime) else None


def archive_paths(out: Path, year: int, rows: int) -> list[Path]:
    parts = max((rows + ARCHIVE_MAX_ROWS - 1) // ARCHIVE_MAX_ROWS, 1)
    return [out.with_name(f"{out.stem}-{year}{'' if k == 1 else f'-{k}'}{out.suffix}") for k in range(1, parts + 1)]


@dataclass
class Written:
    year: int
    path: Path
    rows: int
    rewritten: bool


class Year:
    """One closed year's complaints as the render walks past them: their keys, in the sheet's
    order, and a fingerprint of what its archive shows (kept small: the archive is rewritten
    only when the fingerprint changes, and only then are its complaints decoded again)."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.keys: list[str] = []
        self._hash = hashlib.sha256()

    def add(self, r: dict[str, Any], edits: dict[tuple[str, ...], dict[str, Any]]) -> None:
        self.keys.append(r["record_id"])
        self._hash.update(f"{r['record_id']}\x1f{r['content_hash']}\x1f{r['version']}\x1f{r['deleted']}\x1f"
                          f"{r['source_file']}\x1f{r['source_row']}\x1e".encode())
        cells = edits.get((r["record_ref"],))
        if cells:
            self._hash.update(json.dumps(cells, ensure_ascii=False, sort_keys=True, default=str).encode())

    def extend(self, keys: list[str], digest: str) -> None:
        """Add a shop's complaints of this year (its own ``Year``'s keys and fingerprint)."""
        self.keys += keys
        self._hash.update(digest.encode())

    @property
    def fingerprint(self) -> str:
        return self._hash.hexdigest()[:32]


def _overlay(sheet: SheetData, edits: dict[tuple[str, ...], dict[str, Any]]) -> None:
    owned = [(i, c.key) for i, c in enumerate(sheet.columns) if c.manager_owned]
    ref = next(i for i, c in enumerate(sheet.columns) if c.key == "_ref")
    assert isinstance(sheet.rows, list)
    for row in sheet.rows:
        got = edits.get((row[ref],))
        if got:
            for i, key in owned:
                if key in got:
                    row[i] = got[key]


def write_archives(store: Store, out: Path, years: dict[int, Year], now: datetime) -> list[Written]:
    """Write each year's archive whose rows changed since it was last written (or is missing)."""
    done: list[Written] = []
    if not years:
        return done
    edits = store.manager_edits(ALL_SHEET)
    for year in sorted(years):
        keys = years[year].keys
        paths = archive_paths(out, year, len(keys))
        name = f"archive|{content_hash(str(real_path(out)))}|{year}"
        stamp = years[year].fingerprint + f"|{len(paths)}"
        rewrite = store._named(name) != stamp or not all(p.exists() for p in paths)
        for k, path in enumerate(paths):
            part = keys[k * ARCHIVE_MAX_ROWS:(k + 1) * ARCHIVE_MAX_ROWS]
            if rewrite:
                # the store's order is the walk's: (shop, received, record)
                make = AllRows()
                sheet = all_sheet([make(r) for r in store.records_for(part)])
                sheet.note = NOTE.format(year=year) + (f"（第 {k + 1}/{len(paths)} 部分）" if len(paths) > 1 else "")
                sheet.key_columns = ()   # nothing is read back from an archive
                _overlay(sheet, edits)
                with atomic_write(path) as tmp:
                    write_workbook(tmp, [sheet])
            done.append(Written(year, path, len(part), rewrite))
        if rewrite:
            store.save_named(name, stamp, now=now)
            log.info("%d 年已结案的投诉 %d 条已写入归档 %s", year, len(keys), ", ".join(p.name for p in paths))
    return done


def closed_years_setting(store: Store) -> int:
    """[store] closed_years as the config last saved it (``complaint-desk run``); 2 without one."""
    data = store._named(SETTING)
    try:
        return max(int(data), 1) if data else DEFAULT_CLOSED_YEARS
    except ValueError:
        return DEFAULT_CLOSED_YEARS


def save_closed_years(store: Store, years: int, *, now: datetime) -> None:
    if store._named(SETTING) != str(years):
        store.save_named(SETTING, str(years), now=now)
