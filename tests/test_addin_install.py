from pathlib import Path

import pytest

from excel_addin.install import AddinInstallError, install, plan


def test_windows_plan():
    p = plan("win32", {"APPDATA": r"C:\Users\li\AppData\Roaming", "USERPROFILE": r"C:\Users\li"},
             Path("/home/li"), r"C:\ComplaintDesk\.venv\Scripts\python.exe")
    assert p.addin_target.parts[-2:] == ("XLSTART", "ComplaintDesk.xlam")
    assert p.config_file.name == "complaintdesk.conf" and ".complaintdesk" in str(p.config_file)
    assert '"INTERPRETER_WIN","C:\\ComplaintDesk\\.venv\\Scripts\\python.exe"' in p.config_text
    assert '"ADD_WORKBOOK_TO_PYTHONPATH","False"' in p.config_text
    assert not p.run_xlwings_runpython_install


def test_macos_plan():
    p = plan("darwin", {}, Path("/Users/li"), "/Users/li/cd/.venv/bin/python")
    assert "Startup/Excel" in str(p.addin_target) and p.run_xlwings_runpython_install
    assert '"INTERPRETER_MAC","/Users/li/cd/.venv/bin/python"' in p.config_text


def test_linux_refuses_clearly():
    with pytest.raises(AddinInstallError, match="Windows 或 macOS"):
        plan("linux", {}, Path("/root"), "/usr/bin/python3")
    with pytest.raises(AddinInstallError):
        install()


def test_macos_runpython_install_command_uses_the_xlwings_cli():
    from xlwings.cli import main

    from excel_addin.install import RUNPYTHON_INSTALL

    compile(RUNPYTHON_INSTALL, "<runpython>", "exec")
    assert callable(main) and "'runpython', 'install'" in RUNPYTHON_INSTALL
