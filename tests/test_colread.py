"""merged/colread.py: the key and manager columns of a big sheet, streamed, equal to calamine.

Real packages: the merged workbook as we write it (inline strings, rows without numbers), as
openpyxl saves it after a manager typed (shared strings, numbered cells, gaps), as LibreOffice
saves it, and hostile or unexpected ones (which must fall back, never guess).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from complaint_core.merged.colread import ColumnsUnreadable, read_columns
from complaint_core.merged.readback import read_manager_edits
from complaint_core.merged.render import render_merged
from complaint_core.merged.sheets import all_sheet
from complaint_core.store import open_store
from complaint_core.store.ingest import ingest_table
from complaint_core.validate import validate_table
from tests.support.libreoffice import _LOCK
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

ALL = "全部投诉"


def _calamine(path: Path, sheet: str) -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _same(path: Path, sheet: str, columns: set[str]) -> None:
    """read_columns equals calamine on the header rows and, after them, on ``columns``."""
    picked: set[int] = set()

    def pick(top: list[list[Any]]) -> set[int]:
        picked.update(i for row in top for i, v in enumerate(row) if str(v) in columns)
        return picked

    ours = list(read_columns(path, sheet, pick))
    theirs = _calamine(path, sheet)
    assert picked, "no column picked"
    assert len(ours) <= len(theirs)
    # rows after the last one with a picked value may be left out; calamine's are empty there
    for row in theirs[len(ours):]:
        assert all(row[i] in ("", None) for i in picked if i < len(row))
    for n, (mine, cal) in enumerate(zip(ours, theirs, strict=False)):
        cols = range(len(cal)) if n < 5 else sorted(picked)
        for i in cols:
            got = mine[i] if i < len(mine) else None
            want = cal[i] if i < len(cal) else ""
            assert (got if got is not None else "") == want, (n, i, got, want)


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("colread")
    store = open_store(f"sqlite:///{tmp / 's.sqlite'}")
    shop = tmp / "SH01" / "投诉.xlsx"
    shop.parent.mkdir()
    write_shop_workbook(shop, sample_rows(60, seed=5, now=NOW, shop="SH01"))
    from complaint_core.reader import read_workbook

    table = read_workbook(shop)
    ingest_table(store, shop, table, validate_table(table, now=NOW), file_hash="h", size=1, mtime=1.0, now=NOW)
    out = tmp / "merged.xlsx"
    render_merged(store, out, now=NOW)
    return out


MANAGER = {"记录标识", "主管批示", "门店", "投诉编号"}


def test_our_own_workbook(merged: Path) -> None:
    _same(merged, ALL, MANAGER)


TEXTS = ["同意退款 & 补偿 <50 元>", "_x0041_ literally", "两行\n第二行", " 前后空格 ", "😀 表情", "'引号\"",
         "=SUM(A1:A2)", "100", "a\tb"]


def _typed(merged: Path, into: Path) -> Path:
    wb = openpyxl.load_workbook(merged)
    ws = wb[ALL]
    head = next(r for r in range(1, 6) if "主管批示" in [c.value for c in ws[r]])
    col = [c.value for c in ws[head]].index("主管批示") + 1
    for i, text in enumerate(TEXTS):
        ws.cell(head + 1 + 3 * i, col, text).data_type = "s"   # text, even "=SUM(…)"
    ws.cell(head + 2, col, 42)
    ws.cell(head + 4, col, datetime(2026, 11, 20, 9, 30)).number_format = "yyyy-mm-dd hh:mm"
    ws.cell(head + 5, col, True)
    wb.save(into)
    return into


def test_a_workbook_saved_by_openpyxl(merged: Path, tmp_path: Path) -> None:
    saved = _typed(merged, tmp_path / "saved.xlsx")   # numbered cells, typed values of every kind
    _same(saved, ALL, MANAGER)


def _rewritten(saved: Path, into: Path, change: Any) -> Path:
    """``saved`` with ``change`` applied to the XML of its 全部投诉 part."""
    from complaint_core.merged.xlsxwriter_adapter import sheet_parts

    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(into, "w", zipfile.ZIP_DEFLATED) as out:
        part = next(p.part for name, p in sheet_parts(src).items() if name == ALL)
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, change(data) if info.filename == part else data)
    return into


@pytest.mark.parametrize("how", ["r_first", "r_later_in_some_rows", "styled_empty_cells"])
def test_cells_found_in_a_whole_stretch_read_as_calamine_reads_them(merged: Path, tmp_path: Path, how: str) -> None:
    """As Excel saves (every cell ``<c r="…"``), the kept columns' cells of a stretch are found
    by one search; a stretch where a cell names its place later among its attributes is read
    row by row, and a styled cell without a value is no value either way."""
    import re

    saved = _typed(merged, tmp_path / "saved.xlsx")
    if how == "r_later_in_some_rows":
        def change(xml: bytes) -> bytes:   # every third cell: <c s="…" r="…">
            cells = iter(range(10**9))
            return re.sub(rb'<c r="([A-Z]+\d+)"( [^>/]*?)?( ?/?>)',
                          lambda m: (b'<c' + (m.group(2) or b"") + b' r="' + m.group(1) + b'"' + m.group(3))
                          if next(cells) % 3 == 0 else m.group(0), xml)
    elif how == "styled_empty_cells":
        def change(xml: bytes) -> bytes:   # an empty styled cell after each row's first
            return re.sub(rb'(<row r="(\d+)"[^>]*>)(<c r="A\d+"[^>]*?(?:/>|>.*?</c>))',
                          lambda m: m.group(1) + m.group(3) + b'<c r="B' + m.group(2) + b'" s="1"/>'
                          if b'r="B' not in m.group(0) else m.group(0), xml)
    else:
        def change(xml: bytes) -> bytes:
            return xml
    path = _rewritten(saved, tmp_path / f"{how}.xlsx", change)
    with zipfile.ZipFile(path) as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    assert (re.search(rb'<c [st]="[^"]*"[^>]* r="', xml) is not None) == (how == "r_later_in_some_rows")
    assert (re.search(rb'<c r="B\d+" s="1"/>', xml) is not None) == (how == "styled_empty_cells")
    _same(path, ALL, MANAGER)
    _same(path, ALL, {"记录标识", "主管批示", "投诉内容"})


def test_a_workbook_saved_by_libreoffice(merged: Path, tmp_path: Path) -> None:
    saved = _typed(merged, tmp_path / "typed.xlsx")
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (soffice) is not installed: run scripts/test.sh"
    out = tmp_path / "lo"
    with tempfile.TemporaryDirectory() as profile, open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{profile}/p",
                        "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(saved)],
                       capture_output=True, timeout=180, check=True)
    with zipfile.ZipFile(out / "typed.xlsx") as zf:
        assert "xl/sharedStrings.xml" in zf.namelist()   # as Excel saves: shared strings
    _same(out / "typed.xlsx", ALL, MANAGER)


def test_read_back_is_the_same_as_through_calamine(merged: Path, tmp_path: Path, monkeypatch) -> None:
    import complaint_core.merged.readback as rb

    saved = _typed(merged, tmp_path / "saved.xlsx")
    sheets = [all_sheet()]
    monkeypatch.setattr(rb, "STREAM_FROM", 0)   # stream even this small sheet
    streamed = read_manager_edits(saved, sheets)

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise ColumnsUnreadable(saved, "forced")

    monkeypatch.setattr(rb, "read_columns", refuse)
    whole = read_manager_edits(saved, sheets)
    assert streamed.cells == whole.cells and streamed.edits == whole.edits
    got = {cells.get("manager_approval") for cells in streamed.cells[ALL].values()}
    # every text as typed (the second was typed over by a date), the number, the date, the flag
    want = {t for i, t in enumerate(TEXTS) if i != 1} | {42, "2026-11-20 09:30", True}
    assert want <= got, want - got


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# U+FFFE and U+FFFF are left out: calamine keeps their _xFFFE_ escape as text, where Excel (and
# the reader) reads the character back; the next test checks them against Excel's reading
@given(texts=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
                              min_size=1, max_size=40), min_size=1, max_size=8),
       gap=st.integers(min_value=0, max_value=30))
def test_any_text_reads_as_calamine_reads_it(tmp_path: Path, texts: list[str], gap: int) -> None:
    path = _texts_in_a_manager_column(tmp_path / f"t{abs(hash((tuple(texts), gap)))}.xlsx", texts, gap)
    _same(path, ALL, {"主管批示", "记录标识"})


def _texts_in_a_manager_column(path: Path, texts: list[str], gap: int = 0) -> Path:
    """A 全部投诉 sheet as XlsxWriter saves it (shared strings), ``texts`` in 主管批示 with
    ``gap`` rows left out between them."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    ws = wb.add_worksheet(ALL)
    ws.write_row(0, 0, ["说明"])
    ws.write_row(1, 0, ["门店", "投诉编号", "主管批示", "记录标识"])
    for i, text in enumerate(texts):
        ws.write_string(2 + i * (gap + 1), 2, text)
        ws.write_string(2 + i * (gap + 1), 3, f"ref{i}")
    wb.close()
    return path


