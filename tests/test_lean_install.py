"""`pip install complaint-desk` (no [addin] extra) runs the CLI, the merge and the scheduler.

Building a fresh venv per test run is too slow, so the child Python below makes the add-in's
packages unimportable (as on a server installed without the extra) and runs the real CLI.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("complaint_core", "complaint_desk", "excel_addin", "sync", "scheduler")
ADDIN_ONLY = {"xlwings", "pyopenvba"}

# Runs before the CLI in the child: any import of the add-in's packages fails as if absent.
BLOCK = """
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"xlwings", "pyopenvba"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NotInstalled())
from complaint_desk.cli import main
try:
    main(sys.argv[1:], prog_name="complaint-desk")
finally:
    assert not {"xlwings", "pyopenvba"} & set(sys.modules), "an add-in package was imported"
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_demo_runs_without_the_addin_packages(tmp_path: Path) -> None:
    result = _cli("demo", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "汇总 Merged" in result.stdout and "Traceback" not in result.stderr
    assert (tmp_path / "demo" / "merged" / "门店投诉汇总.xlsx").stat().st_size > 0
    assert list((tmp_path / "demo" / "outbox").glob("*.eml"))


def test_addin_commands_say_in_one_line_to_install_the_extra(tmp_path: Path) -> None:
    for args in (["addin", "build", "--out", str(tmp_path / "a.xlam")], ["addin", "install"]):
        result = _cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and 'pip install "complaint-desk[addin]"' in lines[0], result.stderr
        assert not (tmp_path / "a.xlam").exists()
    # help still works without the extra: it is how a shop finds out what to install
    assert _cli("addin", "build", "--help", cwd=tmp_path).returncode == 0


def _imports(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PACKAGES)


def _dist(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_imported_package_is_declared_and_the_addin_ones_only_in_the_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_dist(r) for r in project["dependencies"]}
    addin = {_dist(r) for r in project["optional-dependencies"]["addin"]}
    assert addin == ADDIN_ONLY and not core & ADDIN_ONLY
    assert "complaint-desk[addin,postgres]" in project["optional-dependencies"]["test"]
    dists = importlib.metadata.packages_distributions()
    for package in PACKAGES:
        for module in _imports(package):
            declared = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
            where = core | addin if package == "excel_addin" else core
            assert declared & where, f"{package} imports {module}, not declared in pyproject.toml"
    # an exact pin only where a file is taken from that exact wheel (the xlwings VBA runtime)
    # (a platform marker after ";" compares with == too: only the version part counts)
    pinned = [r for r in project["dependencies"] + project["optional-dependencies"]["addin"] if "==" in r.split(";")[0]]
    assert pinned == ["xlwings==0.37.8"]
