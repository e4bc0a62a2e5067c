"""SIGKILL the merge daemon (`complaint-desk run` with [sync]) while shops keep saving.

Real child processes, real folders watched by the native observer, real SQLite, the scheduler's
scans and .eml outbox in the same process. ``bench.crash.daemon_campaign`` does the work;
``python bench/crash.py --daemon --runs 200`` is the full campaign. Half the kills wait for a
rewrite of the merged workbook to start, so some land inside it.
"""

from __future__ import annotations

from pathlib import Path

from bench.crash import daemon_campaign


def test_daemon_killed_during_merges_loses_and_doubles_nothing(tmp_path: Path) -> None:
    result = daemon_campaign(12, seed=20261123, max_rows=40, life=3.0, work=tmp_path)
    bad = {k: n for k, n in result.items() if k.startswith("bad")}
    assert not bad, result
    assert result["kills"] == 12
    # the kills hit the moments that matter: inside a rewrite of the merged workbook
    assert result.get("killed mid-rewrite (temp file left)", 0) >= 1, result
    # the shops really saved, a manager typed into the merged workbook (every cell typed last is
    # shown at the end, or a "bad" entry says which), and the scans really ran between the kills
    assert result["shop saves"] >= 5 and result["final rows"] >= 10 and result["manager saves"] >= 1, result
    assert result["penalty events"] > 0 and result["mails written (.eml)"] > 0, result
