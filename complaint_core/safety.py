"""Refuse hostile or foreign files before any parser touches them, and bound what it may allocate.

A shop folder is shared: anything can land in it. An xlsx is a zip of XML, so a few
hundred bytes can claim gigabytes (zip bomb) or expand entities without end (XML bomb).
We look only at the zip directory and small prefixes, so refusing costs milliseconds.

What a file *is* comes from its first bytes, never from its name: WPS saves ``.et`` files
that are xls or xlsx inside, NAS shares keep ``.XLSX``, and a system's "Excel export" is
often a CSV or a web page named ``.xls``. A pipe or device named ``*.xlsx`` is refused from
``stat`` alone: opening it to read would wait for a writer forever.
"""

from __future__ import annotations

import encodings.cp437  # noqa: F401 - zipfile decodes part names with it; loaded once, not per file
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnreadableWorkbook, UnsafeWorkbook


def real_path(path: Path | str) -> Path:
    """``path`` with its links followed, as far as they go: never an error. ``Path.resolve``
    raises on a link that points at itself (a loop a shop PC or a NAS can leave in a shared
    folder, or a mistyped setting), and that one entry stopped every merge."""
    return Path(os.path.realpath(path))


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1 << 30          # 1 GiB of XML is ~1M rows x 36 columns; beyond is hostile
# A file this big cannot be a workbook we would read (its parts alone would pass the line above):
# it is refused from its size, before the daemon reads all of it to hash it (a 3 GiB backup
# named .xlsx took seconds each time it changed)
MAX_FILE_BYTES = MAX_TOTAL_UNCOMPRESSED
MAX_RATIO = 200                           # real sheet XML compresses 5-20x
RATIO_MIN_SIZE = 50 << 20                 # small parts may compress well; only big ones matter
PREFIX = 64 << 10
HEAD = 4 << 10
# What may come before an XML document's first element: a byte-order mark, white space, the
# XML declaration and other processing instructions, comments; a DTD is only allowed there.
_PROLOG_RE = re.compile(rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]+|<\?.*?\?>|<!--.*?-->)*", re.S)
_ELEMENT_RE = re.compile(rb"<[^!?]")
_DATE1904_RE = re.compile(rb"<(?:\w+:)?workbookPr\b[^>]*\bdate1904\s*=\s*[\"'](1|true)[\"']", re.I)
ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"

# the formats python-calamine reads, as sniffed from the content
KINDS = ("xlsx", "xlsb", "xls", "ods")


@dataclass(frozen=True, slots=True)
class WorkbookFacts:
    """What the check saw on its way through the file, so the reader need not look again."""

    kind: str = "xlsx"          # xlsx (also xlsm, an .et saved as xlsx) | xlsb | xls (also .et) | ods
    date1904: bool = False      # dates count from 1904 (old Mac Excel), not from 1900
    size: int = 0
    parts: tuple[str, ...] = field(default=())   # the zip's part names (zip formats only)


XlsxFacts = WorkbookFacts   # the name earlier callers import


