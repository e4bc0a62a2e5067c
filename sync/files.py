"""Which files in a shop folder are complaint workbooks, and which are noise or copies.

Excel leaves ``~$name.xlsx`` owner files, LibreOffice ``.~lock.name.xlsx#``, Excel saves via
an extension-less temp name, our own atomic writer uses ``.~cd-tmp-*``; sync clients make
"conflicted copy" files that must be shown to a manager, never merged a second time.
"""

from __future__ import annotations

import re
from pathlib import Path

from complaint_core.atomic import TEMP_PREFIX
from complaint_core.feedback import FEEDBACK_DIR


def is_ignored(path: Path, *, out: Path | None = None) -> bool:
    name = path.name
    if out is not None and path.resolve() == out.resolve():
        return True  # the daemon's own merged workbook
    if path.parent.name == FEEDBACK_DIR:
        return True  # our feedback for the shop (sync/feedback.py), never a shop workbook
    if name.startswith(("~$", ".~lock.", TEMP_PREFIX, ".")) or name.endswith("#"):
        return True
    return path.suffix.lower() != ".xlsx"


def is_conflict_copy(path: Path) -> bool:
    stem = path.stem
    if re.search(r"(conflicted copy|冲突副本|\(conflict)", stem, re.IGNORECASE):
        return True
    if re.search(r"(-|\s)copy(\s*\(\d+\))?$|副本$", stem, re.IGNORECASE):
        return True
    # OneDrive keeps both versions as "name-PCNAME.xlsx" next to "name.xlsx": only a copy
    # when the original sits beside it (a shop may well call its file "投诉-SH01.xlsx")
    m = re.search(r"^(.+)-[A-Za-z][A-Za-z0-9-]{1,14}$", stem)
    return m is not None and (path.parent / f"{m.group(1)}{path.suffix}").exists()


def list_sources(folders: list[Path], *, out: Path | None = None) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in folder.rglob("*.xlsx"):
            if p.is_file() and not is_ignored(p, out=out):
                found.append(p)
    return sorted(found)
