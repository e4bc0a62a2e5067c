"""Shops' pieces made in maker processes (issue 17): the workbook is, cell for cell, the one the
render writes alone, whatever the clock, the managers' cells or the store; a maker that finds
the shop moved, fails or dies costs speed only."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from bench.data import BASE, rows_for, write_shop
from complaint_core.merged import makers
from complaint_core.merged.pieces import PieceCache
from complaint_core.merged.render import render_merged
from complaint_core.merged.walk import Codecs, Context, Sinks, make_piece
from complaint_core.merged.xlsx import Book, RowSpool
from complaint_core.store import open_store
from complaint_core.store.db import Store
from sync.api import merge_into

T0 = BASE + timedelta(days=60)
SHOPS = ("S01", "S02", "S03", "S04", "S05", "S06")


def _grids(path: Path) -> dict[str, list[list[object]]]:
    wb = CalamineWorkbook.from_path(str(path))
    return {name: wb.get_sheet_by_name(name).to_python() for name in wb.sheet_names}


def _shops(folder: Path) -> Path:
    for n, shop in enumerate(SHOPS):
        write_shop(folder / shop / f"{shop}.xlsx", rows_for(25 + 5 * n, shop=shop, seed=n), shop=shop)
    return folder


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Store, Path]:
    return open_store(tmp_path / "state.sqlite"), _shops(tmp_path / "shops")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_chain(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, Path]:
    if request.param == "sqlite":
        return open_store(tmp_path / "state.sqlite"), _shops(tmp_path / "shops")
    from tests.support.pg import new_database

    return open_store(new_database(request.getfixturevalue("pg_server"))), _shops(tmp_path / "shops")


def _alone(store: Store, tmp_path: Path, name: str, now) -> dict[str, list[list[object]]]:
    path = tmp_path / f"{name}.xlsx"
    rep = render_merged(store, path, now=now)
    assert rep.apart == 0
    return _grids(path)


def test_pieces_made_by_makers_give_the_workbook_the_render_writes_alone(chain, tmp_path: Path, monkeypatch) -> None:
    store, folder = chain
    monkeypatch.setattr(makers, "workers", lambda: 0)
    out = tmp_path / "汇总.xlsx"
    merge_into(store, [folder], out, now=T0)
    # a manager's cells, a shop's complaint deleted (its cell goes to 冲突), a later clock
    grid = _grids(out)["全部投诉"]
    ref = grid[1].index("记录标识")
    s02 = [r for r in grid[2:] if r[grid[1].index("门店(来源)")] == "S02"]
    store.save_manager_edits("全部投诉", {(s02[0][ref],): {"manager_approval": "请店长当天回电"},
                                        (s02[1][ref],): {"manager_approval": "退款已批"}}, now=T0)
    write_shop(folder / "S02" / "S02.xlsx", rows_for(30, shop="S02", seed=1)[2:], shop="S02")
    merge_into(store, [folder], out, now=T0 + timedelta(hours=1))
    # …and two years on, when the complaints closed now go to their year's archive (put together
    # from the rows the makers encoded beside their pieces)
    for later in (timedelta(hours=2), timedelta(days=3), timedelta(days=400), timedelta(days=800)):
        want = _alone(store, tmp_path, f"alone-{later.days}-{later.seconds}", T0 + later)
        monkeypatch.setattr(makers, "workers", lambda: 2)
        monkeypatch.setattr(makers, "MIN_ROWS", 1)
        path = tmp_path / f"apart-{later.days}-{later.seconds}.xlsx"
        rep = render_merged(store, path, now=T0 + later)
        assert rep.apart == len(SHOPS) and rep.reused == 0
        got = _grids(path)
        assert list(got) == list(want)
        for sheet in want:
            # 来源 names each archive by the workbook's name
            same = [[c.replace("apart-", "alone-") if isinstance(c, str) else c for c in r] for r in got[sheet]]
            assert same == want[sheet], sheet
        # each maker kept its shop's archived rows beside the piece it made
        kept = list(PieceCache.beside(store, path).folder.glob("*.archived"))
        assert len(kept) == len(SHOPS)
        archives = sorted(tmp_path.glob(f"alone-{later.days}-{later.seconds}-*.xlsx"))
        assert bool(archives) == (later.days == 800)
        for alone in archives:
            apart = alone.with_name(alone.name.replace("alone-", "apart-"))
            assert _grids(apart) == _grids(alone) and len(_grids(alone)["全部投诉"]) > 10
        monkeypatch.setattr(makers, "workers", lambda: 0)
    # the managers' cells: on their complaints, in the workbook or in their year's archive
    shown = str(got["全部投诉"]) + str(got["冲突"]) + "".join(str(_grids(a.with_name(a.name.replace("alone-", "apart-"))))
                                                          for a in archives)
    assert "请店长当天回电" in shown and "退款已批" in shown


def test_a_save_of_one_shop_starts_no_maker(chain, tmp_path: Path, monkeypatch) -> None:
    store, folder = chain
    monkeypatch.setattr(makers, "workers", lambda: 2)
    monkeypatch.setattr(makers, "MIN_ROWS", 100)    # the chain holds 225 rows, a shop at most 50
    out = tmp_path / "汇总.xlsx"
    first = merge_into(store, [folder], out, now=T0)
    assert first.written is not None
    write_shop(folder / "S03" / "S03.xlsx", rows_for(36, shop="S03", seed=9), shop="S03")
    rep = merge_into(store, [folder], out, now=T0 + timedelta(minutes=1))
    assert rep.reused == len(SHOPS) - 1
    assert render_merged(store, out, now=T0 + timedelta(minutes=2)).apart == 0


@pytest.mark.parametrize(("ahead_rows", "most"), [(40, makers.AHEAD_LEAST + 1), (10_000, makers.AHEAD + 1)])
def test_pieces_waiting_their_turn_hold_a_few_thousand_complaints(chain, tmp_path: Path, monkeypatch,
                                                                   ahead_rows: int, most: int) -> None:
    """Shops asked of the makers ahead of the one being laid: at most AHEAD, and fewer when
    they hold more than AHEAD_ROWS complaints (never fewer than AHEAD_LEAST, one per maker), so
    that a chain of big shops does not make the render hold more (issue 17). The workbook is
    the same either way."""
    store, folder = chain
    merge_into(store, [folder], tmp_path / "first.xlsx", now=T0)
    want = _alone(store, tmp_path, "alone", T0)
    monkeypatch.setattr(makers, "workers", lambda: 2)
    monkeypatch.setattr(makers, "MIN_ROWS", 1)
    monkeypatch.setattr(makers, "AHEAD_ROWS", ahead_rows)   # the shops hold 25-50 complaints each
    waiting: list[int] = []
    real_ask, real_take = makers.Makers.ask, makers.Makers.take

    def ask(self, shop, mark):
        waiting.append(waiting[-1] + 1 if waiting else 1)
        return real_ask(self, shop, mark)

    def take(self, shop):
        waiting.append(waiting[-1] - 1)
        return real_take(self, shop)

    monkeypatch.setattr(makers.Makers, "ask", ask)
    monkeypatch.setattr(makers.Makers, "take", take)
    path = tmp_path / "apart.xlsx"
    rep = render_merged(store, path, now=T0)
    assert rep.apart == len(SHOPS)
    assert max(waiting) == most and waiting[-1] == 0
    assert _grids(path) == want


def _ctx(store: Store, book: Book) -> tuple[Context, Codecs]:
    from complaint_core.merged.pieces import namespace
    from complaint_core.merged.sheets import all_columns

    def spool() -> RowSpool:
        return book.spool(all_columns(), 2)

    sinks = Sinks(spool(), spool(), spool(), spool(), spool())
    ctx = Context(T0, namespace(store, closed_years=2, styles=book.indexes), {}, {}, store.rules(), T0.year - 1)
    return ctx, sinks.codecs()


def test_a_maker_answers_only_for_the_rows_the_render_saw(any_chain, tmp_path: Path) -> None:
    store, folder = any_chain
    merge_into(store, [folder], tmp_path / "汇总.xlsx", now=T0)
    book = Book()
    ctx, codecs = _ctx(store, book)
    team = makers.Makers(store.url, ctx, codecs, cache=None, count=1)
    try:
        mark = store.shop_marks(shop="S04")["S04"]
        team.ask("S04", mark)
        team.ask("S05", (mark[0], mark[1] + 1, mark[2]))   # another process stored S05 meanwhile
        piece = team.take("S04")
        assert team.take("S05") is None                      # the render makes it itself
    finally:
        team.close()
    from complaint_core.merged.pieces import shop_mark

    mine = make_piece(store.shop_records("S04"), shop_mark(ctx.namespace, mark), ctx, codecs)
    assert piece is not None and piece.rows == mine.rows == 40
    assert piece.refs == mine.refs and piece.lines == mine.lines and piece.cases == mine.cases
    assert [s for s, _n in piece.all_xml] == [s for s, _n in mine.all_xml]
    store.engine.dispose()


def test_a_maker_that_dies_costs_speed_only(chain, tmp_path: Path) -> None:
    store, folder = chain
    merge_into(store, [folder], tmp_path / "汇总.xlsx", now=T0)
    ctx, codecs = _ctx(store, Book())
    team = makers.Makers(store.url, ctx, codecs, cache=None, count=1)
    try:
        os.kill(team._workers[0].proc.pid, signal.SIGKILL)
        team.ask("S01", store.shop_marks(shop="S01")["S01"])
        team.ask("S02", store.shop_marks(shop="S02")["S02"])
        assert team.take("S01") is None and team.take("S02") is None
    finally:
        team.close()


def test_a_maker_that_hangs_is_stopped_and_its_shop_made_by_the_render(chain, tmp_path: Path, monkeypatch) -> None:
    store, folder = chain
    merge_into(store, [folder], tmp_path / "汇总.xlsx", now=T0)
    ctx, codecs = _ctx(store, Book())
    monkeypatch.setattr(makers, "PATIENCE", 1.0)
    team = makers.Makers(store.url, ctx, codecs, cache=None, count=1)
    proc = team._workers[0].proc
    try:
        os.kill(proc.pid, signal.SIGSTOP)      # alive, never answering
        team.ask("S01", store.shop_marks(shop="S01")["S01"])
        team.ask("S02", store.shop_marks(shop="S02")["S02"])
        assert team.take("S01") is None and team.take("S02") is None
        assert not team._workers
    finally:
        team.close()
    proc.join(5)
    assert not proc.is_alive()


def test_a_store_in_memory_is_never_given_to_makers() -> None:
    assert not makers.shared("sqlite:///:memory:") and not makers.shared("sqlite://")
    assert makers.shared("sqlite:////var/lib/complaint-desk/state.sqlite")
    assert makers.shared("postgresql+psycopg://desk@db/desk")


def test_makers_encode_the_files_findings_as_the_render_would(any_chain, tmp_path: Path) -> None:
    # After the shops, makers encode each file's 校验问题 rows while the render lays the last
    # shops; the render checks the key (the file's findings as it read them) before using them.
    from complaint_core.merged.pieces import PieceCache
    from complaint_core.merged.walk import encode_findings, findings_key

    store, folder = any_chain
    merge_into(store, [folder], tmp_path / "汇总.xlsx", now=T0)
    ctx, codecs = _ctx(store, Book())
    digests = {path: digest for path, _shop, digest in store.finding_digests()}
    paths = list(digests)
    assert len(paths) == len(SHOPS)
    cache = PieceCache(tmp_path / "cache")
    team = makers.Makers(store.url, ctx, codecs, cache=cache, count=2)
    try:
        for path in [*paths, str(folder / "gone.xlsx")]:
            team.ask_findings(path)
        made = {path: team.take_findings(path) for path in paths}
        assert team.take_findings(str(folder / "gone.xlsx")) is None   # no such file in the store
        team.ask_findings(paths[0])
        assert team.take_findings(paths[0]) is None    # already in the cache: the render reads it there
    finally:
        team.close()
    for path, shop, data in store.finding_files():
        key = findings_key(path, shop, digests[path])
        segment, rows = encode_findings(codecs.findings, path, shop, data)
        got = made[path]
        assert got is not None and got[0] == key and got[2] == rows > 0
        kept = cache.findings(path, key)
        assert got[1] == segment and kept is not None and (kept[0].read(), kept[1]) == (segment, rows)
    cache.release()
    store.engine.dispose()


def test_a_piece_its_maker_kept_is_laid_from_its_file_or_made_again_when_replaced(
        chain, tmp_path: Path, monkeypatch) -> None:
    """A maker that keeps its piece sends only its token; the render lays the piece from the
    kept file. When another write has kept a piece of that shop since (another token), or the
    maker could not keep it (the piece then comes as bytes), the workbook is the same."""
    from complaint_core.merged import keptfile

    store, folder = chain
    monkeypatch.setattr(makers, "workers", lambda: 0)
    merge_into(store, [folder], tmp_path / "汇总.xlsx", now=T0)
    want = _alone(store, tmp_path, "alone", T0)
    monkeypatch.setattr(makers, "workers", lambda: 2)
    monkeypatch.setattr(makers, "MIN_ROWS", 1)
    replaced: list[str] = []
    real_answer = makers.Makers._answer

    def answer(self: makers.Makers, worker: makers._Worker) -> None:
        job = worker.job
        real_answer(self, worker)
        got = self._done.get(job) if job is not None else None
        if job is not None and got is not None and got[0] == "filed" and job[1] in ("S02", "S05"):
            assert self._cache is not None
            kept = self._cache._path(job[1])
            other = PieceCache(self._cache.folder)   # another write's cache of the same workbook
            piece = keptfile.loads(keptfile.dumps(other.load(job[1])))
            other.release()
            piece.token = "another write's"
            with open(kept.with_name("other"), "wb") as fh:
                keptfile.dump(piece, fh)
            os.replace(kept.with_name("other"), kept)
            replaced.append(job[1])

    monkeypatch.setattr(makers.Makers, "_answer", answer)
    path = tmp_path / "apart.xlsx"
    rep = render_merged(store, path, now=T0)
    assert sorted(replaced) == ["S02", "S05"] and rep.apart == len(SHOPS) - 2

    def shown(grids: dict[str, list[list[object]]]) -> dict[str, list[list[object]]]:
        return {name: rows for name, rows in grids.items() if name != "来源"}   # 来源 names the workbook

    assert shown(_grids(path)) == shown(want)
    # a cache folder that cannot be written: each maker sends its piece
    monkeypatch.setattr(makers.Makers, "_answer", real_answer)
    unwritable = tmp_path / "unwritable.xlsx"
    folder_of = PieceCache.beside(store, unwritable).folder
    folder_of.parent.mkdir(parents=True, exist_ok=True)
    folder_of.write_text("not a folder")
    rep = render_merged(store, unwritable, now=T0)
    assert rep.apart == len(SHOPS) and rep.reused == 0
    assert shown(_grids(unwritable)) == shown(want)
