"""Which names in a shop folder are read, ignored or flagged as sync conflict copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.files import is_conflict_copy, is_ignored


@pytest.mark.parametrize("name", ["~$投诉.xlsx", ".~lock.投诉.xlsx#", "Cedd4100", "投诉.tmp",
                                  ".~cd-tmp-1a2b3c4d.xlsx", "notes.txt"])
def test_noise_is_ignored(tmp_path: Path, name: str) -> None:
    assert is_ignored(tmp_path / name)


def test_own_output_ignored_and_shop_file_read(tmp_path: Path) -> None:
    out = tmp_path / "merged.xlsx"
    assert is_ignored(out, out=out)
    assert not is_ignored(tmp_path / "投诉.xlsx", out=out)


@pytest.mark.parametrize("name", ["投诉 (conflicted copy 2026-11-20).xlsx", "投诉 (冲突副本).xlsx",
                                  "投诉的冲突副本.xlsx"])
def test_conflict_copies_recognised(tmp_path: Path, name: str) -> None:
    assert is_conflict_copy(tmp_path / name)


def test_onedrive_machine_suffix_only_beside_original(tmp_path: Path) -> None:
    copy = tmp_path / "投诉-SHOPPC01.xlsx"
    assert not is_conflict_copy(copy)  # a shop may name its file like this
    (tmp_path / "投诉.xlsx").write_bytes(b"x")
    assert is_conflict_copy(copy)
