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
    from complaint_core.rules_book import DEFAULT, load_rules
    from scheduler.api import sheet_providers
    from sync.daemon import Daemon

    rules = load_rules(cfg["rules"]["path"]) if cfg["rules"]["path"] else DEFAULT
    providers = sheet_providers(rules)
    daemon = Daemon([Path(s) for s in sources], Path(cfg["store"]["merged"]), cfg["store"]["url"],
                    poll=sync["poll"], poll_sources=[Path(s) for s in poll_sources], providers=providers,
                    rescan_interval=cfg["sync"]["rescan_minutes"] * 60,
                    empty_grace=timedelta(hours=cfg["sync"]["empty_folder_hours"]))
    daemon.start()
    atexit.register(daemon.stop)
    return daemon
