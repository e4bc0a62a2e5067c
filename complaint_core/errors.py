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


class MergedUnreadable(ComplaintDeskError):
    """The merged workbook exists but cannot be read back (a manager is saving it right now):
    nothing is rewritten, so no manager cell can be lost; the next cycle tries again."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: 合并工作簿暂时无法读取，主管批示未能读回，本次不改写 ({reason})")


class FileNotWritable(ComplaintDeskError):
    """A file or folder we must write is read-only, or the system refused the write."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreMissing(ComplaintDeskError):
    """A command that reads the store was given one that does not exist (a typo in --state)."""

    def __init__(self, url: object) -> None:
        self.url = str(url)
        super().__init__(f"{self.url}: 存储不存在（请检查 --state / [store] url 是否写对；"
                         f"首次使用请先运行 complaint-desk sync 建立存储）")


class EmptyStoreRefused(ComplaintDeskError):
    """The store holds no complaint but the merged workbook does: rewriting it would show an
    empty workbook to the managers (a lost or mistyped store), so it is left as it is."""

    def __init__(self, path: object, rows: int) -> None:
        self.path = str(path)
        self.rows = rows
        super().__init__(f"{self.path}: 存储中没有任何投诉，而合并工作簿里有 {rows} 条；为免清空，未改写"
                         f"（请检查存储位置 --state，或删除该工作簿后重新合并）")


class FileExists(ComplaintDeskError):
    """``template`` / ``rules`` would overwrite a file that is already there."""

    def __init__(self, path: object) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: 文件已存在，未覆盖（确需覆盖请加 --force）")


class BadClock(ComplaintDeskError):
    """``--now`` is not an ISO-8601 time."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f"--now {value!r}: 不是 ISO-8601 时间，例如 2026-03-02T15:00 或 2026-03-02T15:00+08:00 "
                         f"(not an ISO-8601 time)")


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
