"""Compressed pieces of a zip part that can be reused as they are, in any order.

When one shop of a hundred saves, the merged workbook's big sheets change only in that shop's
rows. Compressing the rows of each shop on their own, as a deflate *segment* that ends on a
byte boundary and refers to nothing before it, lets the next render copy the 99 unchanged
shops' bytes straight into the new file: no re-encoding of XML, no re-deflating. A zip part is
then ``segment + segment + ... + FINAL``, and its CRC follows from the segments' CRCs and
lengths (``crc32_combine``) without reading the rows again.

Why it is valid deflate: every segment comes from a fresh compressor (so it never points back
into bytes it did not see) and ends with a full flush (an empty stored block, which leaves the
stream byte-aligned and not finished). ``FINAL`` is an empty last block that finishes it.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

# An empty block with the "last block" bit set, fixed Huffman codes: BFINAL=1, BTYPE=01, then
# the 7-bit end-of-block code 0000000, padded to the byte. What zlib writes for Z_FINISH after
# a full flush.
FINAL = b"\x03\x00"
_WBITS = -15          # raw deflate: the zip container carries the CRC and lengths itself
_BLOCK = 1 << 20      # copy spooled bytes 1 MiB at a time: a sheet never sits in memory


@dataclass(frozen=True, slots=True)
class Segment:
    """Raw deflate bytes that decompress to ``size`` bytes whose CRC-32 is ``crc``; byte-aligned,
    not final, and independent of whatever precedes it in the stream."""

    data: bytes
    crc: int
    size: int


@dataclass(frozen=True, slots=True)
class FileSegment:
    """A segment left in the file that keeps it: ``length`` bytes at ``offset`` of ``file`` (open
    for reading), decompressing to ``size`` bytes whose CRC-32 is ``crc``.

    A shop whose piece still holds is laid from where the last write kept its rows: a spool
    copies those bytes from that file into the package at the end, so they are neither read
    into memory nor written to the spool first (at 300,000 complaints that was 130 MB written
    twice at every shop's save). Whoever opened ``file`` keeps it open until the package is
    written (``merged/pieces.py``); a file replaced meanwhile is still read as it was opened.
    """

    file: BinaryIO
    offset: int
    length: int
    crc: int
    size: int

    def read(self) -> Segment:
        """The same segment, its bytes read into memory."""
        self.file.seek(self.offset)
        data = self.file.read(self.length)
        if len(data) != self.length:
            raise OSError(f"{getattr(self.file, 'name', '?')}: {len(data)} bytes at {self.offset}, "
                          f"{self.length} expected (file shorter than it was)")
        return Segment(data, self.crc, self.size)


def _works(lib: Any) -> bool:
    """Whether ``lib`` (a zlib-like module) makes segments as this module needs them: two
    segments and FINAL inflate with the standard zlib to what went in, with zlib's CRC."""
    parts = [b"<row><c>" + bytes(range(32, 127)) * 40 + b"</c></row>", b"\x00\xff" * 3000 + b"<row/>" * 99]
    try:
        stream = b""
        for part in parts:
            packer = lib.compressobj(1, lib.DEFLATED, _WBITS)
            stream += packer.compress(part) + packer.flush(lib.Z_FULL_FLUSH)
        whole = b"".join(parts)
        return bool(zlib.decompress(stream + FINAL, _WBITS) == whole and lib.crc32(parts[1], lib.crc32(parts[0]))
                    == zlib.crc32(whole))
    except Exception:  # noqa: BLE001 - any doubt: the standard zlib
        return False


def _deflater() -> Any:
    """The deflate the workbook's big sheets are compressed with. ISA-L (the ``isal`` package)
    writes the same deflate format about four times as fast as zlib at level 1, with the same
    size: a first merge of 100 shops compresses 300 MB of XML. Used only where its wheel is
    installed and it passes ``_works``; the standard zlib otherwise."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib if _works(isal_zlib) else zlib


DEFLATE: Any = _deflater()


def _compressed(chunks: Iterable[bytes], level: int) -> Iterator[tuple[bytes, bytes]]:
    """(input chunk, compressed output) pairs; the last pair is (b"", the full flush)."""
    # ISA-L's levels (0-3) are not zlib's: it only takes the big sheets' level 1
    lib = DEFLATE if level == 1 else zlib
    packer = lib.compressobj(level, lib.DEFLATED, _WBITS)
    for chunk in chunks:
        yield chunk, packer.compress(chunk)
    yield b"", packer.flush(lib.Z_FULL_FLUSH)


def compress(chunks: Iterable[bytes], level: int = 1) -> Segment:
    """One segment from the concatenation of ``chunks`` (e.g. the rows of one shop)."""
    out: list[bytes] = []
    crc = size = 0
    crc32 = DEFLATE.crc32
    for chunk, packed in _compressed(chunks, level):
        crc = crc32(chunk, crc)
        size += len(chunk)
        out.append(packed)
    return Segment(b"".join(out), crc, size)


# --- CRC-32 of a concatenation -------------------------------------------------------------
# CRC-32 is linear over GF(2): appending n zero bytes to a message maps its CRC register through
# a fixed 32x32 bit matrix M(n). Then crc(A + B) = M(len B) . crc(A)  xor  crc(B). A matrix is
# kept as its 32 columns (column i = the image of bit i); M(2^(k+1)) = M(2^k) squared, so any
# length is a product of at most 64 of those. Each M(2^k) is made once, on first need, and kept
# as four 256-entry tables (one per byte of the register), so applying it is four look-ups: a
# render combines a hundred segments' CRCs per sheet.
_POLY = 0xEDB88320    # zlib's CRC-32 polynomial, bit-reversed


def _apply(matrix: tuple[int, ...], vector: int) -> int:
    result = 0
    bit = 0
    while vector:
        if vector & 1:
            result ^= matrix[bit]
        vector >>= 1
        bit += 1
    return result


def _square(matrix: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_apply(matrix, column) for column in matrix)


def _byte_tables(matrix: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    tables = []
    for first in (0, 8, 16, 24):
        columns = matrix[first:first + 8]
        table = [0] * 256
        for byte in range(1, 256):
            low = byte & -byte            # linear: the image of a byte is the xor of its bits' images
            table[byte] = table[byte ^ low] ^ columns[low.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)


def _first_matrix() -> tuple[int, ...]:
    # one zero bit shifts the register right; the bit falling out feeds the polynomial back in
    op = (_POLY, *(1 << (i - 1) for i in range(1, 32)))
    for _ in range(3):                    # 1 bit -> 2 -> 4 -> 8 bits: M(1 byte)
        op = _square(op)
    return op


_MATRICES: list[tuple[int, ...]] = []                 # M(2^k bytes)
_TABLES: list[tuple[tuple[int, ...], ...]] = []       # the same, as byte tables


def _zero_bytes(k: int) -> tuple[tuple[int, ...], ...]:
    while len(_TABLES) <= k:
        matrix = _square(_MATRICES[-1]) if _MATRICES else _first_matrix()
        _MATRICES.append(matrix)
        _TABLES.append(_byte_tables(matrix))
    return _TABLES[k]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """``zlib.crc32(a + b)`` from ``crc1 = zlib.crc32(a)``, ``crc2 = zlib.crc32(b)``, ``len2 = len(b)``."""
    if len2 < 0:
        raise ValueError(f"len2 must not be negative: {len2}")
    crc = crc1 & 0xFFFFFFFF
    k = 0
    while len2 and crc:
        if len2 & 1:
            t0, t1, t2, t3 = _zero_bytes(k)
            crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24]
        len2 >>= 1
        k += 1
    return crc ^ (crc2 & 0xFFFFFFFF)


def _kernel_copy(src: BinaryIO, offset: int, dst: BinaryIO, size: int) -> int:
    """Copy ``size`` bytes of ``src`` from ``offset`` to ``dst`` at its position inside the kernel,
    where both are files on disk (``os.sendfile``, Linux): how many bytes were copied, 0 where
    it cannot be done (a pipe or memory as ``dst``, Windows, macOS); the caller copies the rest
    block by block.

    The merged workbook's 60 MB of spooled sheets went through Python 1 MiB at a time: 0.15 s
    at the end of every write, while the other core had nothing left to do (issue 17)."""
    sendfile = getattr(os, "sendfile", None)
    if sendfile is None or not sys.platform.startswith("linux"):
        return 0
    try:
        out, inp = dst.fileno(), src.fileno()
        if not stat.S_ISREG(os.fstat(out).st_mode):
            return 0
        dst.flush()            # what ``dst`` holds in its buffer goes first
        start = dst.tell()     # where its descriptor writes next
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0               # no descriptor (memory), or one that cannot seek
    done = 0
    try:
        while done < size:
            sent = sendfile(out, inp, offset + done, size - done)
            if sent == 0:      # the source is shorter than it counted: the block copy finds it out
                break
            done += sent
    except OSError:
        pass                   # a file system that refuses it: the rest block by block
    if done:
        dst.seek(start + done)   # a buffered file keeps its own idea of where it is
    return done


def copy_range(src: BinaryIO, offset: int, size: int, dst: BinaryIO) -> None:
    """Write ``size`` bytes of ``src`` from ``offset`` to ``dst`` (in the kernel where it can);
    OSError when ``src`` holds fewer."""
    done = _kernel_copy(src, offset, dst, size)
    src.seek(offset + done)
    while done < size:
        block = src.read(min(_BLOCK, size - done))
        if not block:
            raise OSError(f"{getattr(src, 'name', '?')}: ends {size - done} bytes before the "
                          f"{size} bytes at {offset} it should hold")
        dst.write(block)
        done += len(block)


class Spool:
    """The compressed content of one zip part, built segment by segment.

    A sheet of a million rows is ~60 MB compressed: what is compressed here goes to a temporary
    file as it is made, and is copied into the zip from there, so the render's memory does not
    grow with the sheet. A ``FileSegment`` is not copied in at all: the spool notes where its
    bytes are and copies them from there when the part is written.
    """

    def __init__(self, *, level: int = 1, dir: str | None = None) -> None:
        self.level = level
        self._file: BinaryIO = tempfile.TemporaryFile(dir=dir)  # noqa: SIM115 (closed by close())
        self._own = 0                                   # bytes in ``_file``
        self._runs: list[list[Any]] = []                # [file, offset, length], in the part's order
        self._crc = 0
        self._size = 0
        self._csize = 0

    @property
    def crc(self) -> int:
        """CRC-32 of everything added so far, uncompressed."""
        return self._crc

    @property
    def size(self) -> int:
        """Uncompressed length of everything added so far."""
        return self._size

    @property
    def csize(self) -> int:
        """Compressed length (what ``copy_to`` writes)."""
        return self._csize

    def add(self, segment: Segment | FileSegment) -> None:
        """Append a segment as it is (e.g. an unchanged shop's rows from the last render)."""
        if isinstance(segment, FileSegment):
            self._run(segment.file, segment.offset, segment.length)
            length = segment.length
        else:
            start = self._own
            try:
                self._file.write(segment.data)
            except BaseException:
                self._back_to(start)
                raise
            length = len(segment.data)
            self._own += length
            self._run(self._file, start, length)
        self._crc = crc32_combine(self._crc, segment.crc, segment.size)
        self._size += segment.size
        self._csize += length

    def add_chunks(self, chunks: Iterable[bytes]) -> None:
        """Compress ``chunks`` as one new segment and append it, streaming: neither the chunks
        nor their compressed bytes are held together in memory. If the chunks fail half-way
        (a store read breaks off), the spool is left as it was before the call."""
        crc = size = 0
        start = self._own
        try:
            for chunk, packed in _compressed(chunks, self.level):
                crc = DEFLATE.crc32(chunk, crc)
                size += len(chunk)
                self._file.write(packed)
                self._own += len(packed)
        except BaseException:
            self._back_to(start)
            raise
        self._run(self._file, start, self._own - start)
        self._csize += self._own - start
        self._crc = crc32_combine(self._crc, crc, size)
        self._size += size

    def _run(self, file: BinaryIO, offset: int, length: int) -> None:
        last = self._runs[-1] if self._runs else None
        if last is not None and last[0] is file and last[1] + last[2] == offset:
            last[2] += length    # a shop's chunks lie one after another in its file: one copy
        elif length:
            self._runs.append([file, offset, length])

    def _back_to(self, own: int) -> None:
        # a write that failed half-way (a full disk) must not leave bytes the counters don't know
        self._file.seek(own)
        self._file.truncate()
        self._own = own

    def copy_to(self, fh: BinaryIO) -> None:
        """Write the compressed bytes to ``fh``; the spool can still be added to and copied again."""
        self._file.flush()
        try:
            for file, offset, length in self._runs:
                copy_range(file, offset, length, fh)
        finally:
            self._file.seek(self._own)

    def close(self) -> None:
        self._file.close()
        self._runs = []

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
