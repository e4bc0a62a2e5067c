"""Atomic writes: a reader never sees half a file, a locked target is retried then reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from complaint_core import atomic
from complaint_core.atomic import TEMP_PREFIX, atomic_write, sweep_temp_files
from complaint_core.errors import WorkbookLocked
from complaint_core.textsafe import is_dangerous


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_success_replaces_target_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "book.xlsx"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(TEMP_PREFIX)
        assert tmp.suffix == ".xlsx"
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nothing visible until the replace
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_error_while_writing_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "book.xlsx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_locked_target_is_retried_until_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Linux has no mandatory locks; Excel on Windows makes os.replace raise PermissionError.
    real_replace, calls = os.replace, []

    def locked_twice(src, dst):
        calls.append(dst)
        if len(calls) <= 2:
            raise PermissionError(13, "being used by another process")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", locked_twice)
    target = tmp_path / "book.xlsx"
    with atomic_write(target, delay=0.01) as tmp:
        tmp.write_bytes(b"new")
    assert len(calls) == 3 and target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_target_locked_for_good_raises_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def always_locked(src, dst):
        raise PermissionError(13, "being used by another process")

    monkeypatch.setattr(atomic.os, "replace", always_locked)
    target = tmp_path / "book.xlsx"
    target.write_bytes(b"old")
    with pytest.raises(WorkbookLocked) as info, atomic_write(target, attempts=3, delay=0.01) as tmp:
        tmp.write_bytes(b"new")
    assert "book.xlsx" in str(info.value)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("text", ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tx", "\rx", "＝HYPERLINK()",
                                  "＋1", "－1", "＠x"])
def test_formula_like_text_is_dangerous(text: str):
    assert is_dangerous(text)


@pytest.mark.parametrize("value", ["顾客说 =1", "13800138000", "", 5, None])
def test_plain_values_pass_unchanged(value: object):
    assert not is_dangerous(value)


def test_sweep_removes_only_old_temp_files_of_ours(tmp_path: Path):
    # what a SIGKILL mid-rewrite leaves behind, next to a rewrite in progress and a shop file
    old = tmp_path / f"{TEMP_PREFIX}dead.xlsx"
    fresh = tmp_path / f"{TEMP_PREFIX}live.xlsx"
    shop = tmp_path / "投诉.xlsx"
    for p in (old, fresh, shop):
        p.write_bytes(b"x")
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    os.utime(shop, (hours_ago, hours_ago))
    assert sweep_temp_files(tmp_path) == 1
    assert not old.exists() and fresh.exists() and shop.exists()
