"""A big sheet read a window of rows at a time (issue 17): every cell as calamine reads the whole
sheet, on every sheet of the real workbooks; a shop file's answer from its reading child built
window by window is, byte for byte, the answer of the whole read; a file that is not plain
(another table, no shop code, a table beside or below, far cells) is read whole."""

from __future__ import annotations

import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from python_calamine import CalamineError, CalamineWorkbook

from bench.data import rows_for, write_shop
from complaint_core import bigfile, isolate, windows
from complaint_core.bounds import CELL_BUDGET, bound_sheets, sheet_parts
from complaint_core.reader import read_tables
from complaint_core.safety import check_workbook
from complaint_core.schema import FIELDS
from complaint_core.store.codec import Prepared, findings_pieces, prepare
from complaint_core.validate import table_dues, validate_tables
from complaint_core.windows import NotWindowed

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NOW = datetime(2026, 12, 1, 10, 0)


def _whole(path: Path) -> Prepared:
    """What a reading child answers for ``path`` when it reads it whole (``isolate._work``)."""
    tables = read_tables(path)
    dues = [table_dues(t) for t in tables]
    return prepare(tables, validate_tables(tables, now=NOW, dues=dues), path, dues, consume=True)


def _same(got: Prepared, want: Prepared) -> None:
    assert (got.sheet, got.findings, got.shop, got.settings_json) == (want.sheet, want.findings, want.shop,
                                                                      want.settings_json)
    # from a reading child, a big file's findings wait apart in a file until stored
    assert b"".join(findings_pieces(got.findings_json)) == want.findings_json
    assert len(got.rows) == len(want.rows)
    assert list(got.rows) == list(want.rows)


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows of a few rows, from a sheet of a few kilobytes: many windows in a small file."""
    monkeypatch.setattr(windows, "BIG_SHEET", 20_000)
    monkeypatch.setattr(windows, "WINDOW_ROWS", 37)


@pytest.mark.parametrize("folder", ["chinese", "excel_made", "odd"])
def test_every_sheet_of_the_real_workbooks_reads_in_windows_as_calamine_reads_it_whole(folder: str) -> None:
    compared = refused = 0
    for path in sorted((CORPUS / folder).iterdir()):
        if path.suffix.lower() not in (".xlsx", ".xlsm"):
            continue
        try:
            facts = check_workbook(path)
            if facts.kind != "xlsx" or bound_sheets(path, facts):
                continue   # refused, or far cells cut out first: never read in windows
            book = CalamineWorkbook.from_path(str(path))
            with zipfile.ZipFile(path) as zf:
                parts = sheet_parts(zf)
        except Exception:  # noqa: BLE001 - a workbook the reader refuses is refused before windows
            continue
        for part, name in parts.items():
            try:
                sheet = book.get_sheet_by_name(name)
                if (sheet.height or 0) * (sheet.width or 0) > CELL_BUDGET:
                    continue
                start, whole = sheet.start, sheet.to_python()
            except Exception:  # noqa: BLE001 - calamine cannot read it whole either
                continue
            want = {start[0] + 1 + i: [""] * start[1] + row for i, row in enumerate(whole)} if start else {}
            try:
                # a few rows a window, and at most a dozen windows a sheet
                got = list(windows.windows(path, name, part, rows=max(25, (sheet.height or 0) // 12)))
            except NotWindowed:
                refused += 1   # read whole, as before
                continue
            seen: dict[int, list[Any]] = {}
            for first, grid in got:
                for i, row in enumerate(grid):
                    seen[first + i] = row
            for n in set(want) | set(seen):
                a, b = want.get(n, []), seen.get(n, [])
                width = max(len(a), len(b))
                assert a + [""] * (width - len(a)) == b + [""] * (width - len(b)), (path.name, name, n)
            compared += 1
    assert compared > {"chinese": 70, "excel_made": 200, "odd": 1_000}[folder], compared
    assert refused <= 10


_KEY = [f.key for f in FIELDS]


def _chain_file(tmp_path: Path, n: int = 300, shop: str = "S001", seed: int = 5) -> Path:
    """The bench's dirty rows (bad phones, late deadlines), with ids used twice far apart (in
    other windows) and rows that name another shop."""
    rows = rows_for(n, shop=shop, seed=seed)
    cid, named = _KEY.index("complaint_id"), _KEY.index("shop")
    for i in range(3, n - 150, 97):
        rows[i + 150][cid] = rows[i][cid]
    for i in range(7, n, 89):
        rows[i][named] = "S777"
    return write_shop(tmp_path / shop / f"{shop}.xlsx", rows, shop=shop)


@pytest.mark.usefixtures("small_windows")
def test_a_shops_file_built_window_by_window_is_the_whole_reads_answer(tmp_path: Path) -> None:
    # the bench's dirty rows: bad phones, ids used twice (across windows too), other shops' rows
    path = _chain_file(tmp_path, 300)
    got = bigfile.prepare_in_windows(path, NOW)
    assert got is not None and isinstance(got.rows, isolate.PackedRows)
    try:
        want = _whole(path)
        _same(got, want)
        assert want.findings > 100 and b'"duplicate_id"' in want.findings_json and b'"foreign_shop"' in want.findings_json
    finally:
        got.rows.close()


def _book(path: Path, grid: list[list[Any]], *, at: tuple[int, int] = (0, 0), shop: str | None = "S009",
          more: dict[str, list[list[Any]]] | None = None, far: int = 0) -> Path:
    """A workbook with ``grid`` on 投诉登记 from cell ``at``, a 设置 naming ``shop``, ``more``
    sheets, and a note in row ``far`` of 投诉登记 when it is not 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for name, cells, start in [("投诉登记", grid, at), *[(k, v, (0, 0)) for k, v in (more or {}).items()]]:
        ws = wb.add_worksheet(name)
        for r, row in enumerate(cells):
            for c, v in enumerate(row):
                if isinstance(v, datetime):
                    ws.write_datetime(start[0] + r, start[1] + c, v, stamp)
                elif v is not None:
                    ws.write(start[0] + r, start[1] + c, v)
    if far:
        wb.get_worksheet_by_name("投诉登记").write(far, 2, "远处的备注")
    if shop is not None:
        ws = wb.add_worksheet("设置")
        ws.write_row(0, 0, ["项目", "值"])
        ws.write_row(1, 0, ["门店代码", shop])
    wb.close()
    return path


