"""One exception class per failure, each carrying the bad value in its message.

Every message names the file (and sheet and cell where there is one) and the reason, in
Chinese first, so the CLI can print it as one line and exit 2 without a traceback.
"""

from __future__ import annotations


class ComplaintDeskError(Exception):
    """Base class: anything the product reports to a person instead of crashing."""


class UnreadableWorkbook(ComplaintDeskError):
    """The file is not a workbook we can open: corrupt zip, xls, xlsb, encrypted, bomb, hang."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NotAComplaintWorkbook(UnreadableWorkbook):
    """A readable workbook with no complaint table in it."""


class UnsafeWorkbook(UnreadableWorkbook):
    """Refused before parsing: zip bomb, XML entity bomb, too many parts."""


class WorkbookLocked(ComplaintDeskError):
    """The target is held open (Excel on Windows) and could not be replaced after retries."""

    def __init__(self, path: object, attempts: int) -> None:
        self.path = str(path)
        self.attempts = attempts
        super().__init__(f"{self.path}: 文件被占用（可能在 Excel 中打开），重试 {attempts} 次后仍无法替换")


class BadSetting(ComplaintDeskError):
    """A rule or setting a person typed is wrong: names the file, sheet, cell and the value."""

    def __init__(self, where: str, value: object, reason: str) -> None:
        self.where = where
        self.value = value
        self.reason = reason
        super().__init__(f"{where}: {reason}（值：{value!r}）")


class StoreLocked(ComplaintDeskError):
    """Another daemon already runs against this store."""


class FileNotWritable(ComplaintDeskError):
    """A file or folder we must write is read-only, or the system refused the write."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SourceFolderUnavailable(ComplaintDeskError):
    """A shop folder given to ``sync`` is not there (a typo, an unmounted share) or not a folder."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreUnavailable(ComplaintDeskError):
    """The store cannot be opened or written: unreachable server, read-only file, unknown URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"存储 {url}: {reason}")
