"""Reusable compressed pieces of the merged workbook: deflate segments, the zip writer that
assembles a part from them, and un-numbered rows that mean the same at any row of a sheet.

Everything is checked on real files with the readers the managers' programs stand for:
zipfile (CRC checks), openpyxl, python-calamine and LibreOffice.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import struct
import sys
import zipfile
import zlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from complaint_core.errors import ComplaintDeskError
from complaint_core.merged import xlsxwriter_adapter as adapter
from complaint_core.merged import zipout
from complaint_core.merged.deflate import FINAL, Segment, Spool, compress, crc32_combine
from complaint_core.merged.rowxml import row_xml
from complaint_core.merged.zipout import BadPartName, DuplicatePart, ZipOut, ZipOutClosed

HEADER = ["文本", "数量", "空列", "受理时间", "日期", "金额", "备注"]


# --- deflate segments ----------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=3000))
def test_crc32_combine_is_the_crc_of_the_concatenation(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@settings(max_examples=12, deadline=None)
@given(st.integers(min_value=0, max_value=4 << 20), st.binary(min_size=1, max_size=64), st.integers(0, 255))
def test_crc32_combine_over_megabytes(length: int, a: bytes, fill: int) -> None:
    b = bytes([fill]) * length
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), length) == zlib.crc32(a + b)


def test_crc32_combine_edges() -> None:
    a, b = os.urandom(1000), os.urandom(3 << 20)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), 0, 0) == zlib.crc32(a)          # B empty
    assert crc32_combine(0, zlib.crc32(b), len(b)) == zlib.crc32(b)     # A empty
    with pytest.raises(ValueError, match="-1"):
        crc32_combine(1, 2, -1)


def _backends() -> list[Any]:
    from isal import isal_zlib

    return [zlib, isal_zlib]


@pytest.fixture(params=["zlib", "isal"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Segments made by the standard zlib and by ISA-L (what deflate.py picks where installed):
    both must make the same stream, alone and mixed (pieces kept by an earlier write stay)."""
    from complaint_core.merged import deflate

    lib = _backends()[["zlib", "isal"].index(request.param)]
    monkeypatch.setattr(deflate, "DEFLATE", lib)
    return lib


def test_the_fast_deflate_is_used_where_installed_and_checked() -> None:
    from complaint_core.merged import deflate

    zlib_, isal_zlib = _backends()
    assert deflate.DEFLATE is isal_zlib and deflate._works(isal_zlib) and deflate._works(zlib_)

    class EndsEachSegment:   # a deflate whose "full flush" finishes the stream: FINAL would follow an end
        DEFLATED, Z_FULL_FLUSH, crc32 = zlib.DEFLATED, zlib.Z_FULL_FLUSH, staticmethod(zlib.crc32)

        @staticmethod
        def compressobj(level: int, method: int, wbits: int) -> Any:
            packer = zlib.compressobj(level, method, wbits)

            class Packer:
                compress = packer.compress

                @staticmethod
                def flush(_mode: int) -> bytes:
                    return packer.flush(zlib.Z_FINISH)
            return Packer()

    assert not deflate._works(EndsEachSegment)


def test_segments_and_final_make_one_finished_stream(backend: Any) -> None:
    rng = random.Random(7)
    texts = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 5000))) for _ in range(4)]
    texts.append(b"<row><c/></row>" * 2000)                             # compressible, like rows
    segments = [compress([t[:100], t[100:]]) for t in texts]
    assert compress([]) == Segment(compress([]).data, 0, 0)
    other = _backends()[0] if backend is not zlib else _backends()[1]
    from complaint_core.merged import deflate

    with pytest.MonkeyPatch.context() as mp:   # the same texts by the other deflate
        mp.setattr(deflate, "DEFLATE", other)
        theirs = [compress([t]) for t in texts]
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1], [1, 1, 4]):        # any order, repeats too
        for mixed in (segments, [theirs[i] if i % 2 else s for i, s in enumerate(segments)]):
            inflater = zlib.decompressobj(-15)
            out = inflater.decompress(b"".join(mixed[i].data for i in order) + FINAL)
            assert out == b"".join(texts[i] for i in order)
            assert inflater.eof and inflater.unused_data == b""
    for text, seg in zip(texts, segments, strict=True):
        assert (seg.crc, seg.size) == (zlib.crc32(text), len(text))
        # not final on its own: the stream only ends with FINAL
        inflater = zlib.decompressobj(-15)
        assert inflater.decompress(seg.data) == text and not inflater.eof


