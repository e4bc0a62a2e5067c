"""Install the add-in for the current user on Windows or macOS.

Path logic is pure (computed from the given environment) so it is tested on Linux; only
``install`` touches the machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from complaint_core.errors import ComplaintDeskError

from .build import DEFAULT_NAME, PROJECT, build_addin


class AddinInstallError(ComplaintDeskError):
    """The add-in cannot be installed here (no Excel on this platform, or a path is missing)."""


RUNPYTHON_INSTALL = ("import sys; from xlwings.cli import main; "
                     "sys.argv = ['xlwings', 'runpython', 'install']; main()")


@dataclass(frozen=True)
class InstallPlan:
    addin_target: Path      # Excel's start-up folder: add-ins there load with Excel
    config_file: Path       # per-user config read by the VBA runtime
    config_text: str
    run_xlwings_runpython_install: bool


def plan(platform: str, env: dict[str, str], home: Path, interpreter: str) -> InstallPlan:
    if platform.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        xlstart = Path(appdata) / "Microsoft" / "Excel" / "XLSTART"
        profile = Path(env.get("USERPROFILE") or str(home))
        config = profile / f".{PROJECT}" / f"{PROJECT}.conf"
        interp_key, runpython = "INTERPRETER_WIN", False
    elif platform == "darwin":
        xlstart = home / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel"
        config = home / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / f"{PROJECT}.conf"
        interp_key, runpython = "INTERPRETER_MAC", True
    else:
        raise AddinInstallError("Excel 加载项只能安装在 Windows 或 macOS 上（本机没有 Excel） "
                                "(the add-in installs on Windows or macOS only)")
    # xlwings' config file format: one "KEY","value" pair per line.
    text = "\n".join(f'"{k}","{v}"' for k, v in (
        (interp_key, interpreter), ("ADD_WORKBOOK_TO_PYTHONPATH", "False"), ("SHOW CONSOLE", "False"))) + "\n"
    return InstallPlan(xlstart / DEFAULT_NAME, config, text, runpython)


def install(*, addin: Path | None = None) -> InstallPlan:
    import os

    p = plan(sys.platform, dict(os.environ), Path.home(), sys.executable)
    source = addin or build_addin()
    p.addin_target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, p.addin_target)
    p.config_file.parent.mkdir(parents=True, exist_ok=True)
    # VBA's ``Input #`` reads the file in the ANSI code page (cp936 on a Chinese Windows), so
    # an interpreter under C:\Users\李\ must be written in it, not in UTF-8.
    encoding = "mbcs" if sys.platform.startswith("win") else "utf-8"
    p.config_file.write_text(p.config_text, encoding=encoding)
    if p.run_xlwings_runpython_install:
        # xlwings has no ``python -m xlwings``; call its CLI entry point with this interpreter.
        subprocess.run([sys.executable, "-c", RUNPYTHON_INSTALL], check=True)
    return p