def _grid(n: int, shop: str = "S009") -> list[list[Any]]:
    head = [f.zh for f in FIELDS]
    rows = rows_for(n, shop=shop, seed=9)
    return [head, *[list(r) + [None] * (len(head) - len(r)) for r in rows]]


@pytest.mark.usefixtures("small_windows")
def test_a_table_below_a_title_and_right_of_column_a_reads_the_same(tmp_path: Path) -> None:
    grid = [["门店投诉台账（2026）"], [], *_grid(200)]
    for r in grid[5::11]:
        r[:] = [None] * len(r)   # blank rows inside: gaps, not the end of the table
    path = _book(tmp_path / "a.xlsx", grid, at=(2, 1))
    got = bigfile.prepare_in_windows(path, NOW)
    assert got is not None
    try:
        _same(got, _whole(path))
    finally:
        assert isinstance(got.rows, isolate.PackedRows)
        got.rows.close()


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("how", ["no shop code", "another table", "a table below", "a table beside", "far cells",
                                 "short first window"])
def test_a_file_that_is_not_plain_is_read_whole(tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = _grid(200)
    shop: str | None = "S009"
    more: dict[str, list[list[Any]]] = {}
    if how == "no shop code":
        shop = None
    elif how == "another table":
        more = {"备份": _grid(5)}
    elif how == "a table below":
        grid += [[], *_grid(5)]
    elif how == "a table beside":
        grid = [row + [None] + row for row in grid]
    elif how == "short first window":
        # windows of 5 rows: the header, in the sheet's 10th row, lies past the first window
        monkeypatch.setattr(windows, "WINDOW_ROWS", 5)
        grid = [[f"说明第 {i} 行"] for i in range(9)] + grid
    path = _book(tmp_path / "b.xlsx", grid, shop=shop, more=more, far=800_000 if how == "far cells" else 0)
    assert bigfile.prepare_in_windows(path, NOW) is None
    _whole(path)   # and the whole read still reads it


def test_a_big_shops_file_through_its_reading_child_is_the_whole_reads_answer(tmp_path: Path) -> None:
    """At the real sizes, in a real reading child: a sheet past ``BIG_SHEET`` is read in windows
    of ``WINDOW_ROWS`` and the daemon receives the answer of the whole read."""
    path = _chain_file(tmp_path, 6_000, seed=12)
    with zipfile.ZipFile(path) as zf:
        assert list(windows.big_sheets(zf)) == ["投诉登记"]
    answers = list(isolate.read_many_isolated([path], now=NOW, jobs=1))
    assert len(answers) == 1 and isinstance(answers[0][1], Prepared)
    got = answers[0][1]
    try:
        _same(got, _whole(path))
    finally:
        assert isinstance(got.rows, isolate.PackedRows)
        got.rows.close()
    later = bigfile.prepare_in_windows(path, NOW + timedelta(days=1))
    assert later is not None   # the child took the windows: the same module decides
    assert isinstance(later.rows, isolate.PackedRows)
    later.rows.close()


@pytest.mark.usefixtures("small_windows")
def test_a_window_the_parser_dies_on_leaves_the_file_to_the_whole_read(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """python-calamine's panics are BaseExceptions: one on a window must not make a file that the
    whole read can read unreadable."""
    class Panic(BaseException):
        pass

    class Dies:
        @staticmethod
        def from_path(_path: str) -> Any:
            raise Panic("called `Result::unwrap()` on an `Err` value")

    path = _chain_file(tmp_path, 120)
    monkeypatch.setattr(windows, "CalamineWorkbook", Dies)   # the windows' reader only
    assert bigfile.prepare_in_windows(path, NOW) is None
    assert len(_whole(path).rows) == 120


# ---- each window given only its own shared strings ---------------------------------------
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.'
    'xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
    'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    'worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} xmlns:r="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships"><sheets><sheet name="投诉登记" sheetId="1" r:id="rId1"/></sheets>'
    '</workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="'
    'http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    '</Relationships>',
}


