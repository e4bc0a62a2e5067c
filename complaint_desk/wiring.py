"""What only the CLI may do: run the sync watcher and the scheduler in one process.

The cards never import each other; ``complaint-desk run`` passes this hook to the
scheduler, which calls it with its APScheduler instance and the loaded config.
"""

from __future__ import annotations

import atexit
from datetime import timedelta
from pathlib import Path
from typing import Any


def start_watcher(sched: Any, cfg: dict[str, dict[str, Any]]) -> Any:
    """Start the shop-folder watcher when the config names folders; merge on start and on a timer."""
    sync = cfg.get("sync", {})
    sources = sync.get("sources") or []
    poll_sources = sync.get("poll_sources") or []
    if not sources and not poll_sources:
        return None
    from sync.daemon import Daemon

    daemon = Daemon([Path(s) for s in sources], Path(cfg["store"]["merged"]), cfg["store"]["url"],
                    poll=sync["poll"], poll_sources=[Path(s) for s in poll_sources],
                    rescan_interval=cfg["sync"]["rescan_minutes"] * 60, feedback=sync.get("feedback", False),
                    empty_grace=timedelta(hours=cfg["sync"]["empty_folder_hours"]))
    daemon.start()
    atexit.register(daemon.stop)
    return daemon


def merge_once(cfg: dict[str, dict[str, Any]], now: Any) -> dict[str, Any] | None:
    """`run --once`: read the [sync] folders into the store once (the scheduler rewrites the merged
    workbook right after its scan, so it is written once per cycle, not twice)."""
    sync = cfg.get("sync", {})
    folders = list(dict.fromkeys([*(sync.get("sources") or []), *(sync.get("poll_sources") or [])]))
    if not folders:
        return None
    from complaint_core.store import open_store
    from sync.pipeline import scan

    store = open_store(cfg["store"]["url"])
    try:
        report = scan(store, [Path(f) for f in folders], out=Path(cfg["store"]["merged"]), now=now)
    finally:
        store.engine.dispose()
    problems = [f"读取失败 {r.path}: {r.reason}" for r in report.failed]
    problems += [f"冲突副本（未合并）{r.path}" for r in report.skipped if r.outcome == "conflict_copy"]
    return {"read": len(report.read), "problems": problems}


# `run --once` asks the same hook for a single merge instead of a watcher.
start_watcher.once = merge_once  # type: ignore[attr-defined]
