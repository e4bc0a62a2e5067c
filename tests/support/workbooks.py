"""Workbooks written the way shops write them, for every test that needs a real xlsx.

``write_shop_workbook`` writes rows (dicts keyed by field key) with openpyxl, optionally
with a title row above the header, English headers, shuffled columns, extra columns, the
1904 date system, or dates typed as text.
"""

from __future__ import annotations

import random
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
                        blank_rows_after: tuple[int, ...] = ()) -> Path:
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
    headers = [f.zh if lang == "zh" else f.en for f in fields] + list(extra_columns or {})
    ws.append(headers)
    for i, row in enumerate(rows):
        values = [row.get(f.key) for f in fields]
        values += [col[i] if i < len(col) else None for col in (extra_columns or {}).values()]
        ws.append(values)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
            elif isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
        if i in blank_rows_after:
            ws.append([])
            ws.append([])
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
