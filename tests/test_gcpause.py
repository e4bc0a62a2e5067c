"""The cycle collector is off during a merge and comes back as it was, however merges overlap."""

from __future__ import annotations

import gc
import threading

from complaint_core.gcpause import paused_gc


def test_off_inside_and_back_after() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()   # the inner merge ended, the outer one still runs
    assert gc.isenabled()


def test_back_after_an_error() -> None:
    try:
        with paused_gc():
            raise ValueError("a shop file could not be read")
    except ValueError:
        pass
    assert gc.isenabled()


def test_stays_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_merges_in_two_threads() -> None:
    inside = threading.Barrier(2)
    first_done = threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with paused_gc():
            inside.wait()
        first_done.set()

    def second() -> None:
        with paused_gc():
            inside.wait()
            first_done.wait(5)
            seen.append(gc.isenabled())   # the first merge ended; this one still runs
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert seen == [False] and gc.isenabled()


def test_as_decorator() -> None:
    @paused_gc()
    def scan() -> bool:
        return gc.isenabled()
    assert scan() is False and gc.isenabled()
