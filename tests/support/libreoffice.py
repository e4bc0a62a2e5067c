"""LibreOffice headless: proves a written workbook opens in a real spreadsheet program.

scripts/test.sh installs LibreOffice; soffice instances sharing a profile fight, so each
call gets its own profile dir and calls are serialised with a file lock (xdist workers).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_LOCK = Path(tempfile.gettempdir()) / "complaint-desk-soffice.lock"


def libreoffice_opens(path: Path, *, timeout: float = 120, sheet: int = 1) -> str:
    """Convert sheet ``sheet`` (1-based) of ``path`` to CSV with soffice; raise AssertionError
    with soffice's output on failure."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (soffice) is not installed: run scripts/test.sh"
    with tempfile.TemporaryDirectory() as tmp, open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        copy = Path(tmp) / f"probe{path.suffix}"
        shutil.copy2(path, copy)
        out = Path(tmp) / "out"
        # LibreOffice has no type detection for the add-in content type; name the filter.
        infilter = ["--infilter=Calc MS Excel 2007 VBA XML"] if path.suffix.lower() == ".xlam" else []
        proc = subprocess.run(
            [soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp}/profile", *infilter,
             "--convert-to", f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,{sheet}", "--outdir", str(out), str(copy)],
            capture_output=True, text=True, timeout=timeout)
        text = proc.stdout + proc.stderr
        produced = list(out.glob("*.csv")) if out.exists() else []
        assert proc.returncode == 0 and produced, f"LibreOffice could not open {path}:\n{text}"
        assert "Error" not in text, f"LibreOffice reported an error for {path}:\n{text}"
        return produced[0].read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def soffice_opens():
    return libreoffice_opens
