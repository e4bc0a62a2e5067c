"""What the render keeps between writes, with its compressed rows after the pickle (issue 17):
read back as written, turned down before a byte of its rows is read, refused whole when torn
or of another layout; rows left in the file are copied from it into the package as they were
when it was opened, even if another write replaces the file meanwhile."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_core.merged import keptfile
from complaint_core.merged.deflate import FINAL, FileSegment, Segment, Spool, compress
from complaint_core.merged.keptfile import NotKept
from complaint_core.merged.zipout import ZipOut


def _seg(text: bytes) -> Segment:
    return compress([text[: len(text) // 2], text[len(text) // 2:]])


class _Counting(io.FileIO):
    """A file that counts the bytes read from it."""

    got = 0

    def read(self, size: int = -1) -> bytes:   # type: ignore[override]
        data = super().read(size)
        self.got += len(data)
        return data

    def readinto(self, buffer: Any) -> int:   # type: ignore[override]
        n = super().readinto(buffer)
        self.got += n or 0
        return n or 0


class _Part:
    """A kept value of a class of its own (a piece, a 处罚 part)."""

    def __init__(self) -> None:
        self.rows = [(_seg(b"<row/>" * 100), 1)]


def _value(texts: list[bytes]) -> dict[str, Any]:
    segments = [_seg(t) for t in texts]
    return {"rows": [(s, i) for i, s in enumerate(segments)], "again": segments[:1], "label": "门店 S01",
            "none": None}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_what_is_kept_reads_back_as_written_in_memory_and_from_the_file(texts: list[bytes]) -> None:
    value = _value(texts)
    data = keptfile.dumps(value)
    assert data[:8] == keptfile.MAGIC
    assert keptfile.loads(data) == value
    # a segment named twice is kept once
    _head, total = struct.unpack_from("<QQ", data, 8)
    assert total == sum(len(s.data) for s, _ in value["rows"])
    fh = io.BytesIO()
    keptfile.dump(value, fh)
    assert fh.getvalue() == data


def test_rows_left_in_the_file_are_its_bytes_and_turned_down_values_read_none_of_them(tmp_path: Path) -> None:
    texts = [os.urandom(20_000).hex().encode(), b"<row>" * 5000, b""]
    value = _value(texts)
    path = tmp_path / "kept"
    with open(path, "wb") as fh:
        keptfile.dump(value, fh)
    size = path.stat().st_size
    with _Counting(path) as fh:
        assert keptfile.read(fh, lambda v: False, leave=True) is None
        # the 24 bytes of the top and the pickle: the rows after it are never read
        assert fh.got < size - sum(len(s.data) for s, _ in value["rows"]) + 1
    with open(path, "rb") as fh:
        got = keptfile.read(fh, lambda v: v["label"] == "门店 S01", leave=True)
        assert all(isinstance(s, FileSegment) for s, _ in got["rows"])
        assert [(s.read(), i) for s, i in got["rows"]] == value["rows"]
    with open(path, "rb") as fh:
        assert keptfile.read(fh, lambda v: True, leave=False) == value   # read into memory
    # a value with rows left in a file is kept again with those rows read from it
    with open(path, "rb") as fh:
        got = keptfile.read(fh, lambda v: True, leave=True)
        assert keptfile.loads(keptfile.dumps(got)) == value


def test_rows_spilt_to_a_file_as_they_were_made_are_kept_without_being_read_in(tmp_path: Path) -> None:
    """A piece maker writes a shop's rows to a nameless file as it makes them (``make_piece``'s
    spill): keeping the piece copies them from there, none read into memory in whole (Linux
    copies them in the kernel; elsewhere a block at a time)."""
    texts = [os.urandom(30_000).hex().encode(), b"<row>" * 9000]
    value = _value(texts)
    scratch_path = tmp_path / "spill"
    with _Counting(scratch_path, "w+b") as scratch:
        spilt = []
        for s, i in value["rows"]:
            at = scratch.seek(0, os.SEEK_END)
            scratch.write(s.data)
            spilt.append((FileSegment(scratch, at, len(s.data), s.crc, s.size), i))
        kept = {**value, "rows": spilt, "again": [spilt[0][0]]}
        with open(tmp_path / "kept", "wb") as fh:
            keptfile.dump(kept, fh)
        if sys.platform.startswith("linux"):
            assert scratch.got == 0
    with open(tmp_path / "kept", "rb") as fh:
        assert keptfile.read(fh, lambda v: True, leave=False) == value
    assert keptfile.loads(keptfile.dumps(value)) == value


def test_a_torn_foreign_or_lying_file_is_refused_whole(tmp_path: Path) -> None:
    value = _value([b"a" * 5000, b"b" * 7000])
    data = keptfile.dumps(value)
    bad = {
        "an older version's plain pickle": pickle.dumps(value),
        "cut short": data[:-1],
        "cut in its top": data[:10],
        "with bytes after it": data + b"x",
        "empty": b"",
    }
    for why, content in bad.items():
        path = tmp_path / "kept"
        path.write_bytes(content)
        with open(path, "rb") as fh, pytest.raises((NotKept, pickle.UnpicklingError)):
            keptfile.read(fh, lambda v: True, leave=True)
        with pytest.raises((NotKept, pickle.UnpicklingError)):
            keptfile.loads(content)
        assert why
    # a segment said to lie outside the file's rows
    real = keptfile._Segments.reduce

    def outside(self: Any, segment: Segment) -> Any:
        made, (at, length, crc, size) = real(self, segment)
        return made, (at + 10**9, length, crc, size)

    keptfile._Segments.reduce = outside   # type: ignore[method-assign]
    try:
        lying = keptfile.dumps(value)
    finally:
        keptfile._Segments.reduce = real   # type: ignore[method-assign]
    with pytest.raises(NotKept, match="outside"):
        keptfile.loads(lying)
    # the name a segment goes by in the pickle is nothing on its own
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(lying[24:])


def test_a_spool_copies_rows_left_in_files_as_they_were_when_opened(tmp_path: Path) -> None:
    """The package gets the bytes of the file as it was opened, even when another write
    replaces or removes the file before the copy; the copies of one file's rows that lie one
    after another are one copy."""
    texts = [os.urandom(30_000).hex().encode(), b"<row><c>1</c></row>" * 4000, os.urandom(5000).hex().encode()]
    value = _value(texts)
    kept = tmp_path / "S01.piece"
    with open(kept, "wb") as fh:
        keptfile.dump(value, fh)
    fh = open(kept, "rb")  # noqa: SIM115 - held as the cache holds it
    try:
        got = keptfile.read(fh, lambda v: True, leave=True)
        # another write's piece of the shop takes its place, then the shop leaves the chain
        tmp = tmp_path / "new"
        with open(tmp, "wb") as new:
            keptfile.dump(_value([b"other" * 999]), new)
        os.replace(tmp, kept)
        kept.unlink()
        with Spool(dir=str(tmp_path)) as spool:
            spool.add_chunks([b"<head/>"])
            for segment, _i in got["rows"]:
                spool.add(segment)
            spool.add(_seg(b"<tail/>" * 10))
            assert len(spool._runs) == 3          # own, the file's rows as one run, own
            whole = b"<head/>" + b"".join(texts) + b"<tail/>" * 10
            assert (spool.crc, spool.size) == (zlib.crc32(whole), len(whole))
            target = tmp_path / "book.xlsx"
            with ZipOut(target) as out:
                out.write_parts("xl/worksheets/sheet1.xml", [b"<x>", spool, b"</x>"])
            sink = io.BytesIO()
            spool.copy_to(sink)
            assert zlib.decompress(sink.getvalue() + FINAL, -15) == whole
        with zipfile.ZipFile(target) as zf:
            assert zf.testzip() is None
            assert zf.read("xl/worksheets/sheet1.xml") == b"<x>" + whole + b"</x>"
    finally:
        fh.close()


def test_rows_whose_file_is_shorter_than_it_said_end_the_package_unfinished(tmp_path: Path) -> None:
    path = tmp_path / "short"
    data = _seg(os.urandom(50_000)).data
    path.write_bytes(data[:-100])
    with open(path, "rb") as fh, Spool(dir=str(tmp_path)) as spool:
        spool.add(FileSegment(fh, 0, len(data), 0, 50_000))
        out = ZipOut(tmp_path / "broken.xlsx")
        with pytest.raises(OSError, match="ends 100 bytes before"):
            out.write_parts("sheet.xml", [spool])
        out.close()
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(tmp_path / "broken.xlsx")


def test_keeping_a_value_leaves_nothing_of_it_behind() -> None:
    """Once kept, a shop's piece is not held by the pickler that wrote it until the collector
    happens to run (a daemon held 20 MiB more so)."""
    import gc
    import weakref

    part = _Part()
    gone = weakref.ref(part)
    was = gc.isenabled()
    gc.disable()
    try:
        keptfile.dump(part, io.BytesIO())
        keptfile.dumps(part)
        del part
        assert gone() is None
    finally:
        if was:
            gc.enable()
