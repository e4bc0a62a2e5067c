"""Realistic shop workbooks for the benchmarks, written the way a shop's Excel writes them.

XlsxWriter default mode (shared strings, like Excel), the 36 schema columns with Chinese
headers, Chinese free text, datetimes, ~20% empty cells and a few invalid cells (a typo in
a date, a negative amount) — what the reader meets in real life. Files are cached in
bench/out/ (gitignored) because writing 100k rows takes tens of seconds on a slow machine.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from complaint_core.schema import FIELDS, SHEET_COMPLAINTS  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
BASE = datetime(2026, 9, 1, 9, 0)
_HAN = ("顾客反映购买的商品包装破损店员态度冷淡等待时间过长退款迟迟未到账维修后仍然无法使用"
        "价格与标签不符承诺的赠品没有兑现电话多次无人接听要求经理出面解释并道歉赔偿")
_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷")
_DEPTS = ("销售部", "售后部", "收银组", "仓储部", "客服中心")


def _text(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    return "".join(rng.choice(_HAN) for _ in range(n))


def _value(rng: random.Random, f, i: int, shop: str, received: datetime):  # noqa: ANN001
    if f.key == "complaint_id":
        return f"{shop}-{received:%Y%m%d}-{i % 1000:03d}{i // 1000 or ''}"
    if f.key == "shop":
        return shop
    if f.key == "received_at":
        return received
    if f.type == "datetime":
        return received + timedelta(hours=rng.randint(1, 90))
    if f.type == "choice":
        return rng.choice(f.choices)
    if f.type == "money":
        return round(rng.uniform(0, 800), 2)
    if f.key == "customer_phone":
        return f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}"
    if f.key == "customer_email":
        return f"user{rng.randint(1, 99999)}@example.cn"
    if f.key in ("received_by", "customer_name", "responsible_person"):
        return rng.choice(_NAMES)
    if f.key == "responsible_dept":
        return rng.choice(_DEPTS)
    if f.key == "description":
        return _text(rng, 30, 120)
    return _text(rng, 4, 24)


def rows_for(n: int, *, shop: str = "S001", seed: int = 1, years: int = 0) -> list[list]:
    """n data rows (no header) in schema order; required cells are mostly present.

    ``years``: the complaints are received over that many years before the 80 days of the
    others (a shop with years of history; most of them closed, so they go to the archives)."""
    rng = random.Random(seed)
    out: list[list] = []
    span = 60 * 24 * (80 + 365 * years)
    for i in range(n):
        received = BASE + timedelta(minutes=rng.randint(0, span) - 60 * 24 * 365 * years)
        row = []
        for f in FIELDS:
            if not f.required and rng.random() < 0.2 or f.filled and rng.random() < 0.6:
                row.append(None)
                continue
            row.append(_value(rng, f, i, shop, received))
        if rng.random() < 0.02:   # a hand-typed date Excel did not understand
            row[[f.key for f in FIELDS].index("feedback_at")] = "2026年13月40日"
        if rng.random() < 0.01:   # a negative amount
            row[[f.key for f in FIELDS].index("loss_amount")] = -12.5
        out.append(row)
    return out


def write_shop(path: Path, rows: list[list], *, shop: str = "S001") -> Path:
    """Write a shop workbook like Excel does (shared strings), header in Chinese."""
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.xlsx")  # parallel runs never collide
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    ws = wb.add_worksheet(SHEET_COMPLAINTS)
    dt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_row(0, 0, [f.zh for f in FIELDS])
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, datetime):
                ws.write_datetime(r, c, v, dt)
            else:
                ws.write(r, c, v)
    settings = wb.add_worksheet("设置")
    settings.write_row(0, 0, ["项目", "值"])
    settings.write_row(1, 0, ["门店代码", shop])
    wb.close()
    tmp.replace(path)
    return path


def shop_file(n: int, *, shop: str = "S001", seed: int = 1, folder: Path | None = None, years: int = 0) -> Path:
    """A cached shop workbook of n rows."""
    folder = folder or OUT
    path = folder / f"{shop}_{n}_{seed}.xlsx"
    if not path.exists():
        write_shop(path, rows_for(n, shop=shop, seed=seed, years=years), shop=shop)
    return path


def shop_set(shops: int, rows: int, *, folder: Path | None = None, years: int = 0) -> list[Path]:
    """A folder of `shops` workbooks of `rows` rows each (the multi-shop merge input);
    ``years``: received over that many years of history as well (``rows_for``)."""
    folder = folder or OUT / (f"set{shops}x{rows}" + (f"y{years}" if years else ""))
    return [shop_file(rows, shop=f"S{i:03d}", seed=i, folder=folder, years=years) for i in range(1, shops + 1)]


# when the template chain's complaints were received (the 30 days before it): fixed, so the
# cached files are the same on every machine
TEMPLATE_NOW = datetime(2026, 12, 1, 10, 0)


def template_set(shops: int, rows: int) -> list[Path]:
    """A folder of `shops` workbooks of `rows` rows each written into the shop template the
    way staff fill it (every sheet of the template, a few defects per file, openpyxl): a chain
    unlike shop_set's one-sheet XlsxWriter files with dirty data."""
    from complaint_desk.demo_data import inject_defects, sample_rows, write_rows

    folder = OUT / f"tpl{shops}x{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(shops):
        code = f"SH{i + 1:03d}"
        path = folder / f"{code}.xlsx"
        if not path.exists():
            made = sample_rows(rows, seed=i, now=TEMPLATE_NOW, shop=code)
            inject_defects(made, now=TEMPLATE_NOW)
            write_rows(path, made, shop=code)   # written whole or not at all (atomic_write)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for n in (1_000, 10_000, 100_000):
        print(shop_file(n))
    print(len(shop_set(100, 1_000)), "files in", OUT / "set100x1000")
    if "--million" in sys.argv:   # the 1,000,000-row merge of bench/run.py --only million
        print(len(shop_set(100, 10_000)), "files in", OUT / "set100x10000")
