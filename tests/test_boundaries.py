"""Imports flow one way: core <- add-in, sync, scheduler <- CLI."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import complaint_core

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("xlwings", "watchdog", "apscheduler", "smtplib")


def test_core_imports_none_of_the_integration_libraries():
    modules = [m.name for m in pkgutil.walk_packages(complaint_core.__path__, "complaint_core.")]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print([m for m in {FORBIDDEN!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert len(modules) > 10


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_card_packages_do_not_import_each_other_or_the_cli():
    cards = {"excel_addin", "sync", "scheduler"}
    for pkg in cards:
        assert not (_imports(pkg) & (cards - {pkg}) | (_imports(pkg) & {"complaint_desk"})), pkg
    assert not _imports("complaint_core") & (cards | {"complaint_desk"})