def test_blank_ends_read_as_calamine_reads_them(tmp_path: Path) -> None:
    """openpyxl marks a text with blanks at its ends to keep them, except one of blanks only:
    calamine reads that one as empty, and so must the column reader."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = ALL
    ws.append(["说明"])
    ws.append(["门店", "投诉编号", "主管批示", "记录标识"])
    for i, text in enumerate(["  ", " 已阅 ", "已  阅", "\n x\n", "\t"]):
        ws.append(["A", f"A-{i}", text, f"ref{i}"])
    path = tmp_path / "blanks.xlsx"
    wb.save(path)
    _same(path, ALL, {"主管批示", "记录标识"})
    rows = list(read_columns(path, ALL, lambda top: {2, 3}))[2:]
    assert [row[2] for row in rows] == ["", " 已阅 ", "已  阅", "\n x\n", ""]


def test_escaped_characters_read_back_as_excel_reads_them(tmp_path: Path) -> None:
    # a cell may only hold characters XML allows: the others are written _xHHHH_ (ours and
    # XlsxWriter's alike) and Excel reads every such escape back as its character, U+FFFE and
    # U+FFFF included; a literal "_x0041_" is written _x005F_x0041_ and stays as typed
    texts = ["\ufffe", "批示\uffff", "\x01a", "_x0041_", "a\x1fb"]
    path = _texts_in_a_manager_column(tmp_path / "escaped.xlsx", texts)
    rows = list(read_columns(path, ALL, lambda top: {2, 3}))
    assert [row[2] for row in rows[2:]] == texts


def test_what_is_not_expected_is_refused_not_guessed(tmp_path: Path, merged: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ColumnsUnreadable):
        read_columns(bad, ALL, lambda top: {0})
    with pytest.raises(ColumnsUnreadable):
        read_columns(merged, "没有这张表", lambda top: {0})
    # a shared string the package does not have
    import xlsxwriter

    shared = tmp_path / "shared.xlsx"
    wb = xlsxwriter.Workbook(str(shared))
    ws = wb.add_worksheet(ALL)
    ws.write_row(0, 0, ["主管批示", "记录标识"])
    ws.write_row(1, 0, ["同意", "ref1"])
    wb.close()
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(shared) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/sharedStrings.xml":
                data = data[: data.index(b"<si>")] + b"</sst>"
            dst.writestr(item, data)
    assert list(read_columns(shared, ALL, lambda top: {0, 1})) == [["主管批示", "记录标识"], ["同意", "ref1"]]
    with pytest.raises(ColumnsUnreadable):
        read_columns(broken, ALL, lambda top: {0, 1})
    # tags with a namespace prefix (<x:row>, as some .NET writers do): refused, so calamine reads it
    prefixed = _rewritten(shared, tmp_path / "prefixed.xlsx", lambda xml: xml.replace(b"<row", b"<x:row").replace(
        b"</row>", b"</x:row>").replace(b"<c ", b"<x:c ").replace(b"</c>", b"</x:c>"))
    with pytest.raises(ColumnsUnreadable):
        read_columns(prefixed, ALL, lambda top: {i for row in top for i, v in enumerate(row) if v == "主管批示"})
    # a row past a sheet's last row: refused, not a billion empty rows made up to it
    far = _rewritten(shared, tmp_path / "far.xlsx", lambda xml: xml.replace(b'<row r="2"', b'<row r="999999999"').replace(
        b'r="A2"', b'r="A999999999"').replace(b'r="B2"', b'r="B999999999"'))
    with pytest.raises(ColumnsUnreadable, match="last row"):
        list(read_columns(far, ALL, lambda top: {0, 1}))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=14), st.sampled_from(["R0A1B2C3D4E5", "R" + "F" * 11, "a\"b", "é1"]),
                          st.integers(), st.floats(allow_nan=False), st.datetimes(), st.none()), min_size=1, max_size=3))
def test_a_rendered_rows_key_is_the_json_of_its_texts(key: list[Any]) -> None:
    # _rendered keys a row by the JSON of its key cells' texts (a record reference for 全部投诉)
    import json

    from complaint_core.merged.readback import _key_text, rendered_rows

    got = rendered_rows("全部投诉", key, {"manager_approval": "同意"})
    assert got == [["全部投诉", json.dumps([_key_text(v) for v in key], ensure_ascii=False), "manager_approval", "同意"]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=5), st.integers(-2, 2), st.floats(-2, 2),
                                   st.booleans(), st.datetimes()), min_size=4, max_size=4), max_size=6))
def test_a_tables_rendered_rows_are_each_rows_rendered_rows(rows: list[list[Any]]) -> None:
    # the walk makes 全部投诉's _rendered rows a shop at a time: as one row at a time would
    from complaint_core.merged.readback import rendered_rows, rendered_table_rows

    owned = [(1, "manager_approval"), (3, "penalty_amount")]
    refs = [f"R{i:011X}" for i in range(len(rows))]
    one_by_one = [x for ref, row in zip(refs, rows, strict=True)
                  for x in rendered_rows("全部投诉", [ref], {k: row[i] for i, k in owned})]
    assert rendered_table_rows("全部投诉", refs, rows, owned) == one_by_one


ROWS_XML = [
    b'<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"/><row/>'
    b'<row spans="1:3" x="a/"><c/><c t="inlineStr"><is><t>\xe6\x96\x87/></t></is></c></row></sheetData>',
    b"<row><c/><c/></row><rowBreaks/><row></row>\n<row r='9'>",   # a row cut off at the end: not a row
    b"",
]


@pytest.mark.parametrize("xml", ROWS_XML)
def test_rows_are_found_as_the_row_pattern_finds_them(xml: bytes) -> None:
    from complaint_core.merged import colread

    assert [(attrs, xml[start:end]) for attrs, start, end in colread._row_elements(xml)] == \
        [(m.group(1), m.group(2) or b"") for m in colread._ROW.finditer(xml)]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.none(), st.text(max_size=8), st.floats(allow_nan=False,
                                                                                   allow_infinity=False)),
                              min_size=1, max_size=6), min_size=1, max_size=6),
       keep=st.sets(st.integers(min_value=0, max_value=7), min_size=1, max_size=3))
def test_cells_without_a_place_are_read_by_their_place_as_in_order(rows: list[list[Any]], keep: set[int]) -> None:
    # the merged workbook as we write it: cells without ``r``, an empty one as <c/>
    from complaint_core.merged import colread
    from complaint_core.merged.rowxml import Cells

    width = max(map(len, rows))
    cells = Cells([None] * width, {"datetime": 1, "date": 2})
    for row in rows:
        body = cells.xml(row).encode()
        assert colread._none_numbered(body) or not body
        assert colread._placed(body, keep) == colread._cells(body, keep)
    # a cell not closed where the next one starts: read in order, as before
    assert colread._placed(b'<c t="inlineStr"><is><t>x</t></is></c>junk<c/>', {0}) is None


# ---- the fast paths of a read-back (issue 17): each equal to the row-by-row read -------------
_CELL_FORMS = st.sampled_from(["shared", "inline", "number", "styled", "bool", "empty", "styled_empty"])


def _raw(found: Any) -> Any:
    """Rows of raw cells with the reader's cell objects as plain tuples, to compare."""
    from complaint_core.merged import colread

    def one(v: Any) -> Any:
        if isinstance(v, colread._Shared):
            return ("shared", v.index)
        if isinstance(v, colread._Styled):
            return ("styled", v.number, v.style)
        return v

    if found is None:
        return None
    return [(n, {c: one(v) for c, v in cells.items()}) for n, cells in found]


