"""The sheets the store itself knows: 全部投诉, 冲突, 校验问题, 来源."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..schema import FIELD_BY_KEY, FIELDS
from ..store.codec import ALL_SHEET, each_in_array, loads
from ..store.view import ManagerCells, Record
from .model import Column, ColumnKind, SheetData, Spooled


@functools.lru_cache(maxsize=4096)
def file_name(path: str) -> str:
    # a few hundred shop files behind a million rows: one Path per file, not per row
    return Path(path).name


_KIND: dict[str, ColumnKind] = {"datetime": "datetime", "money": "money", "choice": "text", "text": "text"}


def all_columns() -> list[Column]:
    cols = [Column(f.key, f.zh, _KIND[f.type], f.width, f.choices, f.manager_owned) for f in FIELDS]
    cols += [Column("_shop", "门店(来源)", width=10), Column("_file", "来源文件", width=24),
             Column("_row", "来源行", "int", 8), Column("_deleted", "来源已删除", width=10),
             Column(REF_KEY, "记录标识", width=14)]
    return cols


# The column that tells the records apart, whatever the shop typed as id: managers' cells are
# kept by it (docs/sync.md, "How a row is recognised").
REF_KEY = "_ref"


class AllRows:
    """Makes the 全部投诉 row of each record: the 36 schema values and the provenance columns."""

    def __init__(self) -> None:
        self.columns = all_columns()
        # one C-level lookup of the 36 schema values per record (a merge of 100 shops shows
        # 100,000 of them; a Python loop per cell cost more than a second)
        self._values = operator.itemgetter(*(c.key for c in self.columns[:len(FIELDS)]))
        # the columns managers own (主管批示): (index in the row, key)
        self.owned = [(i, c.key) for i, c in enumerate(self.columns) if c.manager_owned]

    def lay(self, row: list[Any], cells: dict[str, Any] | None) -> int:
        """Lay the managers' ``cells`` of the row's complaint over it; how many were laid."""
        laid = 0
        if cells:
            for i, key in self.owned:
                if key in cells:
                    row[i] = cells[key]
                    laid += 1
        return laid

    def __call__(self, r: Record) -> list[Any]:
        row = list(self._values(r))
        # the 门店 column shows the record's shop even when the shop left it empty
        row[1] = row[1] or r["shop"]
        row[0] = row[0] if row[0] is not None else ""
        return row + [r["shop"], file_name(r["source_file"]), r["source_row"], "是" if r["deleted"] else "",
                      r["record_ref"]]


ALL_NOTE = "所有门店的投诉；主管批示列由主管填写，重新汇总时保留（按“记录标识”对应，请勿修改该列）"


def all_sheet(rows: list[list[Any]] | Spooled | None = None) -> SheetData:
    """全部投诉 with ``rows`` (``AllRows`` made them; None: the sheet's shape only)."""
    return SheetData(ALL_SHEET, all_columns(), [] if rows is None else rows, key_columns=(REF_KEY,),
                     legacy_key_columns=("shop", "complaint_id"), note=ALL_NOTE)


def conflict_sheet(conflicts: Sequence[dict[str, Any]], orphans: Sequence[dict[str, Any]] = ()) -> SheetData:
    """Complaints kept in two places with different content, and managers' cells whose complaint
    has left the shop's file (deleted, or its id changed): kept in the store, shown here."""
    cols = [Column("kind", "类型", width=14), Column("shop", "门店", width=10),
            Column("complaint_id", "投诉编号", width=18),
            Column("kept", "采用的版本", width=30), Column("other", "另一版本", width=30),
            Column("fields", "不同的字段", width=30), Column("diff", "差异", width=60)]
    rows = []
    for c in conflicts:
        diff = "；".join(f"{FIELD_BY_KEY[k].zh if k in FIELD_BY_KEY else k}: {c['kept'].get(k)!s} ≠ "
                        f"{c['other'].get(k)!s}" for k in c["fields"])
        rows.append(["两处内容不同", c["shop"], c["complaint_id"] or "",
                     f"{file_name(c['kept_path'])} 第{c['kept_row']}行",
                     f"{file_name(c['other_path'])} 第{c['other_row']}行",
                     "、".join(FIELD_BY_KEY[k].zh if k in FIELD_BY_KEY else k for k in c["fields"]), diff])
    for o in orphans:
        where = (f"{file_name(o['source_file'])} 第{o['source_row']}行（已不在文件中）" if o.get("source_file")
                 else f"记录标识 {o['ref']}（已无对应投诉）")
        cells = "；".join(f"{FIELD_BY_KEY[k].zh if k in FIELD_BY_KEY else k}: {v}" for k, v in o["cells"].items())
        rows.append(["主管批示无对应投诉", o.get("shop") or "", o.get("complaint_id") or "", where, "",
                     "、".join(FIELD_BY_KEY[k].zh if k in FIELD_BY_KEY else k for k in o["cells"]), cells])
    return SheetData("冲突", cols, rows, note="同一投诉在两处内容不同：按最后更新（再按文件时间）采用较新的版本；"
                     "主管填写过的投诉若已从门店文件删除或改了编号，其批示保留在此，请核对")


FINDING_COLUMNS = [Column("shop", "门店", width=10), Column("file", "来源文件", width=24),
                   Column("sheet", "工作表", width=10), Column("row", "行", "int", 6), Column("cell", "单元格", width=8),
                   Column("severity", "级别", width=8), Column("code", "代码", width=16),
                   Column("message", "说明", width=60)]


# a file's findings stored as more JSON than this are decoded one at a time: a shop file of
# 30,000 complaints had 52,000 findings, 5.7 MB of JSON, and the process making its 校验问题 rows
# held them all decoded at once (40 MiB more than for its largest shop's rows, issue 17)
FINDINGS_ONE_BY_ONE = 1 << 20


def finding_rows(path: str, shop: str, data: str | bytes | Iterable[bytes]) -> Iterator[list[Any]]:
    """校验问题's rows of one file's findings, ``data`` as the store keeps them (a JSON array of
    [sheet, row, cell, field, severity, code, message]: ``Store.finding_files``; or its UTF-8
    pieces as they are read, ``Store.finding_pieces``), one at a time."""
    name = file_name(path)
    found: Iterable[Any]
    if isinstance(data, str | bytes) and len(data) <= FINDINGS_ONE_BY_ONE:
        found = loads(data)
    else:
        found = each_in_array(data)
    for sheet, row, cell, _field, severity, code, message in found:
        yield [shop, name, sheet, row, cell, "错误" if severity == "error" else "提醒", code, message]


def findings_sheet(rows: list[list[Any]] | Spooled) -> SheetData:
    """校验问题 with ``rows`` (``finding_rows`` made them)."""
    return SheetData("校验问题", FINDING_COLUMNS, rows, note="各门店文件中每一行的校验问题")


_STATUS = {"ok": "正常", "error": "读取失败", "retrying": "读取失败（将重试）", "conflict_copy": "同步冲突副本",
           "missing": "文件已删除", "unavailable": "不可用"}


def sources_sheet(sources: Sequence[dict[str, Any]], notes: Sequence[dict[str, Any]] = (),
                  archives: Sequence[tuple[int, list[str], int]] = ()) -> SheetData:
    """Every source file, the merged workbook itself when a new store adopted it, and the yearly
    archives that hold the closed complaints of older years: (year, file names, complaints)."""
    cols = [Column("shop", "门店", width=10), Column("path", "文件", width=40), Column("rows", "行数", "int", 8),
            Column("last_read", "最后读取", "datetime", 17), Column("status", "状态", width=12),
            Column("error", "原因", width=60)]
    rows = [[s["shop"], s["path"], s["rows"] or 0, s["last_read"], _STATUS.get(s["status"], s["status"]),
             s["error"] or ""] for s in sources]
    rows += [["（合并工作簿）", n["path"], n["cells"], n["at"], "已采用",
              f"新的存储接管了这个工作簿：采用了其中 {n['cells']} 个主管单元格，{n['sent']} 条已发送的提醒不再重发"]
             for n in notes]
    rows += [["（归档）", "、".join(names), count, None, "已归档",
              f"{year} 年已结案的投诉 {count} 条在归档工作簿中（只读），不在本工作簿的 全部投诉 表"]
             for year, names, count in archives]
    return SheetData("来源", cols, rows, note="每个来源文件：读取失败时保留其上次成功读取的行")


def orphan(ref: str, cells: dict[str, Any], rec: Record | None) -> dict[str, Any]:
    """A manager's cells on 全部投诉 whose complaint left its shop's file (deleted, or its id
    changed so that it is no longer the same complaint): shown on 冲突, never silently kept on
    a ghost. ``rec``: the deleted complaint, None when the store has no complaint of that 记录标识."""
    return {"ref": ref, "cells": cells, "shop": rec["shop"] if rec else "",
            "complaint_id": (rec.get("complaint_id") or "") if rec else "",
            "source_file": rec["source_file"] if rec else "", "source_row": rec["source_row"] if rec else 0}


def typed_cells(edits: ManagerCells) -> dict[str, dict[str, Any]]:
    """记录标识 -> the non-empty cells managers typed on 全部投诉."""
    out: dict[str, dict[str, Any]] = {}
    for key, cells in edits.items():
        typed = {k: v for k, v in cells.items() if v not in (None, "")}
        if typed and len(key) == 1:
            out[key[0]] = typed
    return out
