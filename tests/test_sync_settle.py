"""The quiet-period rule: a finished package is read after a short quiet, anything else waits.

Real files on a real disk: packages written by XlsxWriter, cut at every length, grown in place
by a slow writer, and a daemon with a real observer whose full quiet period is long.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import pipeline
from sync.daemon import LOOK_TWICE, QUICK_SETTLE, Daemon
from sync.pipeline import MergeReport
from sync.settle import is_complete_package, quiet_enough
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook
from tests.test_sync_watch import ids, wait_for


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pkg") / "投诉.xlsx"
    write_shop_workbook(path, sample_rows(40, seed=2, now=NOW, shop="SH01"))
    return path.read_bytes()


def test_a_whole_workbook_is_complete(tmp_path: Path, package: bytes) -> None:
    path = tmp_path / "a.xlsx"
    path.write_bytes(package)
    assert is_complete_package(path)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10**9))
def test_every_shorter_file_is_not(tmp_path_factory: pytest.TempPathFactory, package: bytes, cut: int) -> None:
    # a file still being written front to back, stopped anywhere
    path = tmp_path_factory.mktemp("cut") / "a.xlsx"
    path.write_bytes(package[: cut % len(package)])
    assert not is_complete_package(path)


@pytest.mark.parametrize("cut", [1, 2, 21, 22, 23, 200])
def test_the_last_bytes_matter(tmp_path: Path, package: bytes, cut: int) -> None:
    path = tmp_path / "a.xlsx"
    path.write_bytes(package[:-cut])
    assert not is_complete_package(path)


def test_trailing_bytes_after_the_end_record_are_not_complete(tmp_path: Path, package: bytes) -> None:
    # an old, longer file overwritten in place without truncation: the new end is not the file's end
    path = tmp_path / "a.xlsx"
    path.write_bytes(package + b"\0" * 5000)
    assert not is_complete_package(path)


@pytest.mark.parametrize("which", [0, 1, -1])
def test_a_file_filled_out_of_order_is_not_complete_until_its_parts_are_there(
        tmp_path: Path, package: bytes, which: int) -> None:
    # a download that preallocates the file and fills it in ranges, the end first: the
    # directory is already at the end while where a part starts is still zeros
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        start = sorted(i.header_offset for i in zf.infolist())[which]
    path = tmp_path / "a.xlsx"
    path.write_bytes(package[:start] + b"\0" * 64 + package[start + 64:])
    assert not is_complete_package(path)


def test_a_zip_with_a_comment_is_complete(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.xml", "<a/>")
        zf.comment = b"PK\x05\x06 inside the comment too"
    path = tmp_path / "c.xlsx"
    path.write_bytes(buf.getvalue())
    assert is_complete_package(path)


def test_a_central_directory_that_points_elsewhere_is_not(tmp_path: Path, package: bytes) -> None:
    broken = bytearray(package)
    at = broken.rfind(b"PK\x05\x06")
    broken[at + 16] ^= 0x01     # the directory's offset, off by one
    path = tmp_path / "a.xlsx"
    path.write_bytes(bytes(broken))
    assert not is_complete_package(path)


@pytest.mark.parametrize("content", [b"", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, b"a,b\n1,2\n"])
def test_what_is_not_a_zip_waits_the_full_quiet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.xls"
    path.write_bytes(content)   # empty, an .xls (OLE), a .csv
    assert not is_complete_package(path)


def test_a_missing_file_or_a_folder_waits(tmp_path: Path) -> None:
    assert not is_complete_package(tmp_path / "gone.xlsx")
    assert not is_complete_package(tmp_path)


def test_quiet_enough(tmp_path: Path, package: bytes) -> None:
    whole, half = tmp_path / "w.xlsx", tmp_path / "h.xlsx"
    whole.write_bytes(package)
    half.write_bytes(package[: len(package) // 2])
    assert not quiet_enough(0.1, [whole], quick=0.5, settle=2.0)     # not even the short quiet
    assert quiet_enough(0.6, [whole], quick=0.5, settle=2.0)
    assert not quiet_enough(0.6, [whole, half], quick=0.5, settle=2.0)   # one unfinished file holds all
    assert not quiet_enough(0.6, [], quick=0.5, settle=2.0)          # nothing named
    assert not quiet_enough(0.6, [tmp_path], quick=0.5, settle=2.0)  # a folder alone
    assert quiet_enough(0.6, [tmp_path, whole], quick=0.5, settle=2.0)   # the folder of a file saved
    assert not quiet_enough(0.6, [tmp_path / "gone.xlsx"], quick=0.5, settle=2.0)   # deleted: may come back
    assert quiet_enough(2.0, [half], quick=0.5, settle=2.0)          # the full quiet always suffices


def test_a_renamed_save_is_merged_before_the_full_quiet_period(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(8, seed=3, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:5])
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600,
                    settle_seconds=30, quick_settle_seconds=0.3, clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 5)
        # Excel's save: the new content under an extension-less name, then renamed over
        made = write_shop_workbook(tmp_path / "new.xlsx", rows)
        tmp = shop / "Cedd4100"
        tmp.write_bytes(Path(made).read_bytes())
        tmp.replace(shop / "投诉.xlsx")
        # well before the 30 s quiet period a partial file would need
        took = wait_for(lambda: len(ids(out)) == 8, timeout=15)
        assert took < 15
    finally:
        daemon.stop()


class _Looks:
    """``time`` as sync/pipeline.py sees it, keeping every wait its second look makes."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def test_a_renamed_save_is_read_after_the_default_short_quiet_and_looked_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    looks = _Looks()
    monkeypatch.setattr(pipeline, "time", looks)
    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(8, seed=5, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:5])
    out = tmp_path / "merged.xlsx"
    # the defaults a chain runs with, but a full quiet period no test would wait for
    daemon = _Recorded([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600, settle_seconds=30,
                       clock=lambda: NOW)
    assert daemon.quick_settle == QUICK_SETTLE > LOOK_TWICE
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 5)
        looks.waits.clear()   # the first merge read a workbook written a moment before it
        made = write_shop_workbook(tmp_path / "new.xlsx", rows)
        tmp = shop / "Cedd4100"
        tmp.write_bytes(Path(made).read_bytes())
        tmp.replace(shop / "投诉.xlsx")   # Excel's save: written under a temp name, renamed over
        # the workbook shows the save a moment before the merge's report is recorded: wait for both
        wait_for(lambda: len(ids(out)) == 8 and sum(1 for r in daemon.reports if r.read) >= 2, timeout=15)
        read = [r for r in daemon.reports if r.read]
        assert [[f.path.name for f in r.read] for r in read] == [["投诉.xlsx"], ["投诉.xlsx"]]
        # the workbook was last written before the quiet ended: no second look, no wait
        assert looks.waits == []
    finally:
        daemon.stop()