def _excel_cell(ref: str, form: str, n: int) -> bytes:
    body = {"shared": f' t="s"><v>{n}</v></c>', "inline": f' t="inlineStr"><is><t>x{n}</t></is></c>',
            "number": f"><v>{n}.5</v></c>", "styled": f' s="3"><v>{n}</v></c>',
            "bool": f' t="b"><v>{n % 2}</v></c>', "empty": "/>", "styled_empty": ' s="1"/>'}[form]
    return f'<c r="{ref}"{body}'.encode()


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(min_value=1, max_value=3),
                               st.lists(st.tuples(st.integers(min_value=0, max_value=30), _CELL_FORMS),
                                        max_size=6)), max_size=8),
       keep=st.sets(st.integers(min_value=0, max_value=30), min_size=1, max_size=3),
       odd=st.sampled_from(["", "cols", "r_later"]))
def test_cells_found_by_their_place_are_the_rows_cells(rows: list[tuple[int, list[tuple[int, str]]]],
                                                        keep: set[int], odd: str) -> None:
    """As Excel saves: the kept cells of a whole stretch, found by one search and put in rows by
    the row number of their own place, are what reading it row by row gives, <col> and <cfRule>
    around them or not; a stretch with a cell naming its place later is not read so."""
    from complaint_core.merged import colread

    xml, expected, n = b"", [], 0
    for gap, cells in rows:
        n += gap
        used = sorted(dict(cells).items())
        row = b"".join(_excel_cell(f"{colread.column_letter(c)}{n}", form, c + n) for c, form in used)
        xml += f'<row r="{n}" spans="1:31">'.encode() + row + b"</row>"
        got = colread._cells(row, keep)
        if got:
            expected.append((n, got))
    if odd == "cols":   # other tags beginning "<c" are no cells: read so all the same
        xml = b'<cols><col min="1" max="2" width="9"/></cols><sheetData>' + xml + b"<cfRule/>"
    elif odd == "r_later":
        xml += b'<row r="99"><c s="2" r="A99"><v>1</v></c></row>'
    assert _raw(colread._kept(xml, keep)) == (None if odd == "r_later" else _raw(expected))


