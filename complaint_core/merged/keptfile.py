"""The layout of what the render keeps between writes (a shop's piece, a file's 校验问题 rows, a
shop's 处罚 part, its archived rows): a pickle, with the bytes of the compressed segments in it
put after it instead of inside it.

Why: at a shop's save the other shops' rows are reused as they were compressed, and the package
is the only place they need to go. Kept apart from the pickle, they are copied from this file
into the package by the kernel (``deflate.FileSegment``), never read into memory nor written
to a spool first: at 300,000 complaints that was 130 MB written twice at every shop's save.

Layout: 24 bytes (``MAGIC``, the pickle's length, the segments' length; little-endian), the
pickle, then every segment's bytes one after another. In the pickle a segment is a call of
``_segment_at(offset, length, crc, size)``, its offset counted from the end of the pickle. A
file of another layout (an older version's plain pickle), a shorter or longer file, or a
segment outside the file is refused as a whole: the caller treats it as not kept.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from .deflate import FileSegment, Segment, copy_range

__all__ = ["MAGIC", "NotKept", "dump", "dumps", "loads", "read"]

MAGIC = b"CDkept\x00\x01"
_TOP = struct.Struct("<8sQQ")


class NotKept(ValueError):
    """A kept file that cannot be read as one (the reason says which way): a cache miss."""


def _segment_at(offset: int, length: int, crc: int, size: int) -> Any:
    # what the pickle names; only ever called through an unpacker, which gives the file
    raise pickle.UnpicklingError("a kept segment read without its file")


class _Segments:
    """The segments a pickle names, in the order their bytes go after it: those in memory, and
    those still in a file (copied from there when written, never read in whole: a piece maker
    leaves a big shop's rows in a file as it makes them, ``walk.make_piece``)."""

    def __init__(self) -> None:
        self.data: list[Segment | FileSegment] = []
        self.at = 0

    def reduce(self, segment: Segment | FileSegment) -> tuple[Any, tuple[int, int, int, int]]:
        at = self.at
        length = segment.length if isinstance(segment, FileSegment) else len(segment.data)
        self.at += length
        self.data.append(segment)
        return _segment_at, (at, length, segment.crc, segment.size)

    def write(self, fh: BinaryIO) -> int:
        total = 0
        for segment in self.data:
            if isinstance(segment, FileSegment):
                copy_range(segment.file, segment.offset, segment.length, fh)
                total += segment.length
            else:
                fh.write(segment.data)
                total += len(segment.data)
        return total


class _Packer(pickle.Pickler):
    def __init__(self, fh: BinaryIO, segments: _Segments) -> None:
        table: dict[Any, Any] = dict(copyreg.dispatch_table)
        # the pickler's own methods would make a cycle (pickler → table → pickler) that keeps
        # its memo, every object of the piece, alive until the collector runs: a daemon held
        # 20 MiB more so
        table[Segment] = segments.reduce
        table[FileSegment] = segments.reduce
        # the C pickler looks its table up when it is made: set before, never after
        self.dispatch_table = table
        super().__init__(fh, protocol=pickle.HIGHEST_PROTOCOL)


class _Unpacker(pickle.Unpickler):
    # pickle, as before this layout: only our own files, in a folder only this user may write
    # (mode 700, ``PieceCache.beside``), or the bytes our own maker process sent
    def __init__(self, head: bytes, segment: Callable[[int, int, int, int], Any]) -> None:
        super().__init__(io.BytesIO(head))
        self._segment = segment

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_segment_at":
            return self._segment
        return super().find_class(module, name)


def dump(value: Any, fh: BinaryIO) -> None:
    """Write ``value`` to ``fh`` (a new file, at its start) in this layout."""
    segments = _Segments()
    fh.write(bytes(_TOP.size))
    _Packer(fh, segments).dump(value)
    head = fh.tell() - _TOP.size
    total = segments.write(fh)
    fh.seek(0)
    fh.write(_TOP.pack(MAGIC, head, total))
    fh.seek(0, os.SEEK_END)


def dumps(value: Any) -> bytes:
    """``value`` in this layout, as bytes (what a maker sends when it could not keep it)."""
    buf = io.BytesIO()
    dump(value, buf)
    return buf.getvalue()


def _top(top: bytes, size: int, where: str) -> tuple[int, int]:
    if len(top) < _TOP.size:
        raise NotKept(f"{where}: {len(top)} bytes, not a kept file")
    magic, head, total = _TOP.unpack_from(top)
    if magic != MAGIC:
        raise NotKept(f"{where}: not a kept file of this version")
    if size != _TOP.size + head + total:
        raise NotKept(f"{where}: {size} bytes, {_TOP.size + head + total} expected (torn)")
    return head, total


def _inside(offset: int, length: int, total: int, where: str) -> None:
    if offset < 0 or length < 0 or offset + length > total:
        raise NotKept(f"{where}: a segment of {length} bytes at {offset}, outside its {total} bytes")


def loads(data: bytes, where: str = "<bytes>") -> Any:
    """What ``dumps`` made, every segment in memory."""
    head, total = _top(data[:_TOP.size], len(data), where)
    base = _TOP.size + head
    view = memoryview(data)

    def segment(offset: int, length: int, crc: int, size: int) -> Segment:
        _inside(offset, length, total, where)
        return Segment(bytes(view[base + offset:base + offset + length]), crc, size)

    return _Unpacker(data[_TOP.size:base], segment).load()


def read(fh: BinaryIO, wanted: Callable[[Any], bool], *, leave: bool) -> Any:
    """What the kept file open as ``fh`` holds, or None when ``wanted`` turns it down (before a
    byte of its segments is read). ``leave``: its segments stay in the file as ``FileSegment``
    on ``fh``, which the caller keeps open until they are copied; else they are read into memory."""
    where = str(getattr(fh, "name", "?"))
    head, total = _top(fh.read(_TOP.size), os.fstat(fh.fileno()).st_size, where)
    base = _TOP.size + head
    body = fh.read(head)

    def in_file(offset: int, length: int, crc: int, size: int) -> FileSegment:
        _inside(offset, length, total, where)
        return FileSegment(fh, base + offset, length, crc, size)

    value = _Unpacker(body, in_file).load()
    if not wanted(value):
        return None
    if leave:
        return value
    return _Unpacker(body, lambda *at: in_file(*at).read()).load()
