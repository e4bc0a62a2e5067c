"""One shop's save costs that shop's work (issue 17): the other shops' parts of the merged
workbook are reused from the last write, and a workbook written that way is, cell for cell,
the workbook a fresh render of the store writes: whatever the clock, the managers' cells,
the rules or the cache folder say."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from bench.data import BASE, rows_for, write_shop
from complaint_core.merged.pieces import PieceCache
from complaint_core.merged.render import render_merged
from complaint_core.merged.report import Summary
from complaint_core.rules_book import Person, Rules
from complaint_core.schema import KEYS
from complaint_core.store import open_store
from complaint_core.store.db import Store, View
from sync.api import merge_into

T0 = BASE + timedelta(days=60)   # the bench's complaints are received over 80 days from BASE
SHOPS = ("S01", "S02", "S03", "S04")


def _grids(path: Path) -> dict[str, list[list[object]]]:
    wb = CalamineWorkbook.from_path(str(path))
    return {name: wb.get_sheet_by_name(name).to_python() for name in wb.sheet_names}


def _fresh(store: Store, tmp_path: Path, now: datetime) -> dict[str, list[list[object]]]:
    """What a render with no piece to reuse writes (a workbook of its own: its own cache)."""
    path = tmp_path / f"fresh-{now:%Y%m%d%H%M%S}.xlsx"
    rep = render_merged(store, path, now=now)
    assert rep.reused == 0
    return _grids(path)


def _same(out: Path, store: Store, tmp_path: Path, now: datetime) -> None:
    got, want = _grids(out), _fresh(store, tmp_path, now)
    assert list(got) == list(want)
    for name in want:
        assert got[name] == want[name], name


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Store, Path, Path]:
    folder = tmp_path / "shops"
    for n, shop in enumerate(SHOPS):
        write_shop(folder / shop / f"{shop}.xlsx", rows_for(30, shop=shop, seed=n), shop=shop)
    store = open_store(tmp_path / "state.sqlite")
    out = tmp_path / "汇总.xlsx"
    merge_into(store, [folder], out, now=T0)
    return store, folder, out


def test_a_shops_save_reuses_the_other_shops_and_writes_what_a_fresh_render_writes(chain, tmp_path: Path) -> None:
    store, folder, out = chain
    write_shop(folder / "S02" / "S02.xlsx", rows_for(33, shop="S02", seed=77), shop="S02")
    rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=5))
    assert rep.reused == len(SHOPS) - 1
    _same(out, store, tmp_path, T0 + timedelta(minutes=5))


# how many shops' pieces still hold (seeded data): none after a year (closed complaints move
# to their archive at the new year), some after minutes and hours
EXPECT_REUSED = {timedelta(minutes=7): 4, timedelta(hours=5): 4, timedelta(days=3): 2, timedelta(days=45): 0,
                 timedelta(days=400): 0}


@pytest.mark.parametrize("later", list(EXPECT_REUSED))
def test_the_clock_moves_on_and_the_reused_parts_move_with_it(chain, tmp_path: Path, later: timedelta) -> None:
    # hours late, due soon turning overdue, deadlines coming within their warning time,
    # resolved times still ahead, a new year archiving closed complaints
    store, _folder, out = chain
    _touch(out)   # a render with nothing new since the last write is skipped: this one must write
    reused = render_merged(store, out, now=T0 + later).reused
    assert reused == EXPECT_REUSED[later]
    _same(out, store, tmp_path, T0 + later)


def test_a_managers_cell_is_kept_and_only_its_shop_is_made_again(chain, tmp_path: Path) -> None:
    store, _folder, out = chain
    grid = _grids(out)["全部投诉"]
    ref_col, note_col = grid[1].index("记录标识"), grid[1].index("主管批示")
    row = next(r for r in grid[2:] if r[grid[1].index("门店(来源)")] == "S03")
    store.save_manager_edits("全部投诉", {(row[ref_col],): {"manager_approval": "请店长当天回电"}}, now=T0)
    rep = render_merged(store, out, now=T0 + timedelta(minutes=1))
    assert rep.reused == len(SHOPS) - 1
    shown = next(r for r in _grids(out)["全部投诉"][2:] if r[ref_col] == row[ref_col])
    assert shown[note_col] == "请店长当天回电"
    _same(out, store, tmp_path, T0 + timedelta(minutes=1))


def test_new_rules_or_a_broken_cache_make_every_shop_again(chain, tmp_path: Path) -> None:
    store, _folder, out = chain
    store.save_rules(Rules(staff=(Person("张强", "售后部", "张强", "zq@example.cn"),)), now=T0)
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=1)).reused == 0
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=2)).reused == len(SHOPS)
    cache = PieceCache.beside(store, out)
    pieces = sorted(cache.folder.glob("*.piece"))
    assert len(pieces) == len(SHOPS)
    pieces[0].write_bytes(pieces[0].read_bytes()[:100])    # a torn file: a miss, never a wrong sheet
    pieces[1].write_bytes(b"not a piece")
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=3)).reused == len(SHOPS) - 2
    _same(out, store, tmp_path, T0 + timedelta(minutes=3))


def test_a_shop_that_leaves_takes_its_piece_with_it(chain, tmp_path: Path) -> None:
    store, folder, out = chain
    keys = KEYS
    assert keys[0] == "complaint_id"
    for path in (folder / "S04").glob("*.xlsx"):
        path.unlink()
    merge_into(store, [folder], out, now=T0 + timedelta(hours=1))
    _same(out, store, tmp_path, T0 + timedelta(hours=1))


def test_a_cache_folder_that_cannot_be_written_costs_speed_never_content(chain, tmp_path: Path, caplog) -> None:
    store, folder, out = chain
    cache = PieceCache.beside(store, out)
    for piece in cache.folder.iterdir():
        piece.unlink()
    cache.folder.rmdir()
    cache.folder.write_text("not a folder")      # e.g. a full or read-only disk
    write_shop(folder / "S01" / "S01.xlsx", rows_for(31, shop="S01", seed=5), shop="S01")
    with caplog.at_level("WARNING", logger="complaint_desk.merged"):
        rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=3))
    assert rep.reused == 0 and rep.written == out
    assert sum("缓存未能保存" in r.getMessage() for r in caplog.records) == 1   # once per write, not per shop
    _same(out, store, tmp_path, T0 + timedelta(minutes=3))


def test_a_files_findings_are_encoded_again_only_when_it_is_read_again(chain, tmp_path: Path) -> None:
    store, folder, out = chain
    cache = PieceCache.beside(store, out)
    before = {p.name: p.stat().st_mtime_ns for p in cache.folder.glob("*.findings")}
    assert len(before) == len(SHOPS)
    write_shop(folder / "S03" / "S03.xlsx", rows_for(29, shop="S03", seed=11), shop="S03")
    merge_into(store, [folder], out, now=T0 + timedelta(minutes=4))
    after = {p.name: p.stat().st_mtime_ns for p in cache.folder.glob("*.findings")}
    assert sum(before[k] != after[k] for k in before) == 1   # only the saved shop's file
    _same(out, store, tmp_path, T0 + timedelta(minutes=4))


def test_a_save_reads_the_findings_of_the_saved_file_only(chain, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The render keys each file's encoded 校验问题 rows by the digest stored with its findings:
    a shop's save reads that one file's findings from the store, not every file's."""
    from sqlalchemy import select

    from complaint_core.store import tables as t
    from complaint_core.store.codec import content_hash

    store, folder, out = chain
    with store.engine.connect() as c:
        stored = c.execute(select(t.file_findings.c.data, t.file_findings.c.digest)).all()
    assert len(stored) == len(SHOPS) and all(digest == content_hash(data) for data, digest in stored)
    read: list[str] = []
    real = View.finding_file

    def finding_file(self: View, path: str) -> tuple[str, bytes, str] | None:
        read.append(Path(path).name)
        return real(self, path)

    monkeypatch.setattr(View, "finding_file", finding_file)
    write_shop(folder / "S02" / "S02.xlsx", rows_for(27, shop="S02", seed=12), shop="S02")
    merge_into(store, [folder], out, now=T0 + timedelta(minutes=3))
    assert read == ["S02.xlsx"]
    monkeypatch.undo()
    _same(out, store, tmp_path, T0 + timedelta(minutes=3))


