"""Every format python-calamine reads is read by its content, whatever the file is called.

The xls and ods files are written by LibreOffice headless in the test set-up (its own
profile dir), from a workbook openpyxl wrote; each must give exactly the rows of the xlsx.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from complaint_core.errors import NotAComplaintWorkbook, UnreadableWorkbook
from complaint_core.reader import read_tables, read_workbook
from complaint_core.safety import check_workbook
from complaint_desk.cli import main
from tests.support.libreoffice import _LOCK
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

ODD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "odd"


def _soffice_convert(sources: list[Path], fmt: str, outdir: Path) -> list[Path]:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (soffice) is not installed: run scripts/test.sh"
    with tempfile.TemporaryDirectory() as profile, open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{profile}/p",
                               "--convert-to", fmt, "--outdir", str(outdir), *map(str, sources)],
                              capture_output=True, text=True, timeout=120)
    made = [outdir / f"{src.stem}.{fmt}" for src in sources]
    assert proc.returncode == 0 and all(m.is_file() for m in made), proc.stdout + proc.stderr
    return made


def _with_stray(path: Path, ref: str) -> Path:
    write_shop_workbook(path, sample_rows(6, seed=8, now=NOW))
    wb = load_workbook(path)
    wb["投诉登记"][ref] = "误输入"
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    src = write_shop_workbook(root / "投诉.xlsx", sample_rows(12, seed=5, now=NOW), shop_code="SH09")
    out = {"xlsx": src}
    # a stray value at the last cell each format has (xls: IV65536) and at AJ1048576
    far = {"xls": _with_stray(root / "远xls.xlsx", "IV65536"), "ods": _with_stray(root / "远ods.xlsx", "AJ1048576")}
    for fmt in ("xls", "ods"):
        (root / fmt).mkdir()
        out[fmt], out[f"far_{fmt}"] = _soffice_convert([src, far[fmt]], fmt, root / fmt)
    return out


def _values(path: Path) -> list[tuple[int, dict]]:
    return [(r.row, r.values) for r in read_workbook(path).rows]


@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_libreoffice_formats_give_the_rows_of_the_xlsx(made: dict[str, Path], fmt: str) -> None:
    assert check_workbook(made[fmt]).kind == fmt
    table = read_workbook(made[fmt])
    assert table.shop_code == "SH09"   # the 设置 sheet is read from these formats too
    assert _values(made[fmt]) == _values(made["xlsx"])


@pytest.mark.parametrize("fmt, name", [("xlsx", "投诉.XLSX"), ("xlsx", "投诉.et"), ("xls", "投诉.et"),
                                       ("xls", "投诉.XLS"), ("ods", "投诉.ODS"), ("xlsx", "投诉.xls"),
                                       ("ods", "投诉.xlsx"), ("xlsx", "投诉.xlsm")])
def test_read_by_content_not_by_name(made: dict[str, Path], tmp_path: Path, fmt: str, name: str) -> None:
    # WPS saves .et files that are xls or xlsx inside; shares keep upper-case names; people
    # rename files: the name never decides how a file is read
    copy = tmp_path / name
    shutil.copy(made[fmt], copy)
    assert _values(copy) == _values(made["xlsx"])


def test_xlsb_and_wps_et_from_the_corpus_are_parsed() -> None:
    # LibreOffice cannot write xlsb: the corpus's real ones are parsed (they hold no complaint
    # table, which is the reason given, not "unsupported")
    for name in ("calamine__date_1904.xlsb", "calamine__issue_666_lost_sheets.xlsb"):
        with pytest.raises(NotAComplaintWorkbook):
            read_tables(ODD / name)
    assert check_workbook(ODD / "calamine__date_1904.xlsb").kind == "xlsb"
    et = ODD.parent / "chinese" / "sheetjs__write.et"
    assert check_workbook(et).kind in ("xls", "xlsx")


@pytest.mark.parametrize("content, words", [
    ("投诉编号,受理时间,客户姓名\nA-1,2026-11-01,张三\n", "另存为 .xlsx"),
    ("<html><body><table><tr><td>投诉编号</td></tr></table></body></html>", "网页"),
])
def test_csv_and_web_page_exports_get_one_line(tmp_path: Path, content: str, words: str) -> None:
    for name in ("投诉.csv", "投诉.xls"):   # a system's "Excel export" is often one of these
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(UnreadableWorkbook) as err:
            read_workbook(path)
        assert words in err.value.reason and str(path) in str(err.value) and "\n" not in str(err.value)


def test_validate_reads_an_ods_and_refuses_a_csv(made: dict[str, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    csv = tmp_path / "投诉.csv"
    csv.write_text("投诉编号,受理时间\n1,2\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["validate", str(made["ods"]), "--now", NOW.isoformat()])
    assert res.exit_code in (0, 1) and "12 行" in res.output, res.output
    res = CliRunner().invoke(main, ["validate", str(csv)])
    assert res.exit_code == 2 and "另存为 .xlsx" in res.output and "Traceback" not in res.output


def test_suggest_refuses_a_format_openpyxl_cannot_write(made: dict[str, Path]) -> None:
    from click.testing import CliRunner

    before = made["ods"].read_bytes()
    res = CliRunner().invoke(main, ["suggest", str(made["ods"]), "--now", NOW.isoformat()])
    assert res.exit_code == 2 and "另存为 .xlsx" in res.output, res.output
    assert made["ods"].read_bytes() == before


@pytest.mark.parametrize("fmt, ref", [("ods", "AJ1048576"), ("xls", "IV65536")])
def test_far_cells_in_other_formats_are_named(made: dict[str, Path], fmt: str, ref: str) -> None:
    import time

    from complaint_core.isolate import read_tables_isolated

    t = time.perf_counter()
    # bounded before the parser runs: 300 MiB for the whole child is plenty, where calamine
    # would take 2.6 GB for the ods and 1.1 GB for the xls
    tables = read_tables_isolated(made[f"far_{fmt}"], memory_mb=300, timeout=30)
    assert time.perf_counter() - t < 10
    assert len(tables[0].rows) == 6 and tables[0].stray_cells == [("投诉登记", ref, "误输入")]


def _record(typ: int, data: bytes) -> bytes:
    """One xlsb record: type and size as 7-bit varints (MS-XLSB 2.1.4), then the data."""
    head = bytes([typ & 0x7F | 0x80, typ >> 7]) if typ > 0x7F else bytes([typ])
    size, n = b"", len(data)
    while True:
        size += bytes([n & 0x7F | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            break
    return head + size + data


def _xlsb_with_table(path: Path, cells: dict[tuple[int, int], str], dim: tuple[int, int, int, int]) -> Path:
    """A real xlsb (the corpus's, saved by Excel) whose sheet data is replaced by ``cells``
    (0-based (row, col) -> text) and whose dimension record says ``dim``."""
    import zipfile

    from complaint_core.bounds_xlsb import _XLSB_DIM, _xlsb_records

    src = ODD / "calamine__date_1904.xlsb"
    with zipfile.ZipFile(src) as zf:
        sheet = zf.read("xl/worksheets/sheet1.bin")
        recs = list(_xlsb_records(sheet))
        begin = next(r for r in recs if r[0] == 0x91)
        end = next(r for r in recs if r[0] == 0x92)
        row_hdr = next(sheet[a:e] for t, _s, a, e in recs if t == 0)
        body = b""
        for r in sorted({r for r, _ in cells}):
            body += _record(0, r.to_bytes(4, "little") + row_hdr[4:])
            for (rr, c), text in sorted(cells.items()):
                if rr == r:
                    body += _record(6, c.to_bytes(4, "little") + b"\0" * 4 + len(text).to_bytes(4, "little")
                                    + text.encode("utf-16-le"))
        new = sheet[:begin[3]] + body + sheet[end[1]:]
        dim_rec = next(r for r in recs if r[0] == _XLSB_DIM)
        new = new[:dim_rec[2]] + b"".join(v.to_bytes(4, "little") for v in dim) + new[dim_rec[3]:]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for info in zf.infolist():
                out.writestr(info, new if info.filename == "xl/worksheets/sheet1.bin" else zf.read(info))
    return path


def test_xlsb_table_read_and_far_cell_cut_out_before_allocation(tmp_path: Path) -> None:
    from complaint_core.isolate import read_tables_isolated

    head = ["投诉编号", "受理时间", "客户姓名", "投诉内容", "投诉渠道", "投诉类别"]
    cells = {(0, c): h for c, h in enumerate(head)}
    for r in (1, 2):
        for c, v in enumerate([f"SH01-2026110{r}-001", f"2026-11-0{r} 10:00", "张三", "等太久", "电话", "服务态度"]):
            cells[(r, c)] = v
    plain = _xlsb_with_table(tmp_path / "投诉.xlsb", cells, (0, 2, 0, 5))
    table = read_workbook(plain)
    assert [r.values["complaint_id"] for r in table.rows] == ["SH01-20261101-001", "SH01-20261102-001"]
    cells[(1048575, 16383)] = "误输入"        # Excel then says A1:XFD1048576
    far = _xlsb_with_table(tmp_path / "远.xlsb", cells, (0, 1048575, 0, 16383))
    # 300 MiB for the whole child: calamine would ask for 512 GiB
    tables = read_tables_isolated(far, memory_mb=300, timeout=20)
    assert len(tables[0].rows) == 2 and tables[0].stray_cells == [("Sheet1", "XFD1048576", "误输入")]