@settings(max_examples=80, deadline=None)
@given(cells=st.lists(st.sampled_from([b"<c/>", b'<c s="1"/>', b'<c t="inlineStr"><is><t>a b</t></is></c>',
                                       b'<c t="inlineStr"><is><t xml:space="preserve"> a </t></is></c>',
                                       b'<c s="4"><v>3.25</v></c>', b'<c t="b"><v>1</v></c>', b"<c><v>7</v></c>",
                                       b'<c t="s"><v>2</v></c>', b'<c t="str"><v>&amp;x</v></c>']),
                      min_size=1, max_size=8),
       blanks=st.booleans(), keep=st.sets(st.integers(min_value=0, max_value=9), min_size=1, max_size=3))
def test_cells_without_a_place_cut_by_hand_are_read_as_parsed(cells: list[bytes], blanks: bool,
                                                              keep: set[int]) -> None:
    """Our own layout read by cutting each row at "<c": every form a cell takes (empty, styled
    without a value, inline text kept or trimmed, numbers, booleans, shared strings, formula
    text), with or without blanks between cells, gives what parsing each cell gives."""
    from complaint_core.merged import colread

    row = (b"\n  " if blanks else b"").join(cells)
    assert colread._none_numbered(row)
    assert _raw([(0, colread._placed(row, keep))]) == _raw([(0, colread._cells(row, keep))])