def test_findings_stored_by_an_older_version_without_a_digest_give_the_same_sheet(chain, tmp_path: Path) -> None:
    from sqlalchemy import update

    from complaint_core.store import tables as t

    store, folder, out = chain
    digests = store.finding_digests()
    with store.engine.begin() as c:   # as a store written before the digest was kept
        c.execute(update(t.file_findings).values(digest=None))
    assert store.finding_digests() == digests
    got = store.finding_file(digests[0][0])
    assert got is not None and got[2] == digests[0][2]
    with store.engine.connect() as c:   # what a piece maker reads, a piece at a time
        streamed = store.finding_pieces(digests[0][0], c)
        assert streamed is not None and streamed[1] == digests[0][2] and b"".join(streamed[3]) == got[1]
    # the kept rows are found under the same keys (none encoded again), and the workbook is what
    # a fresh render writes
    kept = PieceCache.beside(store, out).folder
    before = {p.name: p.stat().st_mtime_ns for p in kept.glob("*.findings")}
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=2)).reused == len(SHOPS)
    assert {p.name: p.stat().st_mtime_ns for p in kept.glob("*.findings")} == before
    _same(out, store, tmp_path, T0 + timedelta(minutes=2))


def test_repeat_customers_across_shops_are_counted_as_shops_come_and_go(tmp_path: Path) -> None:
    # the same customers complain in several shops: 汇总's repeat counts are the chain's, kept
    # per shop beside the pieces; a shop's save or departure changes that shop's share only
    folder = tmp_path / "shops"
    phone, name = KEYS.index("customer_phone"), KEYS.index("customer_name")

    def rows(shop: str, seed: int, regulars: int) -> list[list[object]]:
        got = rows_for(12, shop=shop, seed=seed)
        for i, row in enumerate(got[:regulars]):
            row[phone], row[name] = f"1380000{i % 4:04d}", f"{shop}客户{i}"   # four regulars
        return got

    for n, shop in enumerate(SHOPS):
        write_shop(folder / shop / f"{shop}.xlsx", rows(shop, n, 6), shop=shop)
    store = open_store(tmp_path / "state.sqlite")
    out = tmp_path / "汇总.xlsx"
    merge_into(store, [folder], out, now=T0)

    def repeated() -> tuple[object, list[list[object]]]:
        grid = _grids(out)["汇总"]
        kpi = next(r[1] for r in grid if r[0] == "重复投诉客户数")
        at = next(i for i, r in enumerate(grid) if r[0] == "改进：重复投诉的客户")
        return int(kpi), [[r[0], int(r[1])] for r in grid[at + 2:at + 6] if isinstance(r[1], float | int)]

    def counted(now: datetime) -> tuple[object, list[list[object]]]:
        # the oracle: every complaint in memory at once, in the sheet's order
        acc = Summary(now)
        with store.engine.begin() as conn:
            acc.add(View(store, conn).live_records())
        return acc.customers.repeated(), acc.customers.rows()[:4]

    assert repeated() == counted(T0) and repeated()[0] == 4
    assert repeated()[1][0][0].startswith("S01客户")   # labelled by the first shop that has them
    _same(out, store, tmp_path, T0)
    write_shop(folder / "S01" / "S01.xlsx", rows("S01", 50, 0), shop="S01")   # S01's regulars leave
    assert merge_into(store, [folder], out, now=T0 + timedelta(minutes=1)).reused == len(SHOPS) - 1
    assert repeated() == counted(T0 + timedelta(minutes=1)) and repeated()[1][0][0].startswith("S02客户")
    _same(out, store, tmp_path, T0 + timedelta(minutes=1))
    for path in (folder / "S02").glob("*.xlsx"):
        path.unlink()
    merge_into(store, [folder], out, now=T0 + timedelta(minutes=2))
    assert repeated() == counted(T0 + timedelta(minutes=2))
    _same(out, store, tmp_path, T0 + timedelta(minutes=2))


