"""SIGKILL at random moments never leaves a shop with a broken or half-updated workbook.

Runs ``bench.crash.crash_runs`` (real CLI child processes, real files, seeded kill times).
COMPLAINT_DESK_CRASH_RUNS sets the number of kills (default 6 keeps this test ~30 s);
``python bench/crash.py --runs 200`` is the full campaign.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.crash import crash_runs


def test_sigkill_during_suggest_and_mark_keeps_old_or_new(tmp_path: Path) -> None:
    runs = int(os.environ.get("COMPLAINT_DESK_CRASH_RUNS", "6"))
    result = crash_runs(runs, rows=200, seed=20261123, work=tmp_path)
    bad = {k: v for k, v in result.items() if k.startswith("bad")}
    assert not bad, result
    assert result["runs"] == runs
    assert result.get("old kept", 0) + result.get("new written", 0) == runs, result
