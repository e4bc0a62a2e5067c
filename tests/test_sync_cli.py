"""``sync --once``: reasons printed, exit 1 when a source failed, 0 when all read."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sync.commands import sync_cmd
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def test_once_reports_and_exits(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(5, seed=2, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    args = ["--source", str(shop), "--out", str(out), "--once", "--now", NOW.isoformat()]
    ok = CliRunner().invoke(sync_cmd, args)
    assert ok.exit_code == 0, ok.output
    assert "已写入" in ok.output and "5 条投诉" in ok.output
    (shop / "坏.xlsx").write_bytes(b"not a workbook")
    bad = CliRunner().invoke(sync_cmd, args)
    assert bad.exit_code == 1
    assert "坏.xlsx" in bad.output and "Traceback" not in bad.output
    assert out.exists()
