"""A small zip writer for xlsx packages whose big parts are assembled from reusable pieces.

``zipfile`` can only compress a part from its whole content. The merged workbook's sheets are
made of one precompressed segment per shop (``deflate.py``), most of them unchanged since the
last render, so this writer takes a part as a list of pieces: bytes are compressed on the
spot, segments and spools are copied byte for byte, and the CRC is combined from theirs.

What the file looks like, so Excel, WPS, LibreOffice and every zip reader take it:
- deflate (method 8) for every part; the CRC and both sizes are known before the local header
  is written, so there is no data descriptor;
- names in UTF-8, flag bit 11 set only for a name that is not ASCII;
- the date and time of every part are 1980-01-01 00:00 (as XlsxWriter writes them), so the same
  content gives the same bytes;
- ZIP64 only when a size, an offset or the number of parts needs it: Excel refuses some
  archives with ZIP64 fields they did not need.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from complaint_core.errors import ComplaintDeskError
from complaint_core.merged.deflate import FINAL, Segment, Spool, compress, crc32_combine

# Beyond these a field no longer fits the classic record and goes to ZIP64; module-level so a
# test can lower them instead of writing 4 GiB.
_ZIP64_LIMIT = 0xFFFFFFFF
_ZIP64_COUNT_LIMIT = 0xFFFF

_LOCAL = struct.Struct("<4s5H3L2H")             # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")         # central directory header, 46 bytes
_END = struct.Struct("<4s4H2LH")                # end of central directory, 22 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")            # ZIP64 end of central directory, 56 bytes
_LOCATOR64 = struct.Struct("<4sLQL")            # ZIP64 end of central directory locator, 20 bytes
_DEFLATED = 8
_UTF8_NAME = 0x0800
_DOS_DATE = (0 << 9) | (1 << 5) | 1             # 1980-01-01: years since 1980, month, day
_DOS_TIME = 0                                   # 00:00:00
_VERSION = 20                                   # 2.0: deflate
_VERSION64 = 45                                 # 4.5: ZIP64
_MAX_NAME = 0xFFFF


class ZipPartError(ComplaintDeskError):
    """A part cannot be written into the workbook package (a mistake of the code that renders)."""

    def __init__(self, path: object, name: str, reason: str) -> None:
        self.path = str(path)
        self.name = name
        self.reason = reason
        super().__init__(f"{self.path}: 部件 {name!r} {reason}")


class DuplicatePart(ZipPartError):
    """Two parts with one name (ASCII case aside, as the package format compares names):
    readers disagree on which one counts, Excel calls the file corrupt."""

    def __init__(self, path: object, name: str) -> None:
        super().__init__(path, name, "重复写入，工作簿中每个部件只能有一个 (duplicate part name)")


class BadPartName(ZipPartError):
    """A name that is not a relative part path: empty, absolute, with backslashes or '..'."""

    def __init__(self, path: object, name: str, why: str) -> None:
        super().__init__(path, name, f"名称无效：{why} (bad part name)")


class ZipOutClosed(ZipPartError):
    """A part written after the package was finished (or abandoned after an error)."""

    def __init__(self, path: object, name: str) -> None:
        super().__init__(path, name, "写入时工作簿包已关闭 (the package is already closed)")


@dataclass(frozen=True, slots=True)
class _Entry:
    name: bytes
    flags: int
    crc: int
    csize: int
    size: int
    offset: int


def _check_name(where: object, name: str) -> bytes:
    if not name:
        raise BadPartName(where, name, "名称为空 (empty)")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in name.split("/")):
        raise BadPartName(where, name, "须是相对路径，不含 \\、空段、. 或 .. (must be a plain relative path)")
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_NAME:
        raise BadPartName(where, name, f"超过 {_MAX_NAME} 字节 (too long)")
    return encoded


class ZipOut:
    """Write a zip package part by part; ``close()`` (or leaving the ``with``) writes the
    central directory. After an error inside the ``with`` the central directory is NOT written,
    so a half-made package can never pass for a complete one. The merged workbook is written
    to the temporary path of ``complaint_core.atomic.atomic_write``, never over the old file."""

    def __init__(self, target: str | os.PathLike[str] | BinaryIO) -> None:
        if isinstance(target, str | os.PathLike):
            self._where: object = os.fspath(target)
            self._fh: BinaryIO = open(target, "wb")  # noqa: SIM115 (closed by close())
            self._owned = True
        else:
            self._where = getattr(target, "name", "<stream>")
            self._fh = target
            self._owned = False
        # Offsets count from where the package starts, counted as written: no seek, no tell,
        # so the target may be a pipe.
        self._offset = 0
        self._entries: list[_Entry] = []
        self._names: set[bytes] = set()
        self._closed = False

    # --- parts ---------------------------------------------------------------------------
    def write(self, name: str, data: bytes, level: int = 1) -> None:
        """An ordinary part, compressed from its whole content."""
        encoded = self._claim(name)
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush(zlib.Z_FINISH)
        with self._all_or_nothing():
            self._header(encoded, zlib.crc32(data), len(packed), len(data))
            self._put(packed)

    def write_parts(self, name: str, parts: Sequence[bytes | Segment | Spool], level: int = 1) -> None:
        """A part whose content is the concatenation of ``parts``, in order. Bytes are compressed
        here, each as its own segment; segments and spools are copied as they are."""
        encoded = self._claim(name)
        pieces = [compress((p,), level) if isinstance(p, bytes | bytearray | memoryview) else p
                  for p in parts]
        crc = size = csize = 0
        for piece in pieces:
            crc = crc32_combine(crc, piece.crc, piece.size)
            size += piece.size
            csize += len(piece.data) if isinstance(piece, Segment) else piece.csize
        with self._all_or_nothing():
            self._header(encoded, crc, csize + len(FINAL), size)
            for piece in pieces:
                if isinstance(piece, Segment):
                    self._put(piece.data)
                else:
                    piece.copy_to(self._fh)
                    self._offset += piece.csize
            self._put(FINAL)

    # --- the package ---------------------------------------------------------------------
    def close(self) -> None:
        """Write the central directory and the end records; close the file if we opened it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finish()
            self._fh.flush()
        finally:
            if self._owned:
                self._fh.close()

    def abandon(self) -> None:
        """Stop without a central directory (what an error inside ``with`` does)."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._fh.close()

    def __enter__(self) -> ZipOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()

    # --- records -------------------------------------------------------------------------
    def _claim(self, name: str) -> bytes:
        if self._closed:
            raise ZipOutClosed(self._where, name)
        encoded = _check_name(self._where, name)
        if encoded.lower() in self._names:
            raise DuplicatePart(self._where, name)
        return encoded

    @contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        # a part that broke off half-written (a full disk, a spool read error) leaves the offsets
        # wrong: nothing more may be added, and no central directory may make it look whole
        try:
            yield
        except BaseException:
            self.abandon()
            raise

    def _put(self, data: bytes) -> None:
        self._fh.write(data)
        self._offset += len(data)

    def _header(self, name: bytes, crc: int, csize: int, size: int) -> None:
        entry = _Entry(name, 0 if name.isascii() else _UTF8_NAME, crc, csize, size, self._offset)
        self._names.add(name.lower())     # part names are equal regardless of ASCII case (OPC)
        big_sizes = size >= _ZIP64_LIMIT or csize >= _ZIP64_LIMIT
        # the local header carries both sizes in ZIP64 or neither (APPNOTE 4.5.3)
        extra = struct.pack("<2H2Q", 1, 16, size, csize) if big_sizes else b""
        version = _VERSION64 if big_sizes or entry.offset >= _ZIP64_LIMIT else _VERSION
        self._put(_LOCAL.pack(b"PK\x03\x04", version, entry.flags, _DEFLATED, _DOS_TIME, _DOS_DATE,
                              crc, 0xFFFFFFFF if big_sizes else csize,
                              0xFFFFFFFF if big_sizes else size, len(name), len(extra)))
        self._put(name + extra)
        self._entries.append(entry)

    def _finish(self) -> None:
        start = self._offset
        for e in self._entries:
            # the central record's ZIP64 field holds, in this order, only the values too big
            wide = [v for v in (e.size, e.csize, e.offset) if v >= _ZIP64_LIMIT]
            extra = struct.pack(f"<2H{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
            version = _VERSION64 if wide else _VERSION
            self._put(_CENTRAL.pack(
                b"PK\x01\x02", version, version, e.flags, _DEFLATED, _DOS_TIME, _DOS_DATE, e.crc,
                e.csize if e.csize < _ZIP64_LIMIT else 0xFFFFFFFF,
                e.size if e.size < _ZIP64_LIMIT else 0xFFFFFFFF,
                len(e.name), len(extra), 0, 0, 0, 0,
                e.offset if e.offset < _ZIP64_LIMIT else 0xFFFFFFFF))
            self._put(e.name + extra)
        count, cd_size, cd_start = len(self._entries), self._offset - start, start
        if count > _ZIP64_COUNT_LIMIT or cd_size >= _ZIP64_LIMIT or cd_start >= _ZIP64_LIMIT:
            end64 = self._offset
            self._put(_END64.pack(b"PK\x06\x06", _END64.size - 12, _VERSION64, _VERSION64, 0, 0,
                                  count, count, cd_size, cd_start))
            self._put(_LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1))
            count = count if count <= _ZIP64_COUNT_LIMIT else 0xFFFF
            cd_size = cd_size if cd_size < _ZIP64_LIMIT else 0xFFFFFFFF
            cd_start = cd_start if cd_start < _ZIP64_LIMIT else 0xFFFFFFFF
        self._put(_END.pack(b"PK\x05\x06", 0, 0, count, count, cd_size, cd_start, 0))