def test_spool_is_a_file_of_segments(tmp_path: Path, backend: Any) -> None:
    first = compress([b"head " * 100])
    body = [f"<row>{i}</row>".encode() for i in range(20_000)]
    with Spool(dir=str(tmp_path)) as spool:
        spool.add(first)
        spool.add_chunks(iter(body))
        spool.add(first)
        whole = b"head " * 100 + b"".join(body) + b"head " * 100
        assert (spool.crc, spool.size) == (zlib.crc32(whole), len(whole))
        sink = io.BytesIO()
        spool.copy_to(sink)
        assert len(sink.getvalue()) == spool.csize < len(whole) // 4
        assert zlib.decompress(sink.getvalue() + FINAL, -15) == whole
        spool.add_chunks([b"tail"])                                     # still open after a copy
        again = io.BytesIO()
        spool.copy_to(again)
        assert zlib.decompress(again.getvalue() + FINAL, -15) == whole + b"tail"
        assert spool.crc == zlib.crc32(whole + b"tail")
    with pytest.raises(ValueError):
        spool.copy_to(io.BytesIO())                                     # closed with the with


def test_a_spool_copied_into_a_file_lands_between_what_was_written_before_and_after(
        tmp_path: Path, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Into a file on disk the kernel copies the spool (os.sendfile on Linux), behind what the
    buffered file still held and ahead of what is written next; a copy the kernel refuses
    half-way is finished block by block from where it stopped."""
    body = [os.urandom(64).hex().encode() * (i % 7 + 1) for i in range(40_000)]   # several MiB compressed
    with Spool(dir=str(tmp_path)) as spool:
        spool.add_chunks(iter(body))
        assert spool.csize > 2 << 20
        with open(tmp_path / "whole.bin", "wb") as fh:
            fh.write(b"HEAD")                        # still in the file object's buffer
            spool.copy_to(fh)
            fh.write(b"TAIL")
        data = (tmp_path / "whole.bin").read_bytes()
        assert data[:4] == b"HEAD" and data[-4:] == b"TAIL" and len(data) == spool.csize + 8
        assert zlib.decompress(data[4:-4] + FINAL, -15) == b"".join(body)
        if hasattr(os, "sendfile"):
            real, calls = os.sendfile, []

            def refuses_after_one(out: int, inp: int, offset: int, count: int) -> int:
                calls.append(offset)
                if len(calls) > 1:
                    raise OSError(22, "Invalid argument")
                return real(out, inp, offset, min(count, 1 << 20))

            monkeypatch.setattr(os, "sendfile", refuses_after_one)
            with open(tmp_path / "half.bin", "wb") as fh:
                fh.write(b"HEAD")
                spool.copy_to(fh)
                fh.write(b"TAIL")
            assert (tmp_path / "half.bin").read_bytes() == data
            assert calls == ([0, 1 << 20] if sys.platform.startswith("linux") else [])


def test_chunks_that_break_off_leave_the_spool_as_it_was(tmp_path: Path, backend: Any) -> None:
    def broken():
        yield b"<row>1</row>" * 50_000
        raise OSError("the store went away")

    with Spool(dir=str(tmp_path)) as spool:
        spool.add_chunks([b"<row>0</row>"])
        before = (spool.crc, spool.size, spool.csize)
        with pytest.raises(OSError, match="went away"):
            spool.add_chunks(broken())
        assert (spool.crc, spool.size, spool.csize) == before
        spool.add_chunks([b"<row>2</row>"])
        sink = io.BytesIO()
        spool.copy_to(sink)
        assert zlib.decompress(sink.getvalue() + FINAL, -15) == b"<row>0</row><row>2</row>"
    # a part that breaks off half-written ends the package: no central directory, no more parts
    with Spool(dir=str(tmp_path)) as spool:
        spool.add_chunks([b"x" * 1000])
        spool.close()
        out = ZipOut(tmp_path / "broken.xlsx")
        out.write("first.xml", b"<a/>")
        with pytest.raises(ValueError):
            out.write_parts("sheet.xml", [b"<head/>", spool])
        with pytest.raises(ZipOutClosed, match="after.xml"):
            out.write("after.xml", b"<b/>")
        out.close()
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(tmp_path / "broken.xlsx")


# --- the zip writer ------------------------------------------------------------------------
def _build_reference(path: Path) -> None:
    """A workbook with what the merged one has: shared and Chinese strings, dates, numbers,
    an Excel Table, a dropdown, a chart on a second sheet."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws = wb.add_worksheet("全部投诉")
    rows = [[f"顾客{i}说：=SUM(A1)" if i % 7 == 0 else f"门店{i % 13}", i, datetime(2026, 3, 1, 9, i % 60),
             i * 1.25, "已解决" if i % 2 else "处理中"] for i in range(400)]
    ws.add_table(0, 0, len(rows), 4, {"name": "投诉表", "data": rows, "columns": [
        {"header": "门店"}, {"header": "序号"}, {"header": "受理时间", "format": stamp},
        {"header": "金额"}, {"header": "处理状态"}]})
    ws.data_validation(1, 4, len(rows), 4, {"validate": "list", "source": ["处理中", "已解决"]})
    summary = wb.add_worksheet("汇总 Summary")
    summary.write_column(0, 0, ["商品质量", "服务态度", "其他"])
    summary.write_column(0, 1, [12, 30, 5])
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"categories": "='汇总 Summary'!$A$1:$A$3", "values": "='汇总 Summary'!$B$1:$B$3"})
    summary.insert_chart("D2", chart)
    wb.close()


