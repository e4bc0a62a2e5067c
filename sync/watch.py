"""Watching folders: handlers only enqueue, a supervisor keeps the observers alive.

Events are hints. Excel saves via temp file + delete + rename, macOS coalesces events,
Windows drops them on overflow and a vanished share kills the emitter thread, so the daemon
also rescans on a schedule; here we just turn any event into "this folder is dirty".
"""

from __future__ import annotations

import errno
import logging
import queue
import time
from collections.abc import Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from complaint_core.safety import real_path

from .files import is_dir

log = logging.getLogger("complaint_desk.sync")

# The system's own limits on native watching (Linux inotify: 128 watchers per user by default,
# and a number of watched folders). A chain of more shop folders than that, or two copies
# watching on one PC, left the last folders to the five-minute rescan and said so five times
# a second; such a folder is polled instead, said once.
_OUT_OF_WATCHES = frozenset({errno.EMFILE, errno.ENOSPC})


class EnqueueHandler(FileSystemEventHandler):
    """Never raises (an exception here kills watchdog's thread); never reads a file."""

    def __init__(self, hints: queue.Queue[tuple[Path, float]]) -> None:
        self.hints = hints

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type in ("opened", "closed_no_write"):
                return
            for p in (event.src_path, getattr(event, "dest_path", "")):
                if p:
                    # We do our own filtering after the fact: watchdog 7's ignore_policy="any"
                    # would drop the temp -> name.xlsx rename that completes an Excel save.
                    self.hints.put((Path(str(p)), time.monotonic()))
        except Exception:  # noqa: BLE001 - the observer thread must survive anything
            log.exception("watch handler")


class Watchers:
    """One observer per source folder (native or polling); ``check()`` restarts dead ones.

    A shop's local folder gets the native observer (events arrive at once, nothing to poll);
    a folder in ``poll_folders`` (or every folder when ``poll``) gets the PollingObserver,
    because a NAS or SMB share written from another machine never reports its changes.
    """

    def __init__(self, folders: list[Path], hints: queue.Queue[tuple[Path, float]], *, poll: bool = False,
                 poll_folders: Iterable[Path] = (), poll_interval: float = 2.0) -> None:
        self.folders = folders
        self.hints = hints
        self.poll = poll
        self.poll_folders = {real_path(f) for f in poll_folders}
        self.poll_interval = poll_interval
        self.observers: dict[Path, BaseObserver] = {}
        self.restarts = 0
        self._said: dict[Path, str] = {}   # folder -> why it could not be watched, said once

    def polled(self, folder: Path) -> bool:
        """Whether ``folder`` is watched by polling (decided per folder, kept across restarts)."""
        return self.poll or real_path(folder) in self.poll_folders

    def describe(self, folder: Path) -> str:
        """How a folder is watched, in the words the shop's technical person reads in the log."""
        if self.polled(folder):
            return f"轮询，每 {self.poll_interval:g} 秒 (polling every {self.poll_interval:g} s)"
        return "系统文件事件 (native events)"

    def _start(self, folder: Path) -> None:
        obs = PollingObserver(timeout=self.poll_interval) if self.polled(folder) else Observer()
        obs.schedule(EnqueueHandler(self.hints), str(folder), recursive=True)
        obs.daemon = True
        obs.start()
        self.observers[folder] = obs
        log.info("监视 %s：%s", folder, self.describe(folder))

    def start(self) -> None:
        for folder in self.folders:
            self._try_start(folder)

    def _try_start(self, folder: Path) -> bool:
        try:
            self._start(folder)
        except OSError as exc:
            if exc.errno in _OUT_OF_WATCHES and not self.polled(folder):
                self.poll_folders.add(real_path(folder))   # for good: kept across restarts
                log.warning("系统文件监视数已用完（%s），%s 改为每 %g 秒轮询；可调高 fs.inotify.max_user_instances "
                            "和 fs.inotify.max_user_watches (out of native watches: polled instead)",
                            exc.strerror or exc, folder, self.poll_interval)
                return self._try_start(folder)
            if self._said.get(folder) != str(exc):   # tried again at every check, said once
                self._said[folder] = str(exc)
                log.warning("无法监视 %s（稍后重试）: %s", folder, exc)
            return False
        self._said.pop(folder, None)
        return True

    def check(self) -> None:
        for folder in self.folders:
            obs = self.observers.get(folder)
            if obs is None or not obs.is_alive():
                if obs is not None:
                    log.warning("监视线程已停止，重新启动: %s", folder)
                    self._stop_one(obs)
                # The dead observer stays in ``observers`` until its successor replaces it,
                # and the restart is counted only after that: whoever reads the map (the status
                # line, a test waiting on the count) never sees a live folder missing half-way.
                started = is_dir(folder) and self._try_start(folder)
                if not started:
                    self.observers.pop(folder, None)  # a vanished share: tried again next check
                if obs is not None:
                    self.restarts += 1
                if started:
                    # the folder may have changed while nobody watched it
                    self.hints.put((folder, time.monotonic()))

    @staticmethod
    def _stop_one(obs: BaseObserver) -> None:
        try:
            obs.stop()
            obs.join(2)
        except Exception:  # noqa: BLE001 - a dead observer may fail to stop; it is dropped anyway
            log.debug("stop observer", exc_info=True)

    def stop(self) -> None:
        for obs in self.observers.values():
            self._stop_one(obs)
        self.observers.clear()
