"""Several shop files read at once, each in its own killable child, nothing lost or mixed up."""

from __future__ import annotations

import time
from pathlib import Path

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_many_isolated
from complaint_core.reader import read_workbook
from complaint_core.store.codec import prepare
from complaint_core.validate import validate_table
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

ODD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "odd"


def test_many_files_each_once_with_findings_and_failures(tmp_path: Path) -> None:
    good = [write_shop_workbook(tmp_path / f"S{i}.xlsx", sample_rows(40 + i, seed=i, now=NOW, shop=f"S{i}"))
            for i in range(5)]
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good[0].read_bytes()[:700])   # a half-copied file
    hostile = [ODD / "phpspreadsheet__oleloop.xls", ODD / "poi__poc-xmlbomb.xlsx"]
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=9, now=NOW))
    paths = [*good, broken, *hostile, big]
    got = dict(read_many_isolated(paths, now=NOW, jobs=2, memory_mb=2048))
    assert set(got) == set(paths)
    for p in good:
        table = read_workbook(p)
        findings = validate_table(table, now=NOW)
        # what the store needs, made in the child: the same as made here
        assert got[p] == prepare(table, findings, p)
        assert got[p].findings == len(findings) and len(got[p].rows) == len(table.rows)
    for p in (broken, *hostile):
        assert isinstance(got[p], UnreadableWorkbook) and p.name in str(got[p]) and "\n" not in str(got[p])
    assert len(got[big].rows) == 3000


def test_each_child_keeps_its_own_limits(tmp_path: Path) -> None:
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    small = write_shop_workbook(tmp_path / "small.xlsx", sample_rows(5, seed=2, now=NOW))
    got = dict(read_many_isolated([big, small], now=NOW, jobs=2, memory_mb=40))
    assert isinstance(got[big], UnreadableWorkbook)        # killed by its memory limit
    t = time.perf_counter()
    got = dict(read_many_isolated([big, small], now=NOW, jobs=2, timeout=0.001))
    assert all(isinstance(v, UnreadableWorkbook) and "timed out" in v.reason for v in got.values())
    assert time.perf_counter() - t < 5
