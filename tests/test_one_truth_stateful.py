"""Issue 12: shop saves, manager edits, merges, scans, a lost store and a mistyped one, in any order
(and issue 17: the daemon reading a manager's save before the next write; complaints closed and
years passing, so that they go to their year's archive).

After every step that writes the merged workbook, no manager cell is lost or moved, and the
workbook and its archives equal one render of the store (the store is the one truth).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from click.testing import CliRunner
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from complaint_core.merged.render import read_back, render_merged
from complaint_core.store import open_store
from complaint_desk.cli import main
from tests.support.merged import grid, rows_of, type_into
from tests.support.workbooks import write_shop_workbook

NOW = datetime(2026, 11, 20, 10, 0)
SHEETS = ("全部投诉", "逾期", "处罚", "冲突", "校验问题")


def complaint(n: int, cid: str | None) -> dict[str, Any]:
    return {"complaint_id": cid, "shop": "SH01", "received_at": datetime(2026, 11, 1, 9, 0) + timedelta(hours=n),
            "received_by": "李娜", "channel": "电话", "customer_name": f"客户{n}",
            "customer_phone": f"1380013{n:04d}", "subject": "洗衣机", "category": "商品质量",
            "description": f"投诉{n}", "validity": "成立", "responsible_dept": "售后部",
            "responsible_person": "张强", "root_cause": "企业原因", "status": "处理中"}


class OneTruth(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="one-truth-"))
        self.shop = self.dir / "SH01"
        self.shop.mkdir()
        self.out = self.dir / "汇总.xlsx"
        self.state = self.dir / "state-0.db"
        self.stores = 0
        self.rows: list[dict[str, Any]] = []       # the shop's sheet, in its order
        self.gone: set[str] = set()                # descriptions the shop deleted
        self.edits: dict[str, str] = {}            # description -> what the manager typed
        self.next = 1
        self.dup = "SH01-DUP"                      # the id the "dup" complaints share
        self.clock = NOW
        self.merged = False
        self.stored = False                        # the current --state exists

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _cli(self, *args: Any) -> Any:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    def _tick(self) -> str:
        self.clock += timedelta(minutes=5)
        return self.clock.isoformat(timespec="minutes")

    @initialize(kinds=st.lists(st.sampled_from(["id", "none", "dup"]), min_size=5, max_size=5),
                order=st.randoms(use_true_random=False))
    def a_shop_with_complaints_merged(self, kinds: list[str], order: Any) -> None:
        self.shop_saves(5, kinds, order, 99)
        self.merge()

    @rule(new=st.integers(0, 3), kinds=st.lists(st.sampled_from(["id", "none", "dup"]), min_size=3, max_size=3),
          order=st.randoms(use_true_random=False), drop=st.integers(0, 6))
    def shop_saves(self, new: int, kinds: list[str], order: Any, drop: int) -> None:
        # To the store an id is the complaint, wherever and whenever it appears, so the shop
        # here never does what would make one complaint another by its id: an id a deleted
        # complaint had is never given to a new one (a new row with it would be that complaint
        # again, with its managers' cells), and of two complaints sharing an id neither is
        # deleted (the one left would be that id's complaint: the store cannot tell it from the
        # deleted one when it never saw the two side by side)
        if drop < len(self.rows) and len(self.rows) + new > 3:
            cid = self.rows[drop]["complaint_id"]
            holders = sum(r["complaint_id"] == cid for r in self.rows) if cid else 0
            if holders != 2:
                self.gone.add(self.rows.pop(drop)["description"])
                if cid == self.dup and holders == 1:
                    self.dup = f"SH01-DUP{self.next}"
        for i in range(new):
            n, kind = self.next, kinds[i % len(kinds)]
            self.next += 1
            cid = {"id": f"SH01-{n:04d}", "none": None, "dup": self.dup}[kind]
            self.rows.append(complaint(n, cid))
        order.shuffle(self.rows)
        if self.rows:
            write_shop_workbook(self.shop / "投诉.xlsx", self.rows, shop_code="SH01")

    @precondition(lambda self: self.merged)
    @rule(pick=st.integers(0, 50), text=st.sampled_from(["同意", "退款", "再核实"]), read=st.booleans())
    def manager_types(self, pick: int, text: str, read: bool) -> None:
        shown = [r["投诉内容"] for r in rows_of(self.out, "全部投诉") if r["来源已删除"] != "是"]
        if not shown:
            return
        target = shown[pick % len(shown)]
        value = f"{text}-{target}"
        assert type_into(self.out, "全部投诉", lambda v: v["投诉内容"] == target, "主管批示", value) == 1
        self.edits[target] = value
        if read:
            self.daemon_reads_the_managers_save()

    @precondition(lambda self: self.merged and bool(self.edits))
    @rule(pick=st.integers(0, 50), read=st.booleans())
    def manager_clears(self, pick: int, read: bool) -> None:
        shown = {r["投诉内容"]: r["主管批示"] for r in rows_of(self.out, "全部投诉") if r["来源已删除"] != "是"}
        typed = sorted(d for d in self.edits if shown.get(d) == self.edits[d])
        if not typed:
            return
        target = typed[pick % len(typed)]
        assert type_into(self.out, "全部投诉", lambda v: v["投诉内容"] == target, "主管批示", "") == 1
        del self.edits[target]
        if read:
            self.daemon_reads_the_managers_save()

    @precondition(lambda self: bool(self.rows))
    @rule(pick=st.integers(0, 50))
    def shop_closes_a_complaint(self, pick: int) -> None:
        row = self.rows[pick % len(self.rows)]
        row["status"], row["resolved_at"] = "已关闭", self.clock
        write_shop_workbook(self.shop / "投诉.xlsx", self.rows, shop_code="SH01")

    @precondition(lambda self: any(r.get("resolved_at") for r in self.rows))
    @rule(pick=st.integers(0, 50))
    def shop_reopens_a_complaint(self, pick: int) -> None:
        # closed, perhaps archived: it comes back to the merged workbook (and leaves the archive)
        closed = [r for r in self.rows if r.get("resolved_at")]
        row = closed[pick % len(closed)]
        row["status"], row["resolved_at"] = "处理中", None
        write_shop_workbook(self.shop / "投诉.xlsx", self.rows, shop_code="SH01")

    @precondition(lambda self: self.merged)
    @rule(close=st.booleans(), pick=st.integers(0, 50), merge=st.booleans())
    def two_years_pass(self, close: bool, pick: int, merge: bool) -> None:
        # the complaints closed by now (one more, with ``close``) leave the merged workbook for
        # their year's archive at the next write (at once, with ``merge``)
        if close and self.rows:
            self.shop_closes_a_complaint(pick)
        self.clock += timedelta(days=731)
        if merge and self.rows:
            self.merge()

    @precondition(lambda self: self.merged)
    @rule()
    def daemon_reads_the_managers_save(self) -> None:
        # what the daemon does once a manager's save is still (sync/daemon.py): the file stays
        if not self.stored:   # a lost store: the daemon would not be running on it
            return
        before = self.out.read_bytes()
        store = open_store(self.state)
        try:
            read_back(store, self.out, now=self.clock)
        finally:
            store.engine.dispose()
        assert self.out.read_bytes() == before

    @precondition(lambda self: bool(self.rows))
    @rule()
    def merge(self) -> None:
        r = self._cli("sync", "--source", self.shop, "--out", self.out, "--state", self.state, "--once",
                      "--now", self._tick())
        assert r.exit_code == 0, r.output
        self.merged = self.stored = True
        self._check()

    @precondition(lambda self: self.merged)
    @rule()
    def scan(self) -> None:
        before = self.out.read_bytes()
        r = self._cli("scan", "--state", self.state, "--out", self.out, "--now", self._tick())
        if not self.stored:   # lost and not merged since: refused, nothing created or rewritten
            assert r.exit_code == 2 and self.out.read_bytes() == before and not self.state.exists()
            return
        assert r.exit_code == 0, r.output
        self._check()

    @precondition(lambda self: self.merged)
    @rule()
    def store_is_lost(self) -> None:
        for p in self.dir.glob(f"{self.state.name}*"):
            p.unlink()
        self.stores += 1
        self.state = self.dir / f"state-{self.stores}.db"
        self.stored = False

    @precondition(lambda self: self.merged)
    @rule()
    def mistyped_store(self) -> None:
        before = self.out.read_bytes()
        r = self._cli("scan", "--state", self.dir / "typo.db", "--out", self.out, "--now", self._tick())
        assert r.exit_code == 2 and self.out.read_bytes() == before
        assert not (self.dir / "typo.db").exists()

    def _archives(self, out: Path) -> dict[str, Path]:
        """The yearly archives beside ``out``, by what follows its name (``-2026``)."""
        return {p.stem[len(out.stem):]: p for p in out.parent.glob(f"{out.stem}-*.xlsx")}

    def _check(self) -> None:
        shown = rows_of(self.out, "全部投诉")
        for archive in self._archives(self.out).values():
            shown += rows_of(archive, "全部投诉")   # closed complaints of older years, with their cells
        on_rows = {r["投诉内容"]: r["主管批示"] for r in shown if r["主管批示"]}
        orphans = " ".join(str(r["差异"]) for r in rows_of(self.out, "冲突", key="类型")
                           if r["类型"] == "主管批示无对应投诉")
        # nothing moved: every approval shown is the one typed on that very complaint
        for description, value in on_rows.items():
            assert self.edits.get(description) == value, (description, value)
        # nothing lost: every approval is on its complaint, or (complaint deleted) on 冲突
        for description, value in self.edits.items():
            if description in self.gone:
                assert on_rows.get(description) == value or value in orphans, (description, value)
            else:
                assert on_rows.get(description) == value, (description, value)
        # the workbook is one render of the store, at the clock it was written with (a pass that
        # changes nothing leaves the workbook as it was; its notes say as of when)
        again = self.dir / "again.xlsx"
        for old in [again, *self._archives(again).values()]:
            old.unlink(missing_ok=True)
        written = datetime.strptime(str(grid(self.out, "逾期")[0][0])[3:19], "%Y-%m-%d %H:%M")
        store = open_store(self.state)
        try:
            render_merged(store, again, now=written)
        finally:
            store.engine.dispose()
        for sheet in SHEETS:
            assert grid(self.out, sheet) == grid(again, sheet), sheet
        # …and so are the archives (written from the shops' pieces, or decoded from the store)
        wanted = self._archives(again)
        kept = self._archives(self.out)
        if self.stores == 0:   # a store that was lost cannot know the archives the one before wrote
            assert set(wanted) == set(kept), (sorted(wanted), sorted(kept))
        for year, path in wanted.items():
            assert grid(kept[year], "全部投诉") == grid(path, "全部投诉"), year


TestOneTruth = OneTruth.TestCase
TestOneTruth.settings = settings(max_examples=20, stateful_step_count=14, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])
