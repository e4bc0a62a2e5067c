"""Workbooks written the way shops write them, for every test that needs a real xlsx.

``write_shop_workbook`` writes rows (dicts keyed by field key) with openpyxl, optionally
with a title row above the header, English headers, shuffled columns, extra columns, the
1904 date system, or dates typed as text.

    write_shop_workbook(path, rows, *, lang="zh", title_rows=0, title_row=False,
                        header_row_offset=0, shuffle_columns=False, extra_columns=None,
                        date1904=False, shop_code=None, sheet_name="投诉登记",
                        blank_rows_after=()) -> Path
    sample_rows(n, *, seed, now) -> list[dict]   # realistic valid rows (complaint_desk.demo_data)

Fixtures: ``now`` (a fixed datetime) and ``clean_rows`` (40 valid rows).
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from complaint_core.schema import FIELDS, SHEET_SETTINGS
from complaint_desk.demo_data import inject_defects, sample_rows, write_rows

__all__ = ["write_shop_workbook", "sample_rows", "inject_defects", "write_rows", "NOW"]

NOW = datetime(2026, 11, 20, 10, 0)


def write_shop_workbook(path: Path, rows: list[dict[str, Any]], *, lang: str = "zh",
                        title_rows: int = 0, shuffle_columns: bool = False,
                        extra_columns: dict[str, list[Any]] | None = None, date1904: bool = False,
                        shop_code: str | None = None, sheet_name: str = "投诉登记",
                        blank_rows_after: tuple[int, ...] = (), title_row: bool = False,
                        header_row_offset: int = 0) -> Path:
    """Write ``rows`` as a shop would: the header lands on Excel row
    ``1 + title_rows + title_row + header_row_offset`` (offset rows are left blank)."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_name
    if date1904:
        wb.epoch = datetime(1904, 1, 1)
    fields = list(FIELDS)
    if shuffle_columns:
        random.Random(7).shuffle(fields)
    for i in range(title_rows):
        ws.append([f"某某门店客户投诉登记表（{i + 1}）"])
    if title_row:
        ws.append(["某某门店客户投诉登记表"])
    for _ in range(header_row_offset):
        ws.append([])
    headers = [f.zh if lang == "zh" else f.en for f in fields] + list(extra_columns or {})
    ws.append(headers)
    at = ws.max_row   # counted here: max_row scans every cell, per row it made big files take minutes
    for i, row in enumerate(rows):
        values = [row.get(f.key) for f in fields]
        values += [col[i] if i < len(col) else None for col in (extra_columns or {}).values()]
        ws.append(values)
        at += 1
        for cell in next(ws.iter_rows(min_row=at, max_row=at, max_col=len(values))):
            if isinstance(cell.value, str):
                cell.data_type = "s"
            elif isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
        if i in blank_rows_after:
            ws.append([])
            ws.append([])
            at += 2
    if shop_code is not None:
        st = wb.create_sheet(SHEET_SETTINGS)
        st.append(["项目", "值"])
        st.append(["门店代码", shop_code])
    wb.save(path)
    return path


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def clean_rows() -> list[dict[str, Any]]:
    return sample_rows(40, seed=11, now=NOW)


# --- Malformed workbooks for the fuzz test and bench/fuzz_reader.py --------------------------

_NASTY = ["", " ", "\x00\x01\x07", "=cmd|' /C calc'!A0", "@SUM(1)", "-1+1", "投诉\u200b内容",
          "\ud7ff\ue000", "2026年13月45日", "１３８００１３８０００", "¥-1,2,3元", "\t\n\r", "N/A"]


def _random_cell(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice(_NASTY)
    if kind == 2:
        return "".join(chr(rng.choice([rng.randrange(1, 32), rng.randrange(32, 0xD7FF)]))
                       for _ in range(rng.randrange(1, 40)))
    if kind == 3:
        return "长" * rng.choice([1000, 32767])
    if kind == 4:
        return rng.choice([0, -1, 1e308, -1e-308, 2958466, 13800138000, rng.uniform(-1e6, 1e6)])
    if kind == 5:
        return rng.choice([True, False])
    if kind == 6:
        return datetime(rng.randrange(1900, 9999), rng.randrange(1, 13), rng.randrange(1, 29),
                        rng.randrange(24), rng.randrange(60))
    if kind == 7:
        return ("formula", rng.choice(["=1/0", "=SUM(A1:A3)", "=NOW()", "=A1&\"x\"", "=(("]))
    return rng.choice([f.zh for f in FIELDS] + [f.en for f in FIELDS])


def write_malformed_workbook(path: Path, rng: random.Random) -> str:
    """Write one hostile or odd workbook at ``path`` chosen by ``rng``; returns what was done.

    Random cell types, huge strings, control characters, wrong or partial headers, merged
    cells, formulas, hidden sheets, then maybe a claimed 1,048,576-row dimension, a
    truncated zip or a corrupted part. Written with XlsxWriter (it escapes control chars).
    """
    import zipfile

    import xlsxwriter

    done: list[str] = []
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False, "nan_inf_to_errors": True})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for s in range(rng.randrange(1, 4)):
        ws = wb.add_worksheet(rng.choice(["投诉登记", f"Sheet{s}", "设置", f"表{s}"]) + f"{s}")
        if rng.random() < 0.2:
            ws.hide()
            done.append("hidden")
        header_mode = rng.randrange(4)
        fields = list(FIELDS)
        rng.shuffle(fields)
        start = rng.randrange(0, 35)
        if header_mode < 2:
            n = len(fields) if header_mode == 0 else rng.randrange(1, 6)
            for c, f in enumerate(fields[:n]):
                ws.write_string(start, c, rng.choice([f.zh, f.en, f.key, f" {f.zh} "]))
            done.append(f"header{n}@{start}")
        for r in range(start + 1, start + 1 + rng.randrange(0, 60)):
            for c in range(rng.randrange(0, 40)):
                v = _random_cell(rng)
                if v is None:
                    continue
                if isinstance(v, tuple):
                    ws.write_formula(r, c, v[1], None, rng.choice([0, "x", None]))
                elif isinstance(v, datetime):
                    ws.write_datetime(r, c, v, date_fmt)
                elif isinstance(v, bool):
                    ws.write_boolean(r, c, v)
                elif isinstance(v, str):
                    ws.write_string(r, c, v)
                else:
                    ws.write_number(r, c, v)
        if rng.random() < 0.3:
            r0, c0 = rng.randrange(0, 40), rng.randrange(0, 20)
            ws.merge_range(r0, c0, r0 + rng.randrange(1, 5), c0 + rng.randrange(1, 5), "合并")
            done.append("merged")
    wb.close()
    roll = rng.random()
    if roll < 0.15:
        data = path.read_bytes()
        path.write_bytes(data[: rng.randrange(0, len(data))])
        done.append("truncated")
    elif roll < 0.35:
        with zipfile.ZipFile(path) as zin:
            parts = {i.filename: zin.read(i) for i in zin.infolist()}
        for name in parts:
            if name.startswith("xl/worksheets/sheet"):
                parts[name] = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>',
                                     parts[name])
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
            for name, blob in parts.items():
                zout.writestr(name, blob)
        done.append("huge-dimension")
    elif roll < 0.45:
        data = bytearray(path.read_bytes())
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        done.append("bytes-flipped")
    return ",".join(done) or "plain"
