"""Which files in a shop folder are complaint workbooks, and which are noise or copies.

Excel leaves ``~$name.xlsx`` owner files, LibreOffice ``.~lock.name.xlsx#``, Excel saves via
an extension-less temp name, our own atomic writer uses ``.~cd-tmp-*``; sync clients make
"conflicted copy" files that must be shown to a manager, never merged a second time.

A conflict copy is recognised only by the names sync clients really give them (docs/sync.md
lists each); any other name is a shop's own file and is merged: ``投诉登记-Q4.xlsx`` beside
``投诉登记.xlsx`` is the fourth quarter, not a copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from complaint_core.atomic import TEMP_PREFIX
from complaint_core.feedback import FEEDBACK_DIR
from complaint_core.safety import real_path

# Every format python-calamine reads (what a file *is* is decided from its content when read);
# .csv is listed so that 来源 tells the shop to save it as .xlsx instead of ignoring it.
WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".et", ".ods", ".xlsb", ".csv"})

# Names a sync client gives the copy it keeps beside the original, whatever else is there.
_COPY_PATTERNS = (
    # Dropbox "投诉 (Wang's conflicted copy 2026-11-20).xlsx", Nextcloud/ownCloud desktop
    # "投诉 (conflicted copy 2026-11-20 101500).xlsx" (also with the user's name inside)
    re.compile(r"\([^()]*\bconflicted copy\b[^()]*\)", re.I),
    # Dropbox and Nextcloud in Chinese: "投诉（王某的冲突副本 2026-11-20）.xlsx", "…冲突的副本…"
    re.compile(r"冲突(?:的)?副本"),
    # Dropbox name clashes: "(Case Conflict)", "(Unicode Encoding Conflict)"
    re.compile(r"\((?:Case|Unicode Encoding) Conflict\)", re.I),
    # ownCloud before 2.5: "投诉_conflict-20261120-101500.xlsx"
    re.compile(r"_conflict-\d{8}-\d{6}$"),
    # Synology Drive: "投诉_SHOP-PC_Nov-20-1015-2026_CaseConflict_1.xlsx"; Cloud Station "…_Conflict"
    re.compile(r"_[A-Za-z]*Conflict(?:_\d+)?$"),
)
# OneDrive "投诉-DESKTOP-4K2JQ1B.xlsx" (also "…-1"): a Windows computer name is 1-15 letters,
# digits and hyphens, never only digits. Period and version labels a shop gives its files are
# not computer names.
_COMPUTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,14}")
_LABEL = re.compile(r"(?:q[1-4]|h[12]|v\d+|\d{4}(?:q[1-4]|h[12]|\d{2})?|\d{1,2}月?|final|new|old|bak|backup)",
                    re.I)
# WPS cloud sync keeps the other version as "投诉-副本.xlsx" (also "-副本(1)")
_WPS = re.compile(r"^(?P<orig>.+)-副本(?:\s*[（(]\d+[）)])?$")


def is_dir(path: Path) -> bool:
    """``Path.is_dir`` that says False, not raises, when the look itself is refused (a folder on
    a share that can be listed but not entered): one such folder stopped every merge."""
    try:
        return path.is_dir()
    except OSError:
        return False


def is_file(path: Path) -> bool:
    """``Path.is_file``, False when the look is refused (see ``is_dir``)."""
    try:
        return path.is_file()
    except OSError:
        return False


def path_text(path: Path) -> str:
    """``path`` as the store, the log and 来源 write it. A name that is not UTF-8 (a share
    mounted without a UTF-8 character set shows a GBK name so) is written with its odd bytes
    as ``\\xNN``: the text always encodes, and names no other shop's file (Windows allows no
    backslash in a file name)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return text


def is_ignored(path: Path, *, out: Path | None = None) -> bool:
    name = path.name
    if out is not None and real_path(path) == real_path(out):
        return True  # the daemon's own merged workbook
    if path.parent.name == FEEDBACK_DIR:
        return True  # our feedback for the shop (sync/feedback.py), never a shop workbook
    if name.startswith(("~$", ".~lock.", TEMP_PREFIX, ".")) or name.endswith("#"):
        return True
    return path.suffix.lower() not in WORKBOOK_SUFFIXES


def conflict_client(path: Path) -> str | None:
    """Which sync client made ``path`` as a conflict copy (None: a shop's own file)."""
    stem = path.stem
    names = ("Dropbox/Nextcloud/ownCloud", "Dropbox", "Dropbox", "ownCloud", "Synology Drive")
    for name, pattern in zip(names, _COPY_PATTERNS, strict=True):
        if pattern.search(stem):
            return name
    m = _WPS.match(stem)
    if m and _beside(path, m.group("orig")):
        return "WPS 云同步"
    # OneDrive: the original must sit beside the copy, named without the computer name
    for at in [i for i, ch in enumerate(stem) if ch == "-" and i > 0]:
        pc = re.sub(r"-\d+$", "", stem[at + 1:])
        if _COMPUTER.fullmatch(pc) and not pc.isdigit() and not _LABEL.fullmatch(pc) and \
                _beside(path, stem[:at]):
            return "OneDrive"
    return None


def is_conflict_copy(path: Path) -> bool:
    return conflict_client(path) is not None


def _beside(path: Path, stem: str) -> bool:
    """Whether the original a sync client's copy would be named after lies beside ``path``. A
    folder that can be listed but not entered (r-- on a share) refuses the look: no original
    then, and reading the file says why (before, the refusal stopped every merge)."""
    return is_file(path.parent / f"{stem}{path.suffix}")


def list_sources(folders: list[Path], *, out: Path | None = None) -> list[Path]:
    """Every workbook under ``folders`` (folders that cannot be listed add nothing)."""
    return sorted(p for folder in folders for p in scan_folder(folder, out=out)[0])


def scan_folder(folder: Path, *, out: Path | None = None) -> tuple[list[Path], dict[Path, str]]:
    """(workbooks under ``folder``, folder -> reason for each folder that could not be listed).

    A folder that cannot be listed (no permission, a share gone mid-walk) is reported, never
    taken for an empty one: its files' rows must not be marked deleted. A pipe or device with
    a workbook's name is listed too, so 来源 says why it is refused.
    """
    found: list[Path] = []
    unreadable: dict[Path, str] = {}

    def failed(exc: OSError) -> None:
        unreadable[Path(exc.filename or folder)] = exc.strerror or str(exc)

    for root, dirs, files in os.walk(folder, onerror=failed):
        dirs[:] = [d for d in dirs if not d.startswith((".", "~$")) and d != "_反馈"]
        for name in files:
            p = Path(root) / name
            if not is_ignored(p, out=out):
                found.append(p)
    return found, unreadable
