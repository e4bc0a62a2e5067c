"""Several shop files read at once, each in its own killable child, nothing lost or mixed up."""

from __future__ import annotations

import time
from pathlib import Path

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_many_isolated
from complaint_core.reader import read_workbook
from complaint_core.store.codec import encode_findings, encode_rows
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
        table, findings, encoded, findings_json = got[p]
        assert len(table.rows) == len(read_workbook(p).rows)
        assert encoded == encode_rows(read_workbook(p))   # the JSON the store keeps, made in the child
        assert findings_json == encode_findings(findings)
        assert [f.code for f in findings] == [f.code for f in validate_table(read_workbook(p), now=NOW)]
    for p in (broken, *hostile):
        assert isinstance(got[p], UnreadableWorkbook) and p.name in str(got[p]) and "\n" not in str(got[p])
    assert len(got[big][0].rows) == 3000


def test_each_child_keeps_its_own_limits(tmp_path: Path) -> None:
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    small = write_shop_workbook(tmp_path / "small.xlsx", sample_rows(5, seed=2, now=NOW))
    got = dict(read_many_isolated([big, small], now=NOW, jobs=2, memory_mb=40))
    assert isinstance(got[big], UnreadableWorkbook)        # killed by its memory limit
    t = time.perf_counter()
    got = dict(read_many_isolated([big, small], now=NOW, jobs=2, timeout=0.001))
    assert all(isinstance(v, UnreadableWorkbook) and "timed out" in v.reason for v in got.values())
    assert time.perf_counter() - t < 5