class _Recorded(Daemon):
    """The daemon, keeping every full merge's report (``last_report`` has only the last)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.reports: list[MergeReport] = []

    def merge_now(self) -> MergeReport:
        report = super().merge_now()
        self.reports.append(report)
        return report


def test_a_file_growing_in_place_is_read_only_once_whole(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    src = tmp_path / "src.xlsx"
    rows = sample_rows(30, seed=4, now=NOW, shop="SH01")
    write_shop_workbook(src, rows)
    data = src.read_bytes()
    out = tmp_path / "merged.xlsx"
    daemon = _Recorded([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600,
                       settle_seconds=2.5, quick_settle_seconds=0.2, clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: daemon.merges == 1)

        def copy_slowly() -> None:
            # a copy over a slow share: three parts with pauses longer than the short quiet
            with (shop / "投诉.xlsx").open("wb") as fh:
                third = len(data) // 3
                for part in (data[:third], data[third: 2 * third], data[2 * third:]):
                    fh.write(part)
                    fh.flush()
                    time.sleep(0.8)

        writer = threading.Thread(target=copy_slowly)
        writer.start()
        writer.join()
        wait_for(lambda: len(ids(out)) == 30)
    finally:
        daemon.stop()
    # no merge ran on a third or two thirds of the file: it was read once, whole. The event of
    # its closing may come after that read and bring one more look, which finds it unchanged
    # (under load it did, and the test used to count merges)
    looks = [r for report in daemon.reports[1:] for r in report.read + report.failed + report.skipped]
    assert [(r.outcome, r.rows) for r in looks if r.outcome != "unchanged"] == [("read", 30)], looks
    assert looks[0].outcome == "read"
