"""Several shop files read at once, each in its own killable child, nothing lost or mixed up."""

from __future__ import annotations

import time
from pathlib import Path

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_many_isolated
from complaint_core.reader import read_workbook
from complaint_core.store.codec import foreign_shop_findings, prepare
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
        # every row names shop S<i>: the file speaks for it (no 设置 code), no row is foreign
        assert not foreign_shop_findings(table, p)
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


def test_the_reading_child_loads_no_spreadsheet_writer(tmp_path: Path) -> None:
    # Each shop file is read in a fresh child: a library imported there is paid on every file.
    # openpyxl (with numpy behind it) cost 0.25 s per file, more than the reading, when a
    # finding needed a column letter.
    import subprocess
    import sys

    rows = sample_rows(30, seed=4, now=NOW)
    rows[3]["received_at"] = "2026年13月40日"          # findings name their cell: A1 letters
    path = write_shop_workbook(tmp_path / "S1.xlsx", rows)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from datetime import datetime\n"
        "import python_calamine, complaint_core.reader, complaint_core.validate, complaint_core.store.codec\n"
        "before = set(sys.modules)\n"
        "from complaint_core.isolate import _child\n"
        "class Pipe:\n"
        "    def send(self, got): self.got = got\n"
        "    def close(self): pass\n"
        "p = Pipe()\n"
        f"_child({str(path)!r}, 4096, p, datetime({NOW.year}, {NOW.month}, {NOW.day}))\n"
        "assert p.got[0] == 'ok' and p.got[1].findings > 0, p.got\n"
        "print(sorted(m for m in set(sys.modules) - before if '.' not in m))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.strip()
    for heavy in ("openpyxl", "xlsxwriter", "numpy", "pandas"):
        assert f"'{heavy}'" not in loaded, loaded