def _random_pieces(data: bytes, rng: random.Random, tmp: Path) -> list[Any]:
    """``data`` cut into 2-5 pieces, each given as bytes, a Segment or a Spool."""
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 4))) if len(data) > 5 else [len(data) // 2]
    pieces: list[Any] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True):
        piece, kind = data[lo:hi], rng.choice(["bytes", "segment", "spool"])
        if kind == "bytes":
            pieces.append(piece)
        elif kind == "segment":
            pieces.append(compress([piece[:7], piece[7:]], level=rng.choice([1, 6, 9])))
        else:
            spool = Spool(dir=str(tmp))
            spool.add_chunks([piece[: len(piece) // 3]])
            spool.add(compress([piece[len(piece) // 3:]]))
            pieces.append(spool)
    return pieces


def _repackage(source: Path, target: Path, rng: random.Random, tmp: Path) -> None:
    spools: list[Spool] = []
    with zipfile.ZipFile(source) as zin, ZipOut(target) as out:
        for info in zin.infolist():
            data = zin.read(info)
            if rng.random() < 0.3:
                out.write(info.filename, data, level=rng.choice([1, 9]))
            else:
                pieces = _random_pieces(data, rng, tmp)
                spools += [p for p in pieces if isinstance(p, Spool)]
                out.write_parts(info.filename, pieces)
    for spool in spools:
        spool.close()


def _openpyxl_values(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def _calamine_values(path: Path) -> dict[str, list[list[Any]]]:
    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def _local_headers_match_central(path: Path) -> None:
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        for info in z.infolist():
            (sig, version, flags, method, time_, date_, crc, csize, size, name_len,
             extra_len) = struct.unpack_from("<4s5H3L2H", raw, info.header_offset)
            assert sig == b"PK\x03\x04" and method == info.compress_type == zipfile.ZIP_DEFLATED
            assert (time_, date_) == (0, 0x21) and info.date_time == (1980, 1, 1, 0, 0, 0)
            assert not flags & 0x08                                 # no data descriptor
            assert flags == info.flag_bits == (0 if info.filename.isascii() else 0x800)
            assert (crc, csize, size) == (info.CRC, info.compress_size, info.file_size)
            assert version == info.extract_version == 20 and extra_len == 0


def test_repackaged_workbook_reads_identically(tmp_path: Path) -> None:
    source = tmp_path / "xlsxwriter.xlsx"
    _build_reference(source)
    want_openpyxl, want_calamine = _openpyxl_values(source), _calamine_values(source)
    assert len(want_openpyxl["全部投诉"]) == 401
    for seed in range(3):
        target = tmp_path / f"zipout{seed}.xlsx"
        _repackage(source, target, random.Random(seed), tmp_path)
        _local_headers_match_central(target)
        with zipfile.ZipFile(source) as a, zipfile.ZipFile(target) as b:
            assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
            assert all(a.read(n) == b.read(n) for n in a.namelist())
        assert _openpyxl_values(target) == want_openpyxl
        assert _calamine_values(target) == want_calamine
    # the same parts give the same bytes: nothing in the package depends on the time
    again = tmp_path / "again.xlsx"
    _repackage(source, again, random.Random(0), tmp_path)
    assert again.read_bytes() == (tmp_path / "zipout0.xlsx").read_bytes()


def test_names_stream_and_empty_parts(tmp_path: Path) -> None:
    sink = io.BytesIO()
    sink.write(b"not part of the package")                      # offsets count from the start
    with ZipOut(sink) as out:
        out.write("xl/图表/数据.xml", "<数据/>".encode())
        out.write("empty.bin", b"")
        out.write_parts("nothing.xml", [])
        out.write_parts("one.xml", [b"", compress([]), b"<a/>"])
    with zipfile.ZipFile(io.BytesIO(sink.getvalue()[23:])) as z:
        assert z.testzip() is None
        assert z.read("xl/图表/数据.xml") == "<数据/>".encode()
        assert z.getinfo("xl/图表/数据.xml").flag_bits == 0x800 and z.getinfo("one.xml").flag_bits == 0
        assert z.read("empty.bin") == z.read("nothing.xml") == b"" and z.read("one.xml") == b"<a/>"


def test_bad_parts_are_refused_with_the_name(tmp_path: Path) -> None:
    path = tmp_path / "dup.xlsx"
    with pytest.raises(DuplicatePart, match=r"dup\.xlsx.*'xl/workbook\.xml'.*重复"), ZipOut(path) as out:
        out.write("xl/workbook.xml", b"<workbook/>")
        out.write_parts("xl/workbook.xml", [b"<workbook/>"])
    # the error left the package without its central directory: never mistaken for a whole one
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path)
    with ZipOut(tmp_path / "names.zip") as out:
        for bad in ["", "/xl/workbook.xml", "xl\\workbook.xml", "xl/../x.xml", "xl//x.xml"]:
            with pytest.raises(BadPartName) as caught:
                out.write(bad, b"x")
            assert repr(bad) in str(caught.value) and isinstance(caught.value, ComplaintDeskError)
        out.write("ok.xml", b"x")
        with pytest.raises(DuplicatePart, match="OK.xml"):
            out.write_parts("OK.xml", [b"y"])                  # one part to Excel: names ignore case
        with pytest.raises(ValueError):
            out.write("retry.xml", b"x", level=42)
        out.write("retry.xml", b"x")                           # a failed compression claims no name
    with pytest.raises(ZipOutClosed, match="late.xml"):
        out.write("late.xml", b"x")
    with zipfile.ZipFile(tmp_path / "names.zip") as z:
        assert z.namelist() == ["ok.xml", "retry.xml"]


def test_zip64_when_the_limits_are_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "xlsxwriter.xlsx"
    _build_reference(source)
    small = tmp_path / "small.xlsx"
    _repackage(source, small, random.Random(1), tmp_path)
    assert b"PK\x06\x06" not in small.read_bytes()                  # not without need
    # every size and offset past 2,000 bytes and more than 4 parts now need ZIP64
    monkeypatch.setattr(zipout, "_ZIP64_LIMIT", 2000)
    monkeypatch.setattr(zipout, "_ZIP64_COUNT_LIMIT", 4)
    big = tmp_path / "zip64.xlsx"
    _repackage(source, big, random.Random(1), tmp_path)
    raw = big.read_bytes()
    assert raw.count(b"PK\x06\x06") == 1 and raw.count(b"PK\x06\x07") == 1
    with zipfile.ZipFile(big) as z, zipfile.ZipFile(source) as ref:
        assert z.testzip() is None
        assert all(z.read(n) == ref.read(n) for n in ref.namelist())
        infos = z.infolist()
        assert len(infos) > 4
        wide = [i for i in infos if max(i.file_size, i.compress_size, i.header_offset) >= 2000]
        assert wide and all(i.extract_version == 45 for i in wide)
        assert all(i.extract_version == 20 for i in infos if i not in wide)
        for info in infos:                                       # both sizes in the local header
            csize, size = struct.unpack_from("<2L", raw, info.header_offset + 18)
            local_extra = struct.unpack_from("<H", raw, info.header_offset + 28)[0]
            if max(info.file_size, info.compress_size) >= 2000:
                assert (csize, size, local_extra) == (0xFFFFFFFF, 0xFFFFFFFF, 20)
            else:
                assert (csize, size, local_extra) == (info.compress_size, info.file_size, 0)
    _central_records_say_zip64(raw, limit=2000)
    assert _openpyxl_values(big) == _openpyxl_values(source)
    assert _calamine_values(big) == _calamine_values(source)


def _central_records_say_zip64(raw: bytes, *, limit: int) -> None:
    """Read the end records and the central directory by hand: zipfile would also accept a
    small real value in place of the 0xFFFFFFFF that says "look in the ZIP64 field"."""
    end = raw.rindex(b"PK\x05\x06")
    _, _, _, count16, total16, cd_size32, cd_start32, _ = struct.unpack_from("<4s4H2LH", raw, end)
    sig, _, end64, disks = struct.unpack_from("<4sLQL", raw, end - 20)
    assert (sig, disks) == (b"PK\x06\x07", 1)
    sig, rest, made, need, _, _, count, total, cd_size, cd_start = struct.unpack_from("<4sQ2H2L4Q", raw, end64)
    assert (sig, rest, made, need, count) == (b"PK\x06\x06", 44, 45, 45, total)
    assert end64 == cd_start + cd_size and count16 == total16 == 0xFFFF
    assert cd_size32 == (cd_size if cd_size < limit else 0xFFFFFFFF)
    assert cd_start32 == (cd_start if cd_start < limit else 0xFFFFFFFF)
    at = cd_start
    for _ in range(count):
        fields = struct.unpack_from("<4s6H3L5H2L", raw, at)
        sig, made, need, csize, size, name_len, extra_len, offset = (fields[0], *fields[1:3], *fields[8:12],
                                                                     fields[16])
        assert sig == b"PK\x01\x02"
        extra = raw[at + 46 + name_len: at + 46 + name_len + extra_len]
        local = struct.unpack_from("<2L", raw, offset + 18) if offset != 0xFFFFFFFF else None
        wide = [v == 0xFFFFFFFF for v in (size, csize, offset)]
        if any(wide):
            tag, length = struct.unpack_from("<2H", extra)
            values = struct.unpack_from(f"<{sum(wide)}Q", extra, 4)
            assert tag == 1 and length == 8 * sum(wide) and all(v >= limit for v in values)
            assert made == need == 45
        else:
            assert extra == b"" and made == need == 20 and local == (csize, size)
        at += 46 + name_len + extra_len
    assert at == cd_start + cd_size


def test_zip64_for_more_than_65535_parts(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with ZipOut(path) as out:
        for i in range(65_537):
            out.write(f"p/{i}.xml", b"<a/>")
    raw = path.read_bytes()
    assert raw.count(b"PK\x06\x06") == 1
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        assert len(infos) == 65_537 and z.read("p/65536.xml") == b"<a/>"
        assert {i.extract_version for i in infos} == {20}      # no part needs ZIP64 itself
        assert z.testzip() is None


# --- un-numbered rows ----------------------------------------------------------------------
def _sheet_rows(n: int, seed: int = 3) -> list[list[Any]]:
    rng = random.Random(seed)
    words = ["商品质量", "=1+1", "-2+3", "@cmd", " 前后有空格 ", "a&b<c>", "_x0041_ 原样", "换行\n第二行", "𠮷😀"]
    rows: list[list[Any]] = []
    for i in range(n):
        row: list[Any] = [f"顾客{i}", i, None, datetime(2026, 3, 1, 9, i % 60), date(2026, 3, 1 + i % 28),
                          round(i * 1.25, 2), rng.choice(words)]
        for c in rng.sample(range(7), rng.randint(0, 6)):              # gaps anywhere, some rows empty
            row[c] = rng.choice([None, ""])
        rows.append(row[: rng.randint(5, 7)])
    rows.append([None] * 7)
    rows.append(["最后一行", None, None, None, None, None, "末列"])
    return rows


_VALUES = st.one_of(st.none(), st.just(""), st.text(max_size=12), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.decimals(places=2, allow_nan=False),
                    st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(2100, 1, 1)),
                    st.dates(min_value=date(1890, 1, 1), max_value=date(2100, 1, 1)))


def _placed(xml: bytes) -> list[dict[int, bytes]]:
    """Each row as {column: the cell's XML without r}, columns as a reader places them."""
    from xml.etree import ElementTree as ET

    from openpyxl.utils import column_index_from_string

    rows = []
    for row in ET.fromstring(b"<sheetData>" + xml + b"</sheetData>"):
        cells, following = {}, 0
        for cell in row:
            ref = cell.attrib.pop("r", None)
            column = column_index_from_string(ref.rstrip("0123456789")) - 1 if ref else following
            following = column + 1
            if len(cell) or cell.attrib:        # <c/> only holds a place
                cells[column] = ET.tostring(cell)
        rows.append(cells)
    return rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_VALUES, max_size=9), max_size=8))
def test_unnumbered_rows_put_each_value_in_its_column(rows: list[list[Any]]) -> None:
    number_styles: list[int | None] = [None, 3] * 5
    styles = {"datetime": 1, "date": 2}
    bare = b"".join(row_xml(rows, number_styles, styles))
    assert b' r="' not in bare and bare.count(b"<row") == len(rows)
    assert [set(cells) for cells in _placed(bare)] == [{c for c, v in enumerate(row) if v not in (None, "")}
                                                       for row in rows]
    for row, xml in zip(rows, re.findall(rb"<row/>|<row>.*?</row>", bare, re.S), strict=True):
        assert (xml == b"<row/>") == all(v is None or v == "" for v in row)
        assert not xml.endswith(b"<c/></row>")                 # no trailing place-holders


def _frame(path: Path) -> tuple[dict[str, bytes], list[int | None], dict[str, int]]:
    """An XlsxWriter workbook with the numbered header row; its parts, number styles and styles."""
    wb = xlsxwriter.Workbook(str(path))
    fmts = {"datetime": wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "date": wb.add_format({"num_format": "yyyy-mm-dd"}), "money": wb.add_format({"num_format": "0.00"})}
    adapter.fix_style_indexes(fmts.values())
    styles = {k: adapter.style_index(f) for k, f in fmts.items()}
    ws = wb.add_worksheet("全部投诉")
    ws.write_row(0, 0, HEADER)
    wb.close()
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    return parts, [None, None, None, None, None, styles["money"], None], styles


def _sheet_pieces(sheet: bytes, last_row: int) -> tuple[bytes, bytes]:
    """The sheet part before and after the data rows (after the header row)."""
    sheet = re.sub(rb'<dimension ref="[^"]*"/>', f'<dimension ref="A1:G{last_row}"/>'.encode(), sheet)
    head, tail = sheet.split(b"</sheetData>")
    assert head.count(b"<row ") == 1
    return head, b"</sheetData>" + tail


def _write_book(path: Path, parts: dict[str, bytes], sheet_parts: list[Any]) -> None:
    with ZipOut(path) as out:
        for name, data in parts.items():
            if name == "xl/worksheets/sheet1.xml":
                out.write_parts(name, sheet_parts)
            else:
                out.write(name, data)


def test_unnumbered_rows_land_in_their_cells(tmp_path: Path) -> None:
    rows = _sheet_rows(300)
    parts, number_styles, styles = _frame(tmp_path / "frame.xlsx")
    head, tail = _sheet_pieces(parts["xl/worksheets/sheet1.xml"], len(rows) + 1)
    unnumbered = tmp_path / "unnumbered.xlsx"
    bare = b"".join(row_xml(rows, number_styles, styles))
    assert b" r=" not in bare and b"<row/>" in bare and b"<c/>" in bare
    _write_book(unnumbered, parts, [head, compress([bare]), tail])

    assert len(_openpyxl_values(unnumbered)["全部投诉"]) == len(rows) + 1
    # the rows themselves, cell by cell: values by calamine (openpyxl leaves
    # Excel's _xHHHH_ escapes in), number formats by openpyxl
    grid = _calamine_values(unnumbered)["全部投诉"]
    ws = openpyxl.load_workbook(unnumbered)["全部投诉"]
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            expected = "" if value is None else float(value) if type(value) is int else value
            assert grid[r][c] == expected, (r + 1, c + 1, grid[r][c], value)
            if c == 5 and value not in (None, ""):
                assert ws.cell(r + 1, c + 1).number_format == "0.00"
        assert grid[r][len(row):] == [""] * (len(HEADER) - len(row))
    assert ws.max_row == len(rows) + 1 and ws["A1"].value == "文本"


def test_libreoffice_reads_unnumbered_rows(tmp_path: Path, soffice_opens) -> None:
    rows = _sheet_rows(120, seed=5)
    for row in rows:                                   # CSV keeps one line per row: no newlines
        row[:] = [v.replace("\n", " ") if isinstance(v, str) else v for v in row]
    parts, number_styles, styles = _frame(tmp_path / "frame.xlsx")
    head, tail = _sheet_pieces(parts["xl/worksheets/sheet1.xml"], len(rows) + 1)
    path = tmp_path / "unnumbered.xlsx"
    _write_book(path, parts, [head, compress(row_xml(rows, number_styles, styles)), tail])
    lines = list(csv.reader(io.StringIO(soffice_opens(path))))
    assert lines[0] == HEADER and len(lines) == len(rows) + 1

    def shown(v: Any) -> str:
        if v is None or v == "":
            return ""
        if isinstance(v, datetime):                    # the CSV export writes values, not formats
            return v.isoformat(" ")
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    for r, (line, row) in enumerate(zip(lines[1:], rows, strict=True), start=2):
        want = [shown(v) for v in row]
        want += [""] * (len(HEADER) - len(want))
        assert line == want, (r, line, want)


def test_segments_reused_in_another_order(tmp_path: Path) -> None:
    shop_a = [[f"甲店{i}", i, None, datetime(2026, 3, 2, 10, i), None, 1.5, "甲"] for i in range(40)]
    shop_b = [[f"乙店{i}", None, "", None, date(2026, 3, 3), None, "乙"] for i in range(25)]
    parts, number_styles, styles = _frame(tmp_path / "frame.xlsx")
    head, tail = _sheet_pieces(parts["xl/worksheets/sheet1.xml"], 66)
    seg_a = compress(row_xml(shop_a, number_styles, styles))
    seg_b = compress(row_xml(shop_b, number_styles, styles))
    for order, want in (([seg_a, seg_b], shop_a + shop_b), ([seg_b, seg_a], shop_b + shop_a)):
        path = tmp_path / f"order{len(want[0][0])}{order[0] is seg_a}.xlsx"
        _write_book(path, parts, [head, *order, tail])
        raw = path.read_bytes()
        assert seg_a.data in raw and seg_b.data in raw             # copied, not recompressed
        got = _openpyxl_values(path)["全部投诉"][1:]
        assert [list(r) for r in got] == [
            [None if v == "" else datetime(v.year, v.month, v.day) if type(v) is date else v for v in row]
            for row in want]
        cal = _calamine_values(path)["全部投诉"]
        assert [r[0] for r in cal[1:]] == [row[0] for row in want]
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
