"""Refuse hostile or foreign files before any parser touches them.

A shop folder is shared: anything can land in it. An xlsx is a zip of XML, so a few
hundred bytes can claim gigabytes (zip bomb) or expand entities without end (XML bomb).
We look only at the zip directory and small prefixes, so refusing costs milliseconds.
"""

from __future__ import annotations

import encodings.cp437  # noqa: F401 - zipfile decodes part names with it; loaded once, not per file
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import UnreadableWorkbook, UnsafeWorkbook

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1 << 30          # 1 GiB of XML is ~1M rows x 36 columns; beyond is hostile
MAX_RATIO = 200                           # real sheet XML compresses 5-20x
RATIO_MIN_SIZE = 50 << 20                 # small parts may compress well; only big ones matter
PREFIX = 64 << 10
HEAD = 4 << 10
# What may come before an XML document's first element: a byte-order mark, white space, the
# XML declaration and other processing instructions, comments; a DTD is only allowed there.
_PROLOG_RE = re.compile(rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]+|<\?.*?\?>|<!--.*?-->)*", re.S)
_ELEMENT_RE = re.compile(rb"<[^!?]")
_DATE1904_RE = re.compile(rb"<(?:\w+:)?workbookPr\b[^>]*\bdate1904\s*=\s*[\"'](1|true)[\"']", re.I)


@dataclass(frozen=True, slots=True)
class XlsxFacts:
    """What the check saw on its way through the zip, so the reader need not open it again."""

    date1904: bool = False      # dates count from 1904 (old Mac Excel), not from 1900


def check_xlsx(path: str | os.PathLike[str]) -> XlsxFacts:
    """Raise UnreadableWorkbook/UnsafeWorkbook unless ``path`` looks like a sane xlsx/xlsm."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise UnreadableWorkbook(p, "文件不存在 (file not found)") from None
    except OSError as exc:
        raise UnreadableWorkbook(p, f"无法打开文件 (cannot open: {exc.strerror or exc})") from None
    if size == 0:
        raise UnreadableWorkbook(p, "空文件 (empty file)")
    if head.startswith(OLE_MAGIC):
        raise UnreadableWorkbook(p, _ole_reason(p))
    if not head.startswith(b"PK"):
        raise UnreadableWorkbook(p, "不是 xlsx 工作簿 (not an xlsx workbook: no zip signature)")
    _check_entry_count(p, size)
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            _check_members(p, infos)
            names = {i.filename.replace("\\", "/").lower() for i in infos}
            if "xl/workbook.bin" in names:
                raise UnreadableWorkbook(p, "xlsb 二进制工作簿不受支持，请另存为 .xlsx (xlsb is not supported)")
            if "content.xml" in names and "mimetype" in names:
                raise UnreadableWorkbook(p, "ODS 表格不受支持，请另存为 .xlsx (ods is not supported)")
            if "xl/workbook.xml" not in names:
                raise UnreadableWorkbook(p, "zip 中没有 xl/workbook.xml，不是 Excel 工作簿 (no workbook part)")
            date1904 = False
            for info in infos:
                if info.filename.lower().endswith((".xml", ".rels")):
                    if info.filename.replace("\\", "/").lower() == "xl/workbook.xml":
                        prefix = _check_xml_prefix(p, zf, info, whole=True)
                        date1904 = date1904 or bool(_DATE1904_RE.search(prefix))
                    else:
                        _check_xml_prefix(p, zf, info)
    except zipfile.BadZipFile as exc:
        raise UnreadableWorkbook(p, f"zip 文件已损坏或不完整 (corrupt zip: {exc})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        raise UnreadableWorkbook(p, f"zip 文件无法读取 (unreadable zip: {exc})") from None
    return XlsxFacts(date1904=date1904)


def _check_entry_count(p: Path, size: int) -> None:
    # The end-of-directory record states the member count: refuse a huge directory before
    # zipfile builds an object per entry.
    with p.open("rb") as fh:
        fh.seek(max(0, size - (1 << 16) - 22))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and at + 12 <= len(tail):
        count = int.from_bytes(tail[at + 10:at + 12], "little")
        if count > MAX_MEMBERS and count != 0xFFFF:
            raise UnsafeWorkbook(p, f"zip 内文件过多（{count} 个），已拒绝 (too many parts)")


def _ole_reason(p: Path) -> str:
    # An encrypted xlsx is an OLE container holding an EncryptionInfo stream; names are UTF-16.
    try:
        with p.open("rb") as fh:
            blob = fh.read(1 << 20)
    except OSError:
        blob = b""
    if "EncryptionInfo".encode("utf-16-le") in blob or "EncryptedPackage".encode("utf-16-le") in blob:
        return "工作簿有密码保护（已加密），请去掉密码后另存为 .xlsx (encrypted workbook)"
    return "这是旧版 .xls (Excel 97-2003) 文件，请另存为 .xlsx (legacy .xls is not supported)"


def _check_members(p: Path, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise UnsafeWorkbook(p, f"zip 内文件过多（{len(infos)} 个），已拒绝 (too many parts)")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > RATIO_MIN_SIZE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeWorkbook(
                p, f"疑似 zip 炸弹：{info.filename} 压缩比 {info.file_size // max(info.compress_size, 1)}:1 "
                "(zip bomb refused)")
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise UnsafeWorkbook(p, f"解压后过大（{total >> 20} MiB），疑似 zip 炸弹 (zip bomb refused)")


def _check_xml_prefix(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, whole: bool = False) -> bytes:
    # A part up to 64 KiB is read to its end, so zipfile checks its CRC: python-calamine does
    # not for the parts it stops reading at the closing tag (shared strings, styles), and a
    # flipped byte that still inflates would otherwise change a customer's text unnoticed.
    whole = whole or info.file_size <= PREFIX
    with zf.open(info) as fh:
        prefix = fh.read(PREFIX if whole else HEAD)
        if not whole and not _root_begins(prefix):
            # An unusual start (long comments, another encoding): look at 64 KiB as a whole.
            prefix += fh.read(PREFIX - len(prefix))
    # Real xlsx parts never carry a DTD; entity definitions are how XML bombs expand.
    if b"<!DOCTYPE" in prefix or b"<!ENTITY" in prefix:
        raise UnsafeWorkbook(p, f"{info.filename} 含有 DTD/实体定义，疑似 XML 炸弹 (XML entity bomb refused)")
    return prefix


def _root_begins(head: bytes) -> bool:
    """Whether the document's first element starts in ``head`` after a prolog with no DTD.

    A DTD (where entities are declared) may only stand before the first element, so once
    that element is seen the rest of a big sheet need not be inflated to be sure.
    """
    at = _PROLOG_RE.match(head).end()    # type: ignore[union-attr]  # it matches even b""
    return _ELEMENT_RE.match(head, at) is not None
