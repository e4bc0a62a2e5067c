"""`bench/run.py --quick` runs every scenario and prints a row with numbers for each."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER_ROW = re.compile(r"^\| [^|]+ \| [1-9]\d* \| \d+\.\d{3} \| \d+\.\d{3}-\d+\.\d{3} \| [\d,]+ \| \d+ \|")


def test_quick_bench_prints_every_scenario_with_numbers() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sections = re.split(r"^## ", proc.stdout, flags=re.M)[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert [t[:3] for t in titles] == ["(1)", "(2)", "(2b", "(3)", "(4)", "(4b", "(5)", "(5b", "(5c", "(6)", "(7a", "(7)"], titles
    for section in sections:
        measured = [ln for ln in section.splitlines() if NUMBER_ROW.match(ln)]
        assert measured, f"no measured row in: {section}"
    # the stages of a merge are each measured, in CPU-seconds, as is the whole merge beside them
    stages = next(s for s in sections if s.startswith("(2b)"))
    ours = [ln for ln in stages.splitlines() if ln.startswith("| ours:")]
    assert len(ours) == 8 and all(NUMBER_ROW.match(ln) for ln in ours), stages
    # save-to-merged is measured through the command a chain runs too, not only the library
    latency = next(s for s in sections if s.startswith("(4)"))
    for command in ("complaint-desk sync --watch", "complaint-desk run"):
        assert any(command in ln and NUMBER_ROW.match(ln) for ln in latency.splitlines()), latency
    # …and on a chain written from the template, beside a full merge of that chain
    for what in ("shops written from the template", "a full merge of those template shops",
                 "after a manager's save of the merged workbook", "4 years of history",
                 "a complaint of an archived year", "a full merge of the chain with history"):
        assert any(what in ln and NUMBER_ROW.match(ln) for ln in latency.splitlines()), latency
    # peak memory is measured on a chain with years of history too (its yearly archives written)
    memory = next(s for s in sections if s.startswith("(7a)"))
    assert sum("4 years of history" in ln and bool(NUMBER_ROW.match(ln)) for ln in memory.splitlines()) == 2, memory
    # the read scenario measured our own reader, not only the baselines
    assert any("ours: read_workbook" in ln and NUMBER_ROW.match(ln)
               for ln in sections[0].splitlines()), sections[0]


def test_only_runs_one_scenario() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only",
                           "scan"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("\n## ") == 1 and "(5) overdue scan" in proc.stdout