def regular_file(p: Path) -> int:
    """The size of ``p`` once ``stat`` has shown it is a plain file; one line otherwise."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UnreadableWorkbook(p, "文件不存在 (file not found)") from None
    except OSError as exc:
        raise UnreadableWorkbook(p, f"无法访问文件 (cannot access: {exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        what = "文件夹" if stat.S_ISDIR(st.st_mode) else "管道或设备"
        raise UnreadableWorkbook(p, f"这是{what}，不是普通文件，已拒绝 (not a regular file)")
    return st.st_size


def _head(p: Path, n: int = 8192) -> bytes:
    try:
        # O_NONBLOCK: if a pipe took the file's place since the stat, open returns at once
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise UnreadableWorkbook(p, "文件不存在 (file not found)") from None
    except OSError as exc:
        raise UnreadableWorkbook(p, f"无法打开文件 (cannot open: {exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableWorkbook(p, "这是管道或设备，不是普通文件，已拒绝 (not a regular file)")
        return os.read(fd, n)
    except OSError as exc:
        raise UnreadableWorkbook(p, f"无法读取文件 (cannot read: {exc.strerror or exc})") from None
    finally:
        os.close(fd)


def kind_hint(p: Path) -> str:
    """A word for what ``p`` looks like, for a message after a parser crashed on it."""
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        head = b""
    if head.startswith(OLE_MAGIC):
        return ".xls/.et"
    return p.suffix.lower() or "工作簿"


def check_workbook(path: str | os.PathLike[str]) -> WorkbookFacts:
    """Raise UnreadableWorkbook/UnsafeWorkbook unless ``path`` is a sane workbook of a kind we read."""
    p = Path(path)
    size = regular_file(p)
    if size == 0:
        raise UnreadableWorkbook(p, "空文件（可能保存未完成）(empty file: 0 bytes)")
    head = _head(p)
    if head.startswith(OLE_MAGIC):
        reason = _ole_refusal(p)
        if reason:
            raise UnreadableWorkbook(p, reason)
        return WorkbookFacts(kind="xls", size=size)
    if not head.startswith(b"PK"):
        raise UnreadableWorkbook(p, _text_or_unknown(p, head))
    return _check_zip(p, size)


def check_xlsx(path: str | os.PathLike[str]) -> WorkbookFacts:
    """``check_workbook`` for the places that edit with openpyxl, which reads only xlsx/xlsm."""
    facts = check_workbook(path)
    if facts.kind != "xlsx":
        raise UnreadableWorkbook(path, f"这是 {facts.kind} 文件，此处只支持 .xlsx/.xlsm，请另存为 .xlsx "
                                       f"({facts.kind} is not supported here: save as .xlsx)")
    return facts


def _text_or_unknown(p: Path, head: bytes) -> str:
    if b"\0" not in head:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if text.startswith((b"<html", b"<!doctype html", b"<table", b"<?xml", b"<")):
            return ("这是网页或 XML 格式的表格（某些系统导出的“xls”），不是工作簿：请在 Excel/WPS 中打开后另存为 .xlsx "
                    "(HTML/XML export, not a workbook: save as .xlsx)")
        return ("这是 CSV/文本文件，不是工作簿：请在 Excel/WPS 中打开后另存为 .xlsx "
                "(CSV/text file, not a workbook: save it as .xlsx)")
    return "不是 xlsx/xls/ods 工作簿，无法识别的文件格式 (not a workbook: unknown format)"


def _check_zip(p: Path, size: int) -> WorkbookFacts:
    _check_entry_count(p, size)
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            _check_members(p, infos)
            names = {i.filename.replace("\\", "/").lower() for i in infos}
            if "xl/workbook.xml" in names:
                kind = "xlsx"
            elif "xl/workbook.bin" in names:
                kind = "xlsb"
            elif "content.xml" in names and "mimetype" in names:
                kind = "ods"
                if not zf.read("mimetype").strip().startswith(ODS_MIME):
                    raise UnreadableWorkbook(p, "这是 OpenDocument 文本或演示文稿，不是表格 (not an ODS spreadsheet)")
            else:
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
        raise UnreadableWorkbook(p, f"zip 文件已损坏或不完整 (corrupt or truncated zip: {exc})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        raise UnreadableWorkbook(p, f"zip 文件无法读取 (unreadable zip: {exc})") from None
    return WorkbookFacts(kind=kind, date1904=date1904, size=size, parts=tuple(i.filename for i in infos))


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


def _ole_refusal(p: Path) -> str | None:
    """Why an OLE file (xls, WPS et, or an encrypted xlsx) cannot be read; None when it can."""
    # An encrypted xlsx is an OLE container holding an EncryptionInfo stream; names are UTF-16.
    try:
        with p.open("rb") as fh:
            blob = fh.read(1 << 20)
    except OSError:
        blob = b""
    if "EncryptionInfo".encode("utf-16-le") in blob or "EncryptedPackage".encode("utf-16-le") in blob:
        return "工作簿有密码保护（已加密），请去掉密码后另存为 .xlsx (encrypted workbook)"
    return None


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
