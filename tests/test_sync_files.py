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


@pytest.mark.parametrize("name, client", [
    ("投诉 (王某's conflicted copy 2026-11-20).xlsx", "Dropbox"),
    ("投诉（王某的冲突副本 2026-11-20）.xlsx", "Dropbox"),
    ("投诉 (Case Conflict).xlsx", "Dropbox"),
    ("投诉 (conflicted copy 2026-11-20 101500).xlsx", "Nextcloud"),
    ("投诉_conflict-20261120-101500.xlsx", "ownCloud"),
    ("投诉_SHOP-PC_Nov-20-1015-2026_CaseConflict_1.xlsx", "Synology"),
    ("投诉_Conflict.xlsx", "Synology"),
])
def test_sync_clients_copy_names(tmp_path: Path, name: str, client: str) -> None:
    from sync.files import conflict_client

    assert client in (conflict_client(tmp_path / name) or "")


@pytest.mark.parametrize("name, client", [("投诉-DESKTOP-4K2JQ1B.xlsx", "OneDrive"),
                                          ("投诉-LAPTOP-88AB12CD-1.xlsx", "OneDrive"),
                                          ("投诉-Wang-PC.xlsx", "OneDrive"),
                                          ("投诉-副本.xlsx", "WPS"), ("投诉-副本(1).xlsx", "WPS")])
def test_copies_named_after_the_original_only_beside_it(tmp_path: Path, name: str, client: str) -> None:
    from sync.files import conflict_client

    assert conflict_client(tmp_path / name) is None
    (tmp_path / "投诉.xlsx").write_bytes(b"x")
    assert client in (conflict_client(tmp_path / name) or "")


@pytest.mark.parametrize("name", ["投诉登记-Q4.xlsx", "投诉登记-2025.xlsx", "投诉登记-v2.xlsx", "投诉登记-final.xlsx",
                                  "投诉登记-12月.xlsx", "投诉登记 - 副本.xlsx", "投诉登记 - Copy.xlsx",
                                  "投诉登记-H1.xlsx", "投诉登记-2025Q4.xlsx"])
def test_a_shops_own_names_are_not_copies(tmp_path: Path, name: str) -> None:
    (tmp_path / "投诉登记.xlsx").write_bytes(b"x")
    assert not is_conflict_copy(tmp_path / name)


@pytest.mark.parametrize("name", ["投诉.XLSX", "投诉.xls", "投诉.et", "投诉.ods", "投诉.xlsb", "投诉.xlsm", "投诉.CSV"])
def test_every_format_is_listed(tmp_path: Path, name: str) -> None:
    assert not is_ignored(tmp_path / name)


def test_a_shops_quarter_file_is_merged_not_flagged(tmp_path: Path) -> None:
    from sync.api import merge_once
    from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉登记.xlsx", sample_rows(3, seed=1, now=NOW, shop="SH01"))
    write_shop_workbook(shop / "投诉登记-Q4.xlsx", sample_rows(2, seed=2, now=NOW, shop="SH01"))
    report = merge_once([shop], tmp_path / "m.xlsx", now=NOW)
    assert sorted(r.path.name for r in report.read) == ["投诉登记-Q4.xlsx", "投诉登记.xlsx"]
    assert not report.skipped