def test_a_reused_pieces_repeat_counts_are_read_only_when_its_shop_changed(chain, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A save loads every shop's piece, but only the changed shop's customer and subject counts
    go to the chain's tally, a packed batch at a time (never unpacked whole): the others are not
    read at all, and stay packed as they were pickled (and pickled again so)."""
    from complaint_core.merged import keptfile, pieces
    from complaint_core.merged.report import Repeats

    store, folder, out = chain
    read: list[str] = []
    unpacked: list[str] = []
    real_sync, real_labelled = pieces.ChainTally.sync, Repeats.labelled
    syncing: list[str] = []

    def sync(self: pieces.ChainTally, shop: str, piece: pieces.Piece) -> None:
        syncing[:] = [shop]
        packed = "_packed" in piece.summary.customers.__dict__
        real_sync(self, shop, piece)
        if packed and "_packed" not in piece.summary.customers.__dict__:
            unpacked.append(shop)

    def labelled(self: Repeats) -> Iterator[tuple[str, int, str]]:
        read.append(syncing[0])
        return real_labelled(self)

    monkeypatch.setattr(pieces.ChainTally, "sync", sync)
    monkeypatch.setattr(Repeats, "labelled", labelled)
    write_shop(folder / "S03" / "S03.xlsx", rows_for(31, shop="S03", seed=78), shop="S03")
    rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=5))
    assert rep.reused == len(SHOPS) - 1 and set(read) == {"S03"} and unpacked == []
    _same(out, store, tmp_path, T0 + timedelta(minutes=5))

    cache = PieceCache.beside(store, out)
    kept = cache.load("S01")
    assert kept is not None and "_packed" in kept.summary.customers.__dict__
    again = keptfile.loads(keptfile.dumps(kept))
    cache.release()
    assert "_packed" in again.summary.customers.__dict__   # still packed: never read
    assert list(again.summary.customers.labelled()) == list(kept.summary.customers.labelled())
    assert again.summary.customers.counts and "_packed" not in again.summary.customers.__dict__


def test_a_kept_pieces_open_deadlines_share_one_warning_time_per_value(chain, tmp_path: Path) -> None:
    # a piece is unpickled at every save: a warning time per open line made that load take
    # 3.0 ms instead of 1.75 for a shop of 3,000 complaints (merged/pieces.py, overdue.warning_time)
    store, _folder, out = chain
    cache = PieceCache.beside(store, out)
    lines = 0
    for shop in SHOPS:
        piece = cache.load(shop)
        assert piece is not None
        warns = [line[1] for line in piece.lines if not isinstance(line, bytes)]
        warns += [warn for _kind, _due, warn in piece.dyn]
        lines += len(warns)
        assert len({id(w) for w in warns}) == len(set(warns)), shop
    cache.release()
    assert lines > len(SHOPS)   # the seeded shops have open deadlines due soon or overdue


def _open_deadlines(store: Store, shop: str) -> list[tuple[datetime, datetime]]:
    """(due, due - warning time) of the shop's deadlines not met yet."""
    from complaint_core.overdue import record_deadlines

    return [(due, due - warn) for records, _conflicts in store.shop_records(shop) for r in records
            if not r["deleted"] for _kind, due, done, warn in record_deadlines(r) if done is None]


def test_a_piece_holds_while_its_open_deadlines_come_due_soon_and_overdue(chain, tmp_path: Path) -> None:
    # a deadline still ahead at the last write (not yet due soon) is listed on 逾期 from the
    # moment it comes within its warning time: worked out at each write, the shop is not made
    # again for it (with deadlines ahead in most shops, most saves made a few shops again)
    store, _folder, out = chain
    ahead = {shop: sorted(soon for _due, soon in _open_deadlines(store, shop) if soon > T0) for shop in SHOPS}
    resolved_ahead = {shop: [r["resolved_at"] for records, _c in store.shop_records(shop) for r in records
                             if isinstance(r["resolved_at"], datetime) and r["resolved_at"] > T0] for shop in SHOPS}
    # the first moment a deadline of some shop comes within its warning time, then a day on
    first = min(soon for soons in ahead.values() for soon in soons)
    for at in (first + timedelta(minutes=1), first + timedelta(days=1)):
        holding = [s for s in SHOPS if not any(T0 < done <= at for done in resolved_ahead[s])]
        crossing = [s for s in holding if any(soon < at for soon in ahead[s])]
        assert crossing   # the moment is chosen so that at least one shop has a deadline come due soon
        _touch(out)
        assert render_merged(store, out, now=at).reused == len(holding)
        _same(out, store, tmp_path, at)


def _open_in(folder: Path) -> list[str]:
    """The files of ``folder`` this process holds open (Linux's /proc; [] elsewhere)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return []
    held = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


def test_kept_rows_go_from_their_files_into_the_workbook_and_no_file_stays_open(chain, tmp_path: Path) -> None:
    """A shop's save lays the other shops' rows, findings and 处罚 lines from the files the last
    write kept (their bytes copied into the package, never read), and lets go of those files
    once the package is written."""
    from complaint_core.merged import deflate

    store, folder, out = chain
    cache = PieceCache.beside(store, out)
    laid: list[str] = []
    real_add = deflate.Spool.add

    def add(self: deflate.Spool, segment: deflate.Segment | deflate.FileSegment) -> None:
        if isinstance(segment, deflate.FileSegment):
            laid.append(Path(segment.file.name).suffix)
        real_add(self, segment)

    write_shop(folder / "S02" / "S02.xlsx", rows_for(33, shop="S02", seed=77), shop="S02")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deflate.Spool, "add", add)
        rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=5))
    assert rep.reused == len(SHOPS) - 1
    # 全部投诉 and _rendered of three shops, three files' 校验问题 rows
    assert laid.count(".piece") == 2 * (len(SHOPS) - 1) and laid.count(".findings") == len(SHOPS) - 1
    assert _open_in(cache.folder) == []
    _same(out, store, tmp_path, T0 + timedelta(minutes=5))


def test_with_no_file_handle_to_spare_kept_rows_are_read_and_the_workbook_is_the_same(
        chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows (a file held open cannot be replaced there), or a process at its limit of open files
    from complaint_core.merged import pieces

    store, folder, out = chain
    monkeypatch.setattr(pieces, "_handles", lambda: 0)
    write_shop(folder / "S01" / "S01.xlsx", rows_for(28, shop="S01", seed=70), shop="S01")
    rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=6))
    assert rep.reused == len(SHOPS) - 1
    assert _open_in(PieceCache.beside(store, out).folder) == []
    _same(out, store, tmp_path, T0 + timedelta(minutes=6))


def test_kept_files_replaced_by_another_write_before_the_package_is_written_change_nothing(
        chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sync --once`` beside a running daemon: the other process keeps its own pieces of the
    same shops while this write is between laying them and writing the package. What this
    write laid is copied as it was when it was opened."""
    store, folder, out = chain
    real_forget = PieceCache.forget

    def forget_then_replaced(self: PieceCache, *args: object) -> None:
        real_forget(self, *args)   # runs after every kept file was laid, before the package
        for kept in [*self.folder.glob("*.piece"), *self.folder.glob("*.findings")]:
            other = kept.with_name(kept.name + ".other")
            other.write_bytes(b"another write's piece" * 1000)
            os.replace(other, kept)

    write_shop(folder / "S04" / "S04.xlsx", rows_for(26, shop="S04", seed=71), shop="S04")
    monkeypatch.setattr(PieceCache, "forget", forget_then_replaced)
    rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=7))
    assert rep.reused == len(SHOPS) - 1
    monkeypatch.undo()
    _same(out, store, tmp_path, T0 + timedelta(minutes=7))
    # the files it found replaced are misses at the next write, never a wrong sheet
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=8)).reused == 0
    _same(out, store, tmp_path, T0 + timedelta(minutes=8))


