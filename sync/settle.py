"""When a burst of file events has ended: the daemon's quiet-period rule.

A shop's save must reach the merged workbook within seconds, but a file still being written must
not be read half-way. Excel, WPS and LibreOffice save by writing a temporary file and renaming it
onto the workbook, so the workbook appears whole in one step; a copy over SMB, a sync client
downloading, or a program writing in place grow the file for a while instead. A zip package is
written front to back and ends with its central directory, so a file whose directory is present,
points at itself and finds each part where it says is finished; anything else (half a file, an
.xls, a folder-level event) waits for the full quiet period. The read that follows still looks
at each file twice when it changed within the last fifth of a second, and a file that cannot be
read yet is retried.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .files import is_dir

_EOCD = b"PK\x05\x06"            # end of central directory record
_CENTRAL = b"PK\x01\x02"         # a central directory entry
_LOCAL = b"PK\x03\x04"           # a part's own header, where the directory says it starts
_MAX_DIRECTORY = 1 << 20          # a shop's workbook lists a few dozen parts, not a megabyte of them
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF


def is_complete_package(path: Path) -> bool:
    """True when ``path`` is a zip (xlsx, xlsm, ods, et) whose central directory is whole.

    Reads the last 64 KiB at most, the directory, and 4 bytes where each part starts: cheap
    enough to ask every fifth of a second. A zip64 file (over 4 GiB, never a shop's workbook)
    answers False and waits the full quiet period.
    """
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            if size < _EOCD_SIZE:
                return False
            tail_len = min(size, _EOCD_SIZE + _MAX_COMMENT)
            fh.seek(size - tail_len)
            tail = fh.read(tail_len)
            at = tail.rfind(_EOCD)
            # the record must end the file, give or take its own comment
            while at >= 0:
                if at + _EOCD_SIZE <= len(tail):
                    comment_len = struct.unpack_from("<H", tail, at + 20)[0]
                    if at + _EOCD_SIZE + comment_len == len(tail):
                        break
                at = tail.rfind(_EOCD, 0, at)
            if at < 0:
                return False
            cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
            if cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF:
                return False
            eocd_pos = size - tail_len + at
            if cd_offset + cd_size != eocd_pos or cd_size == 0:
                return False
            if cd_size > _MAX_DIRECTORY:
                return False
            fh.seek(cd_offset)
            directory = fh.read(cd_size)
            entries = struct.unpack_from("<H", tail, at + 10)[0]
            return _parts_in_place(fh, directory, entries)
    except OSError:
        return False   # gone again (mid-rename) or locked: wait the full quiet period


def _parts_in_place(fh: BinaryIO, directory: bytes, entries: int) -> bool:
    """Every part the directory lists starts where it says: a download that fills a file out
    of order (the end first) has zeros there until it is done."""
    at = 0
    for _ in range(entries):
        if directory[at:at + 4] != _CENTRAL or at + 46 > len(directory):
            return False
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", directory, at + 28)
        offset = struct.unpack_from("<I", directory, at + 42)[0]
        fh.seek(offset)
        if fh.read(4) != _LOCAL:
            return False
        at += 46 + name_len + extra_len + comment_len
    return at == len(directory)


def quiet_enough(quiet: float, paths: Iterable[Path], *, quick: float, settle: float) -> bool:
    """Has the folder been quiet long enough to read what changed?

    ``quiet`` is the time since the last event. After ``settle`` seconds, always; after
    ``quick`` seconds, when every file an event named is a finished package. A folder named
    beside files (the "folder modified" that comes with each file saved in it) says nothing
    more; a folder alone (an observer restarted, a share that came back) waits the full period.
    """
    if quiet >= settle:
        return True
    if quiet < quick:
        return False
    files = [p for p in paths if not is_dir(p)]
    return bool(files) and all(is_complete_package(p) for p in files)
