"""Build ``ComplaintDesk.xlam`` from text sources kept in the repo, on any OS, without Excel.

Starts from the add-in template inside the pinned xlwings wheel (its ``xlwings`` VBA module
is the filled runtime; the git repo's copy is empty), renames the project, makes the
runtime's config lookup safe, replaces the ribbon callback module with our one dispatcher
(``vba/*.bas``) and the ribbon with ``ribbon.xml``. VBA is edited with pyOpenVBA; the zip
parts with zipfile. LibreOffice must never re-save the result: it rewrites the VBA project.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from complaint_core.atomic import atomic_write
from complaint_core.errors import ComplaintDeskError

HERE = Path(__file__).resolve().parent
PROJECT = "complaintdesk"
PINNED_XLWINGS = "0.37.8"
DEFAULT_NAME = "ComplaintDesk.xlam"
OLD_RIBBON_MODULE = "RibbonMyAddin"

# (old text, new text, expected count): each must match exactly, so an xlwings upgrade that
# changes the runtime fails the build loudly instead of shipping an unsafe add-in.
RUNTIME_PATCHES: tuple[tuple[str, str, int], ...] = (
    ('Public Const PROJECT_NAME As String = "myaddin"', f'Public Const PROJECT_NAME As String = "{PROJECT}"', 1),
    # A shop workbook must not be able to choose the interpreter through a config sheet...
    ('If SheetExists(ActiveWorkbook, PROJECT_NAME & ".conf") = True Then',
     "If False Then ' Complaint Desk: workbook config sheets are ignored", 1),
    # ...nor through a .conf file lying next to it in a shared folder.
    ("If FileExists(GetDirectoryConfigFilePath()) = True Then",
     "If False Then ' Complaint Desk: folder config files are ignored", 1),
    # Never put the shared folder on sys.path: a stray openpyxl.py there would run.
    ('GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")', 'GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "false")', 2),
)


class AddinBuildError(ComplaintDeskError):
    """The add-in could not be built from the pinned xlwings template."""


def xlwings_dir() -> Path:
    import xlwings

    if xlwings.__version__ != PINNED_XLWINGS:
        raise AddinBuildError(f"xlwings {xlwings.__version__} is installed but the add-in is pinned to "
                              f"{PINNED_XLWINGS}: pip install xlwings=={PINNED_XLWINGS}")
    return Path(xlwings.__file__).resolve().parent


def bas_sources() -> dict[str, str]:
    """Our VBA modules as text: module name -> source (from ``vba/*.bas``)."""
    return {p.stem: p.read_text(encoding="cp1252") for p in sorted((HERE / "vba").glob("*.bas"))}


def patched_runtime(source: str) -> str:
    for old, new, count in RUNTIME_PATCHES:
        found = source.count(old)
        if found != count:
            raise AddinBuildError(f"xlwings runtime patch expected {count}x, found {found}x: {old!r}")
        source = source.replace(old, new)
    return source


def build_addin(out: str | Path | None = None) -> Path:
    try:
        from pyopenvba import ExcelFile
    except ImportError:
        raise AddinBuildError("构建加载项需要 pyOpenVBA：pip install \"complaint-desk[addin]\"，"
                              "或用 --file 安装已构建的 ComplaintDesk.xlam "
                              "(building the add-in needs pyopenvba)") from None
    target = Path(out or HERE.parent / "dist" / DEFAULT_NAME)
    template = xlwings_dir() / "quickstart_addin_ribbon.xlam"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "addin.xlam"
        shutil.copy2(template, work)
        book = ExcelFile(str(work))
        runtime = book.get_module("xlwings")
        if len(runtime.splitlines()) < 1000:
            raise AddinBuildError("the xlwings template's VBA runtime is empty: use the released wheel")
        book.set_module("xlwings", patched_runtime(runtime))
        for name, source in bas_sources().items():
            if OLD_RIBBON_MODULE in book.module_names() and name not in book.module_names():
                book.vba_project().rename_module(OLD_RIBBON_MODULE, name)
            book.set_module(name, source)
        book.save()
        book.close()
        _repack(work, target)
    return target


def _repack(src: Path, target: Path) -> None:
    ribbon = (HERE / "ribbon.xml").read_bytes()
    with atomic_write(target) as tmp, zipfile.ZipFile(src) as zin, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "customUI/customUI.xml":
                data = ribbon
            elif item.filename in ("xl/workbook.xml", "xl/sharedStrings.xml"):
                data = data.replace(b"_myaddin.conf", f"_{PROJECT}.conf".encode())
            zout.writestr(item, data)
