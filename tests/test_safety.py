"""Hostile and foreign files are refused before any parser runs, fast and with the reason."""

from __future__ import annotations

import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from complaint_core.errors import UnreadableWorkbook, UnsafeWorkbook
from complaint_core.reader import read_workbook
from complaint_core.safety import check_xlsx
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

ODD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "odd"


def _refused_fast(path: Path, exc_type: type[Exception] = UnreadableWorkbook) -> str:
    t = time.perf_counter()
    with pytest.raises(exc_type) as err:
        check_xlsx(path)
    took = time.perf_counter() - t
    assert took < 1.0, f"{path.name} took {took:.2f} s"
    # Memory measured on a second run: tracemalloc slows Python code several times.
    tracemalloc.start()
    try:
        with pytest.raises(exc_type):
            check_xlsx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{path.name} used {peak >> 20} MiB"
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    return err.value.reason


def _zip_bomb(path: Path) -> Path:
    # 96 MiB of one repeated byte deflates ~1000:1; a real sheet part compresses 5-20x.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        with zf.open("xl/worksheets/sheet1.xml", "w") as fh:
            chunk = b"<" * (16 << 20)
            for _ in range(6):
                fh.write(chunk)
    return path


def test_zip_bomb_is_refused_fast(tmp_path):
    reason = _refused_fast(_zip_bomb(tmp_path / "bomb.xlsx"), UnsafeWorkbook)
    assert "zip" in reason


def test_xml_entity_bomb_is_refused_fast(tmp_path):
    src = write_shop_workbook(tmp_path / "ok.xlsx", sample_rows(3, seed=1, now=NOW))
    bomb = tmp_path / "lol.xlsx"
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
                     for i in range(9))
           + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           '<si><t>&lol8;</t></si></sst>')
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/sharedStrings.xml":
                data = lol.encode()
            zout.writestr(info, data)
        if "xl/sharedStrings.xml" not in zin.namelist():
            zout.writestr("xl/sharedStrings.xml", lol)
    reason = _refused_fast(bomb, UnsafeWorkbook)
    assert "XML" in reason
    with pytest.raises(UnsafeWorkbook):
        read_workbook(bomb)


LOL = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;">]>'


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/styles.xml"])
@pytest.mark.parametrize("before", [
    "",
    "<!-- " + "x" * 6000 + " -->",            # a comment longer than the first look
    "<!-- <a> looks like an element " + "x" * 6000 + " -->",
    "\r\n" * 3000,                             # white space past the first look
    "<?pi " + "y" * 5000 + "?>",
], ids=["plain", "long-comment", "fake-element-in-comment", "whitespace", "long-pi"])
@pytest.mark.parametrize("rows", [3, 100], ids=["small-parts", "sheet-over-64KiB"])
def test_a_dtd_anywhere_before_the_first_element_is_refused(tmp_path, part, before, rows):
    # The check inflates only the first 4 KiB of a part over 64 KiB when the first element
    # starts there; a DTD pushed further down by comments or padding must still be found.
    src = write_shop_workbook(tmp_path / "ok.xlsx", sample_rows(rows, seed=1, now=NOW))
    bad = tmp_path / "dtd.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == part:
                body = data.split(b"?>", 1)[1] if data.startswith(b"<?xml") else data
                data = b'<?xml version="1.0" encoding="UTF-8"?>' + before.encode() + LOL.encode() + body
            zout.writestr(info, data)
    assert "XML" in _refused_fast(bad, UnsafeWorkbook)
    with pytest.raises(UnsafeWorkbook):
        read_workbook(bad)


@pytest.mark.parametrize("part", ["xl/styles.xml", "xl/theme/theme1.xml", "xl/worksheets/sheet1.xml"])
def test_a_part_up_to_64KiB_with_a_wrong_checksum_is_refused(tmp_path, part):
    # python-calamine stops reading styles and shared strings at their closing tag and so never
    # checks their CRC; the check reads a part up to 64 KiB to its end, so zipfile does.
    src = write_shop_workbook(tmp_path / "ok.xlsx", sample_rows(3, seed=1, now=NOW))
    info = zipfile.ZipFile(src).getinfo(part)
    assert info.file_size <= 64 << 10
    crc = info.CRC
    bad = tmp_path / "crc.xlsx"
    bad.write_bytes(src.read_bytes().replace(crc.to_bytes(4, "little"), (crc ^ 1).to_bytes(4, "little")))
    assert "CRC" in _refused_fast(bad)


def test_the_1904_flag_is_seen_by_the_check(tmp_path):
    rows = sample_rows(2, seed=2, now=NOW)
    assert check_xlsx(write_shop_workbook(tmp_path / "a.xlsx", rows, date1904=True)).date1904 is True
    assert check_xlsx(write_shop_workbook(tmp_path / "b.xlsx", rows)).date1904 is False


def test_too_many_members_refused(tmp_path):
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(10_001):
            zf.writestr(f"x/{i}", b"")
    assert "过多" in _refused_fast(path, UnsafeWorkbook)


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.95])
def test_truncated_zip_refused(tmp_path, cut):
    src = write_shop_workbook(tmp_path / "ok.xlsx", sample_rows(20, seed=3, now=NOW))
    data = src.read_bytes()
    bad = tmp_path / "cut.xlsx"
    bad.write_bytes(data[: int(len(data) * cut)])
    assert "zip" in _refused_fast(bad)
    with pytest.raises(UnreadableWorkbook):
        read_workbook(bad)


def test_missing_empty_and_plain_text_refused(tmp_path):
    assert "不存在" in _refused_fast(tmp_path / "nope.xlsx")
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    assert "空文件" in _refused_fast(empty)
    text = tmp_path / "text.xlsx"
    text.write_text("投诉编号,受理时间\n1,2\n", encoding="utf-8")
    assert "CSV" in _refused_fast(text) and "另存为 .xlsx" in _refused_fast(text)
    nowb = tmp_path / "nowb.xlsx"
    with zipfile.ZipFile(nowb, "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert "workbook.xml" in _refused_fast(nowb)


@pytest.mark.parametrize("name, words", [
    ("calamine__pass_protected.xlsx", "密码"),
    ("excelize__encryptAES.xlsx", "密码"),
    ("calamine__pass_protected.xlsb", "密码"),
    ("poi__poc-xmlbomb.xlsx", "XML"),
    ("sheetjs__wtf_path.xlsb", "workbook"),
])
def test_corpus_foreign_files_refused_with_reason(name, words):
    assert words in _refused_fast(ODD / name)


@pytest.mark.parametrize("name, kind", [
    ("phpspreadsheet__oleloop.xls", "xls"),
    ("calamine__any_sheets.xlsb", "xlsb"),
    ("calamine__covered.ods", "ods"),
])
def test_other_formats_pass_the_check_by_content(name, kind):
    # python-calamine reads them; the check only refuses what is hostile or not a workbook
    from complaint_core.safety import check_workbook

    assert check_workbook(ODD / name).kind == kind
    # openpyxl (suggest, --mark, the rules workbook) edits only xlsx/xlsm: one line
    assert "另存为 .xlsx" in _refused_fast(ODD / name)


def test_a_real_workbook_passes(tmp_path):
    check_xlsx(write_shop_workbook(tmp_path / "ok.xlsx", sample_rows(5, seed=4, now=NOW)))
