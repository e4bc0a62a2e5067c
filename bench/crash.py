"""SIGKILL the writers at random moments and check the shop never loses its workbook.

    python bench/crash.py [--runs 200] [--rows 1000] [--seed 1]

Each run copies a shop workbook, starts ``complaint-desk suggest`` or ``validate --mark`` on
it in a child process, kills it with SIGKILL after a random delay (seeded) spread over the
command's whole duration, then checks: the zip is intact (``testzip``), python-calamine
reads every sheet, the complaint sheet is exactly the old or exactly the new content (never
a mix), and re-running the command gives exactly the clean result (nothing filled twice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import shop_file  # noqa: E402

NOW = "2026-11-20 10:00"
COMMANDS = {"suggest": ["suggest", "--now", NOW], "mark": ["validate", "--mark", "--now", NOW]}


def _cli(args: list[str], path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "complaint_desk", *args, str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def state(path: Path) -> str:
    """A digest of every sheet's cells; raises when the file is not a whole workbook."""
    from python_calamine import CalamineWorkbook

    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
        if bad is not None:
            raise ValueError(f"corrupt member {bad}")
    wb = CalamineWorkbook.from_path(str(path))
    h = hashlib.sha256()
    for name in wb.sheet_names:
        h.update(name.encode())
        h.update(json.dumps(wb.get_sheet_by_name(name).to_python(), default=str).encode())
    return h.hexdigest()


def _clean_run(src: Path, work: Path, cmd: str) -> tuple[str, float]:
    p = work / f"clean-{cmd}.xlsx"
    shutil.copy(src, p)
    t = time.perf_counter()
    assert _cli(COMMANDS[cmd], p).wait() in (0, 1)
    return state(p), time.perf_counter() - t


def crash_runs(runs: int, *, rows: int = 1000, seed: int = 1, work: Path | None = None) -> dict:
    """Kill ``runs`` times; returns counts of outcomes (any 'bad' count is a failure)."""
    work = work or Path(tempfile.mkdtemp(prefix="cd-crash-"))
    src = shop_file(rows, shop="S001", seed=1)
    old = state(src)
    clean = {c: _clean_run(src, work, c) for c in COMMANDS}
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    for i in range(runs):
        cmd = ("suggest", "mark")[i % 2]
        new, duration = clean[cmd]
        path = work / f"run{i}.xlsx"
        shutil.copy(src, path)
        proc = _cli(COMMANDS[cmd], path)
        time.sleep(rng.uniform(0, duration * 1.1))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            got = state(path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            tally[f"bad: unreadable after kill ({type(exc).__name__})"] += 1
            continue
        tally["old kept" if got == old else "new written" if got == new else "bad: mixed content"] += 1
        if _cli(COMMANDS[cmd], path).wait() not in (0, 1) or state(path) != new:
            tally["bad: re-run differs from a clean run"] += 1
        path.unlink()
        for debris in work.glob(".~cd-tmp-*"):  # a killed writer's temp file, never the target
            tally["temp file left by the kill"] += 1
            debris.unlink()
    shutil.rmtree(work, ignore_errors=True)
    tally["runs"] = runs
    return dict(tally)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args(argv)
    t = time.perf_counter()
    result = crash_runs(ns.runs, rows=ns.rows, seed=ns.seed)
    for key, n in sorted(result.items()):
        print(f"{key}: {n}")
    print(f"elapsed {time.perf_counter() - t:.0f} s")
    return 1 if any(k.startswith("bad") for k in result) else 0


if __name__ == "__main__":
    sys.exit(main())
