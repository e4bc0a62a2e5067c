"""What only the CLI may do: run the sync watcher and the scheduler in one process.

The cards never import each other; ``complaint-desk run`` passes ``SYNC`` (the scheduler's
``SyncHook``) to the scheduler, which calls ``start`` with its APScheduler instance and the
loaded config, or ``once`` for ``run --once``.
"""

from __future__ import annotations

import atexit
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from apscheduler.schedulers.base import BaseScheduler

    from scheduler.config import Config
    from scheduler.daemon import OnceMerge
    from sync.daemon import Daemon
    from sync.pipeline import MergeReport


def scan_soon(sched: BaseScheduler) -> Callable[[MergeReport], None]:
    """A callback that has the scheduler scan as soon as its worker is free (``scheduler.daemon
    .scan_soon``): a complaint that must be escalated (预警上报) alerts the managers at the first
    scan after it is merged, not at the next interval."""
    def soon(_report: MergeReport) -> None:
        from scheduler.daemon import scan_soon as ask

        ask(sched)

    return soon


def start_watcher(sched: BaseScheduler, cfg: Config) -> Daemon | None:
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
                    empty_grace=timedelta(hours=cfg["sync"]["empty_folder_hours"]),
                    on_read=scan_soon(sched))
    daemon.start()
    atexit.register(daemon.stop)
    return daemon


def merge_once(cfg: Config, now: datetime) -> OnceMerge | None:
    """`run --once`: read the [sync] folders into the store once (the scheduler rewrites the merged
    workbook right after its scan, so it is written once per cycle, not twice)."""
    sync = cfg.get("sync", {})
    folders = list(dict.fromkeys([*(sync.get("sources") or []), *(sync.get("poll_sources") or [])]))
    if not folders:
        return None
    from complaint_core.store import open_store
    from scheduler.daemon import OnceMerge
    from sync.pipeline import scan

    store = open_store(cfg["store"]["url"])
    try:
        report = scan(store, [Path(f) for f in folders], out=Path(cfg["store"]["merged"]), now=now)
    finally:
        store.engine.dispose()
    # a folder it cannot see (a typo in the config, a share not mounted) is said too: Task
    # Scheduler's run otherwise read nothing from it and said nothing
    problems = [f"{folder}: {why}" for folder, why in report.blind.items()]
    problems += [f"读取失败 {r.path}: {r.reason}" for r in report.failed]
    problems += [f"冲突副本（未合并）{r.path}" for r in report.skipped if r.outcome == "conflict_copy"]
    return OnceMerge(len(report.read), problems)


class _Sync:
    """``scheduler.daemon.SyncHook``: the watcher beside the daemon, one merge for ``run --once``."""

    def __init__(self) -> None:
        self.watcher: Daemon | None = None

    def start(self, sched: BaseScheduler, cfg: Config) -> Daemon | None:
        self.watcher = start_watcher(sched, cfg)
        return self.watcher

    def once(self, cfg: Config, now: datetime) -> OnceMerge | None:
        return merge_once(cfg, now)

    def alive(self) -> bool:
        return self.watcher is None or self.watcher.alive()


SYNC = _Sync()