def _package(path: Path, strings: list[str], rows: list[str], p: str = "") -> Path:
    """A workbook of one sheet whose rows' XML is ``rows`` and whose shared strings' table holds
    ``strings`` (each an <si> element as written), elements with the namespace prefix ``p``."""
    ns = _NS.replace("xmlns=", f"xmlns:{p[:-1]}=") if p else _NS
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {ns}><{p}dimension ref="A1:C9"/><{p}sheetData>'
             + "".join(rows) + f"</{p}sheetData></{p}worksheet>")
    sst = (f'<?xml version="1.0" encoding="UTF-8"?><{p}sst {ns} count="9" uniqueCount="9">' + "".join(strings)
           + f"</{p}sst>" if strings else f'<?xml version="1.0" encoding="UTF-8"?><{p}sst {ns} count="0" uniqueCount="0"/>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in _PARTS.items():
            zf.writestr(name, text)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
        zf.writestr("xl/sharedStrings.xml", sst)
    return path


def _by_row(path: Path, rows: int) -> tuple[dict[int, list[Any]], dict[int, list[Any]]]:
    """(every row calamine reads in the whole sheet, every row the windows give), by row number."""
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("投诉登记")
    start, whole = sheet.start, sheet.to_python()
    want = {start[0] + 1 + i: [""] * start[1] + row for i, row in enumerate(whole)} if start else {}
    seen = {first + i: row for first, grid in windows.windows(path, "投诉登记", "xl/worksheets/sheet1.xml", rows=rows)
            for i, row in enumerate(grid)}
    return want, seen


def _si(text: str, p: str = "") -> str:
    return f"<{p}si><{p}t>{text}</{p}t></{p}si>"


def _row(n: int, cells: list[tuple[int, str]], p: str = "") -> str:
    """Row ``n``, each cell (shared string number, column letter)."""
    return f'<{p}row r="{n}">' + "".join(f'<{p}c r="{col}{n}" t="s"><{p}v>{k}</{p}v></{p}c>' for k, col in cells) + f"</{p}row>"


def _windows_tables(path: Path, rows: int) -> list[bytes | None]:
    with (zipfile.ZipFile(path) as zf, zf.open("xl/sharedStrings.xml") as src,
          tempfile.TemporaryDirectory() as scratch):
        strings = windows._Strings(src, "xl/sharedStrings.xml", Path(scratch) / "s.xml")
        return [table for _xml, table in windows._windows_xml(zf, "xl/worksheets/sheet1.xml", rows, strings)]


@pytest.mark.parametrize("p", ["", "x:"])
def test_each_window_is_given_only_the_strings_its_cells_name(tmp_path: Path, p: str) -> None:
    strings = [_si(f"文字{i} &amp; &lt;{i}&gt;", p) for i in range(60)]
    strings[7] = f'<{p}si><{p}r><{p}t>富</{p}t></{p}r><{p}r><{p}t xml:space="preserve"> 文本</{p}t></{p}r></{p}si>'
    strings[8] = f"<{p}si><{p}t>读音</{p}t><{p}rPh sb=\"0\" eb=\"1\"><{p}t>du</{p}t></{p}rPh></{p}si>"
    rows = [_row(n, [(3 * n % 60, "A"), (59 - n, "B"), (0, "C")], p) for n in range(1, 50)]
    path = _package(tmp_path / "a.xlsx", strings, rows, p)
    want, seen = _by_row(path, rows=10)
    assert want == seen and len(want) == 49
    tables = _windows_tables(path, 10)
    assert len(tables) == 5 and all(t is not None and t.count(b"si>") // 2 <= 21 for t in tables)


@pytest.mark.parametrize("how", ["an empty string", "only a reading", "a comment", "a cell with a formula",
                                 "a number past the table", "single quotes", "an empty table"])
def test_a_table_or_a_window_not_plain_is_given_the_whole_table(tmp_path: Path, how: str) -> None:
    # calamine skips an <si/> and a string of only its reading: every later number moves, so the
    # table is only ever given whole; a cell whose number is not where it is looked for (a
    # formula before it) or a number past the table leaves its window the whole table
    strings = [_si(f"s{i}") for i in range(30)]
    rows = [_row(n, [(n % 30, "A"), ((7 * n) % 30, "B")]) for n in range(1, 41)]
    plain_table = True
    if how == "an empty string":
        strings[4], plain_table = "<si/>", False
    elif how == "only a reading":
        strings[4], plain_table = "<si><rPh><t>yomi</t></rPh></si>", False
    elif how == "a comment":
        strings[4], plain_table = "<si><t>x</t><!-- <si><t>y</t></si> --></si>", False
    elif how == "a cell with a formula":
        rows[12] = '<row r="13"><c r="A13" t="s"><f>A1</f><v>5</v></c></row>'
    elif how == "a number past the table":
        rows[12] = '<row r="13"><c r="A13" t="s"><v>45</v></c><c r="B13"><v>1</v></c></row>'
        strings[29] = '<si><t xml:space="preserve">s29</t></si>'
    elif how == "an empty table":   # no string cells at all: a table written <sst/>
        strings, plain_table = [], False
        rows = [f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 41)]
    elif how == "single quotes":
        rows[12] = "<row r=\"13\"><c r='A13' t='s'><v>5</v></c></row>"
    path = _package(tmp_path / "b.xlsx", strings, rows)
    if how == "a number past the table":   # calamine refuses the sheet: its window is refused too
        with pytest.raises(CalamineError, match="shared strings"):
            _by_row(path, rows=40)
        with pytest.raises(CalamineError, match="shared strings"):
            list(windows.windows(path, "投诉登记", "xl/worksheets/sheet1.xml", rows=10))
    else:
        want, seen = _by_row(path, rows=10)
        assert want == seen and len(want) == 40
    tables = _windows_tables(path, 10)
    if not plain_table:
        assert tables == [None] * 4
    elif how in ("a cell with a formula", "a number past the table"):
        assert tables[1] is None and None not in (tables[0], tables[2], tables[3])
    else:
        assert None not in tables
