"""Structural checks of the built add-in, since Excel itself is not here."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from excel_addin.actions import HANDLERS
from excel_addin.build import (
    RUNTIME_PATCHES,
    bas_sources,
    build_addin,
    patched_runtime,
    xlwings_dir,
)
from tests.support.libreoffice import libreoffice_opens

NS = {"ui": "http://schemas.microsoft.com/office/2006/01/customui"}


@pytest.fixture(scope="module")
def xlam(tmp_path_factory) -> Path:
    return build_addin(tmp_path_factory.mktemp("addin") / "ComplaintDesk.xlam")


def _macros(path: Path) -> dict[str, str]:
    from oletools.olevba import VBA_Parser

    parser = VBA_Parser(str(path))
    try:
        return {name.rsplit(".", 1)[0]: code for _f, _s, name, code in parser.extract_macros()}
    finally:
        parser.close()


def _norm(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if not line.startswith("Attribute VB_")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_is_an_addin_package_with_a_ribbon(xlam):
    with zipfile.ZipFile(xlam) as zf:
        types = zf.read("[Content_Types].xml").decode()
        rels = zf.read("_rels/.rels").decode()
        ui = zf.read("customUI/customUI.xml")
        workbook = zf.read("xl/workbook.xml").decode()
    assert "application/vnd.ms-excel.addin.macroEnabled.main+xml" in types
    # The 2006/01 customUI namespace pairs with the ui/extensibility relationship (2006 or 2007 type).
    rel = re.search(r'<Relationship [^>]*Target="/?customUI/customUI.xml"[^>]*>', rels).group(0)
    assert re.search(r'Type="http://schemas.microsoft.com/office/200[67]/relationships/ui/extensibility"', rel)
    tab = ElementTree.fromstring(ui).find(".//ui:tab", NS)
    assert tab.get("label") == "投诉处理"
    assert "_complaintdesk.conf" in workbook and "myaddin" not in workbook


def test_vba_read_back_equals_the_bas_sources(xlam):
    macros = _macros(xlam)
    for name, source in bas_sources().items():
        assert _norm(macros[name]) == _norm(source), name
    runtime = (xlwings_dir() / "xlwings_custom_addin.bas").read_text(encoding="cp1252", errors="replace")
    assert _norm(macros["xlwings"]) == _norm(patched_runtime(runtime.replace("\r\n", "\n")))
    assert "RibbonMyAddin" not in macros


def test_runtime_is_made_safe(xlam):
    code = _macros(xlam)["xlwings"]
    assert 'PROJECT_NAME As String = "complaintdesk"' in code
    assert 'GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")' not in code
    assert "SheetExists(ActiveWorkbook, PROJECT_NAME" not in code
    assert len(RUNTIME_PATCHES) == 4


def test_every_button_callback_exists_and_every_id_has_a_handler(xlam):
    with zipfile.ZipFile(xlam) as zf:
        buttons = ElementTree.fromstring(zf.read("customUI/customUI.xml")).findall(".//ui:button", NS)
    macros = _macros(xlam)
    ids = set()
    for b in buttons:
        module, sub = b.get("onAction").split(".")
        assert re.search(rf"^Sub {sub}\(control As IRibbonControl\)", macros[module], re.M), b.get("onAction")
        ids.add(b.get("id"))
    assert ids == set(HANDLERS)
    assert {b.get("label") for b in buttons} == {"校验", "填写建议", "新建投诉", "说明"}


def test_vba_stays_in_codepage_1252():
    for source in bas_sources().values():
        source.encode("cp1252")
        assert "dispatch('" in source or "RunPython" not in source


def test_opens_in_libreoffice(xlam):
    libreoffice_opens(xlam)  # on a copy: LibreOffice must never re-save the add-in itself
