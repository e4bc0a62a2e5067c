"""The daemon's jobs in a real SQLAlchemyJobStore, catch-up after the machine was off, the lock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

import scheduler.api  # noqa: F401
from complaint_core.errors import BadSetting, StoreLocked
from complaint_core.store import open_store
from scheduler.api import scan_once
from scheduler.config import KEYS, load_config
from scheduler.daemon import configure, make_scheduler
from scheduler.lock import DaemonLock
from tests.test_mail_outbox import RULES, fill


def write_config(tmp_path, extra=""):
    p = tmp_path / "desk.toml"
    p.write_text(f'[store]\nurl = "state.db"\n[scan]\ninterval_minutes = 10\n{extra}', encoding="utf-8")
    return p


def test_fixed_ids_survive_restart_without_duplicates(tmp_path):
    cfg = write_config(tmp_path)
    url = load_config(cfg)["store"]["url"]
    for _ in range(2):   # start, stop, start again on the same database
        sched = make_scheduler(url, blocking=False)
        sched.start(paused=True)
        ids = configure(sched, cfg)
        got = sorted(j.id for j in sched.get_jobs())
        sched.shutdown(wait=False)
    assert got == sorted(ids) == sorted(["scan", "send", "remind-0900", "remind-1500"])
    sched = make_scheduler(url, blocking=False)
    sched.start(paused=True)
    job = sched.get_job("scan")
    assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 3600
    sched.shutdown(wait=False)


def test_catch_up_after_machine_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    early = scan_once(open_store(url), now=datetime(2026, 3, 2, 10, 30), rules=RULES)
    assert early.overdue == 0 and early.new_penalties == 0
    # Off for six days; the first run afterwards sees every breach of the week, once.
    later = scan_once(open_store(url), now=datetime(2026, 3, 2, 10, 30) + timedelta(days=6), rules=RULES)
    assert later.overdue == 4 and later.new_penalties == 2 * (1 + 1 + 4)
    again = scan_once(open_store(url), now=datetime(2026, 3, 8, 11, 0), rules=RULES)
    assert again.new_penalties == 0


def test_lock_refuses_second_copy(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with DaemonLock(store), pytest.raises(StoreLocked):
        DaemonLock(open_store(f"sqlite:///{tmp_path / 'state.db'}")).acquire()
    with DaemonLock(store):
        pass


def test_config_errors_and_docs_list_every_key(tmp_path):
    with pytest.raises(BadSetting, match=r"\[mail\] prot"):
        load_config(write_config(tmp_path, "[mail]\nprot = 25\n"))
    with pytest.raises(BadSetting, match=r"\[mail\] port"):
        load_config(write_config(tmp_path, '[mail]\nport = "25"\n'))
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    for k in KEYS:
        assert f"`{k.section}.{k.name}`" in doc, k


def test_run_starts_the_watcher_from_the_sync_section(tmp_path):
    """`complaint-desk run` wires the sync daemon in through the CLI's hook (cards stay apart)."""
    import time

    from complaint_desk.wiring import start_watcher
    from scheduler.config import load_config
    from tests.support.workbooks import NOW, sample_rows, write_rows

    shop = tmp_path / "SH01"
    shop.mkdir()
    write_rows(shop / "a.xlsx", sample_rows(5, seed=1, now=NOW), shop="SH01")
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(f'[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[sync]\nsources = ["{shop}"]\n',
                        encoding="utf-8")
    cfg = load_config(cfg_path)
    assert cfg["sync"]["sources"] == [str(shop)]
    daemon = start_watcher(None, cfg)
    merged = tmp_path / "merged.xlsx"
    deadline = time.monotonic() + 60
    try:
        while not merged.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
    assert merged.exists()
    with pytest.raises(BadSetting, match="sources"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[store]\nurl = "s.db"\nmerged = "m.xlsx"\n[sync]\nsources = [1]\n', encoding="utf-8")
        load_config(bad)