def _shared_table(items: list[bytes]) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="x" count="9">'
            + b"".join(items) + b"</sst>")


_ITEMS = st.sampled_from([b"<si><t>plain</t></si>", b"<si><t> trimmed </t></si>", b"<si/>",
                          b'<si><t xml:space="preserve"> kept </t></si>', b"<si><t>a&amp;b_x0041_</t></si>",
                          b"<si><r><t>two </t></r><r><rPr><b/></rPr><t>runs</t></r></si>",
                          b"<si><t>\xe4\xb8\xad</t><rPh sb=\"0\" eb=\"1\"><t>zhong</t></rPh></si>",
                          b'<si count="1"><t>attributes</t></si>', b"<si>\n<t>spaced</t>\n</si>"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_ITEMS, min_size=1, max_size=40), picks=st.sets(st.integers(min_value=0, max_value=39)),
       block=st.sampled_from([24, 100, 1 << 20]))
def test_asked_shared_strings_are_read_as_the_item_pattern_reads_them(tmp_path: Path, monkeypatch,
                                                                      items: list[bytes], picks: set[int],
                                                                      block: int) -> None:
    """The shared strings a read-back asks for, taken from a table cut into stretches of any
    size, are those the item pattern finds, empty items (<si/>) and rich text included."""
    from complaint_core.merged import colread

    monkeypatch.setattr(colread, "_BLOCK", block)
    wanted = sorted(i for i in picks if i < len(items))
    path = tmp_path / "sst.xlsx"
    table = _shared_table(items)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/sharedStrings.xml", table)
    bits = bytearray(len(items) // 8 + 1)
    for i in wanted:
        bits[i >> 3] |= 1 << (i & 7)
    expected = [(i, colread._text(m.group(1) or b"")) for i, m in enumerate(colread._SI.finditer(table))
                if i in wanted]
    with zipfile.ZipFile(path) as zf:
        assert list(colread.each_shared(zf, path, bits)) == expected


def test_a_part_that_does_not_inflate_is_refused(merged: Path, tmp_path: Path) -> None:
    """A part whose bytes were damaged on the disk (it no longer inflates, or its CRC no longer
    matches) is refused: the caller reads the workbook with calamine, which names the damage."""
    from complaint_core.merged.xlsxwriter_adapter import sheet_parts

    saved = _typed(merged, tmp_path / "saved.xlsx")
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo(next(p.part for name, p in sheet_parts(zf).items() if name == ALL))
    data = bytearray(saved.read_bytes())
    # the stored bytes of the part, flipped past its local header: inflating fails or the CRC does
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for at in range(start + info.compress_size // 2, start + info.compress_size // 2 + 64):
        data[at] ^= 0x55
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ColumnsUnreadable):
        list(read_columns(damaged, ALL, lambda top: {0, 1}))


def test_a_shared_string_past_what_the_table_can_hold_is_refused_at_once(merged: Path, tmp_path: Path) -> None:
    """A cell naming shared string 99,999,999,999 (a damaged or hostile package, laid out as
    Excel saves) is refused before anything is made for it: never a 12 GB bitmap of the strings
    to read."""
    import re

    from bench.excel_save import excel_save

    saved = excel_save(_typed(merged, tmp_path / "saved.xlsx"), tmp_path / "excel.xlsx")
    path = _rewritten(saved, tmp_path / "far.xlsx",
                      lambda xml: re.sub(rb'(<c r="A3"[^>]*t="s"[^>]*><v>)\d+(</v>)', rb"\g<1>99999999999\g<2>", xml))
    with zipfile.ZipFile(path) as zf:
        assert b"99999999999" in b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    with pytest.raises(ColumnsUnreadable, match="shared string 99999999999 missing"):
        list(read_columns(path, ALL, lambda top: {0, 1}))