def test_a_write_may_hold_open_half_the_files_the_system_lets_it_open() -> None:
    """256 files by default on macOS, 1,024 on most Linux systems: the limit is raised toward
    the hard one, up to 4,096, and half of it less a margin is what kept files may take. On
    Windows none (a file held open there cannot be replaced by another process's write)."""
    import sys

    from complaint_core.merged import pieces

    if sys.platform == "win32":
        assert pieces._open_budget() == 0
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, want), hard))
        budget = pieces._open_budget()
        now, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert now == want and budget == want // 2 - 64
        resource.setrlimit(resource.RLIMIT_NOFILE, (want + 100 if hard == resource.RLIM_INFINITY
                                                    or hard >= want + 100 else want, hard))
        higher, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert pieces._open_budget() == higher // 2 - 64   # a higher limit is kept as it is
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_big_shops_packed_lines_write_what_lines_as_they_are_write(tmp_path: Path, monkeypatch) -> None:
    """A shop of many 逾期 lines keeps them packed in its piece (issue 17: 12 MiB as they are at
    30,000 complaints); written fresh or reused hours later, 逾期 reads the same."""
    from complaint_core.merged import walk
    from complaint_core.merged.pieces import PackedLines

    folder = tmp_path / "shops"
    for n, shop in enumerate(SHOPS[:2]):
        write_shop(folder / shop / f"{shop}.xlsx", rows_for(60, shop=shop, seed=n), shop=shop)
    seen: dict[str, list[dict[str, list[list[object]]]]] = {}
    for how, pack_from in (("as-they-are", 10 ** 9), ("packed", 1)):
        monkeypatch.setattr(walk, "PACK_FROM", pack_from)
        store = open_store(tmp_path / f"{how}.sqlite")
        out = tmp_path / how / "汇总.xlsx"
        out.parent.mkdir()
        merge_into(store, [folder], out, now=T0)
        first = _grids(out)
        _touch(out)   # written again though nothing new came
        rep = render_merged(store, out, now=T0 + timedelta(hours=5))   # open deadlines finished anew
        assert rep.reused == 2
        seen[how] = [first, _grids(out)]
        piece = PieceCache.beside(store, out).load("S01")
        assert piece is not None
        assert any(isinstance(b, PackedLines) for b in piece.lines) == (how == "packed")
        store.engine.dispose()
    assert len(seen["packed"][0]["逾期"]) > 20
    assert seen["packed"][0]["逾期"] != seen["packed"][1]["逾期"]   # the hours late moved on
    for packed, plain in zip(seen["packed"], seen["as-they-are"], strict=True):
        for name in plain:   # each store has its own id (on the hidden _rendered)
            assert [r for r in packed[name] if r[:1] != ["_store"]] == [r for r in plain[name] if r[:1] != ["_store"]], name
