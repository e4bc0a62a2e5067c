"""汇总's chain-wide repeat counts (merged/pieces.py ``ChainTally``) are the same whether the
totals are kept up to date shop by shop (one shop's save) or summed again at the end of a
write that changed many shops (a first write), across writes, re-saves and shops leaving."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from complaint_core.merged import report
from complaint_core.merged.pieces import ChainTally
from complaint_core.merged.report import Repeats


def _piece(token: str, customers: dict[str, int], subjects: dict[str, int]) -> SimpleNamespace:
    c, s = Repeats(str), Repeats(str)
    c.counts.update(customers)
    s.counts.update(subjects)
    return SimpleNamespace(token=token, summary=SimpleNamespace(customers=c, subjects=s), cases=[])


def _expected(held: dict[str, SimpleNamespace], what: str) -> tuple[list[list[object]], int]:
    total: Counter[str] = Counter()
    for piece in held.values():
        total.update((piece.summary.customers if what == "c" else piece.summary.subjects).counts)
    rows = sorted(([k, n] for k, n in total.items() if n > 1), key=lambda r: (-r[1], r[0]))
    return rows[:20], sum(1 for n in total.values() if n > 1)


@pytest.mark.parametrize("closing", ["close", "behind"])
@pytest.mark.parametrize("end", ["keep", "settle"])
@pytest.mark.parametrize("recount_from", [1, 3, 10**9])
@pytest.mark.parametrize("seed", range(6))
def test_totals_kept_or_summed_again_agree(tmp_path: Path, monkeypatch, recount_from: int, seed: int,
                                           end: str, closing: str) -> None:
    # "settle": the walk's way, the totals summed in a thread while the walk goes on;
    # "behind": the render's way, the file saved in a thread while the package is put together
    monkeypatch.setattr(ChainTally, "RECOUNT_FROM", recount_from)
    rnd = random.Random(seed)
    keys = [f"客户{i}" for i in range(30)]
    held: dict[str, SimpleNamespace] = {}
    path = tmp_path / "tally.sqlite"
    for write in range(5):
        tally = ChainTally(path)
        shops = [f"S{i:02d}" for i in range(rnd.randint(3, 12))]
        for shop in shops:
            if shop in held and rnd.random() < 0.4:
                tally.sync(shop, held[shop])       # unchanged since the last write: nothing to do
                continue
            pick = rnd.sample(keys, rnd.randint(0, 10))
            held[shop] = _piece(f"{write}-{shop}", {k: rnd.randint(1, 3) for k in pick},
                                {k: rnd.randint(1, 2) for k in pick[:4]})
            tally.sync(shop, held[shop])
        for gone in [s for s in held if s not in shops]:
            del held[gone]
        if end == "settle":
            tally.settle(set(shops))
        else:
            tally.keep(set(shops))
        for what in ("c", "s"):
            rows, repeated = _expected(held, what)
            assert tally.rows(what) == rows and tally.repeated(what) == repeated, (write, what)
        if closing == "behind":
            tally.close_behind()
            tally.close_behind()   # a second one has nothing to do
        tally.close()              # waits for the thread: the next write reads what it saved
        tally.close()
        with sqlite3.connect(path) as db:
            assert dict(db.execute("SELECT shop, token FROM shops")) == {s: p.token for s, p in held.items()}


def _labelled(token: str, customers: dict[str, tuple[int, str]]) -> SimpleNamespace:
    c = Repeats(str, str)
    for k, (n, label) in customers.items():
        c.counts[k] = n
        (c._names if n > 1 else c._first)[k] = label
    return SimpleNamespace(token=token, summary=SimpleNamespace(customers=c, subjects=Repeats(str)), cases=[])


def test_summing_that_failed_in_its_thread_fails_where_the_totals_are_read(tmp_path: Path, monkeypatch,
                                                                           caplog) -> None:
    monkeypatch.setattr(ChainTally, "RECOUNT_FROM", 1)
    tally = ChainTally(tmp_path / "tally.sqlite")
    tally.sync("S01", _piece("t1", {"客户1": 2}, {}))

    def broken(self: ChainTally) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(ChainTally, "_totals", broken)
    tally.settle({"S01"})
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        tally.rows("c")
    tally.settle({"S01"})
    tally.close()   # a cache: the next write counts the shops again
    assert "tally not saved" in caplog.text


def test_a_key_is_named_by_the_first_shop_that_has_it(tmp_path: Path) -> None:
    # 汇总 names a repeat customer as the first shop in the sheet's order wrote them, the same
    # whichever order the shops were counted in
    path = tmp_path / "tally.sqlite"
    tally = ChainTally(path)
    tally.sync("S02", _labelled("b", {"13800000000": (1, "王先生 138****0000")}))
    tally.sync("S01", _labelled("a", {"13800000000": (1, "王磊 138****0000"), "13900000000": (2, "李娜")}))
    tally.sync("S10", _labelled("c", {"13900000000": (1, "李女士")}))
    assert tally.rows("c") == [["李娜", 3], ["王磊 138****0000", 2]]
    tally.close()
    tally = ChainTally(path)
    tally.sync("S01", _labelled("a2", {"13900000000": (1, "李娜")}))   # S01 no longer has 王磊
    assert tally.rows("c") == [["李娜", 2]] and tally.repeated("c") == 1
    tally.close()


def test_a_tally_file_of_another_layout_is_made_again(tmp_path: Path) -> None:
    # an earlier version's file (keyed by key, then shop) is a cache: replaced, never misread
    import sqlite3

    path = tmp_path / "tally.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE shops (shop TEXT PRIMARY KEY, token TEXT NOT NULL)")
    old.execute("CREATE TABLE tally (what TEXT NOT NULL, k TEXT NOT NULL, shop TEXT NOT NULL, n INTEGER NOT NULL, "
                "label TEXT NOT NULL, PRIMARY KEY (what, k, shop))")
    old.execute("INSERT INTO shops VALUES ('S01', 'a')")
    old.execute("INSERT INTO tally VALUES ('c', 'x', 'S01', 5, 'x')")
    old.commit()
    old.close()
    tally = ChainTally(path)
    assert tally.rows("c") == []   # nothing of the old file counted
    tally.sync("S01", _labelled("a", {"x": (2, "x")}))   # the same token: counted again all the same
    assert tally.rows("c") == [["x", 2]]
    tally.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == ChainTally.LAYOUT


def _cases(token: str, keys: list[tuple[str, int, float]], tag: str) -> SimpleNamespace:
    rows = [(key, f"<row>{tag}{n}：“太慢了”</row>".encode()) for n, key in enumerate(keys)]
    return SimpleNamespace(token=token, summary=SimpleNamespace(customers=Repeats(str), subjects=Repeats(str)),
                           cases=rows)


def _read_from_the_index(path: Path) -> None:
    # the sheet's rows come from the index alone, in its order: no look-up in the table per row
    # and no sort (a save of 100 shops x 3,000 complaints read 120,000 cases in 0.1 s, not 0.5)
    db = sqlite3.connect(path)
    plan = " ".join(r[-1] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT row FROM cases ORDER BY cat, rank, t, shop, i"))
    db.close()
    assert "COVERING INDEX ix_cases" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("recount_from", [1, 2, 10**9])
def test_case_book_rows_come_in_the_sheets_order_as_shops_come_and_go(tmp_path: Path, monkeypatch,
                                                                      recount_from: int) -> None:
    """案例手册's rows are kept beside the pieces: category (code points), outcome, latest first;
    equal cases in the walk's order (shops in code-point order, then each piece's order); a
    shop's save replaces its rows only, and a shop that leaves takes them along. The same
    whether the rows went into the index one by one or the index was made again after a write
    that synced many shops (``RECOUNT_FROM``)."""
    monkeypatch.setattr(ChainTally, "RECOUNT_FROM", recount_from)
    keys = {"B": [("售后", 1, -5.0), ("A", 2, -1.0)],
            "A": [("甲", 0, 0.0), ("A", 1, -3.0), ("A", 1, -3.0)],
            "A-1": [("A", 1, -3.0), ("A", 1, -9.0)]}

    def order(tally: ChainTally, batch: int = 2000) -> list[str]:
        return [row.decode().split("：")[0][5:] for rows in tally.cases(batch) for row in rows]

    path = tmp_path / "tally.sqlite"
    tally = ChainTally(path)
    for shop in sorted(keys):   # the walk's order
        tally.sync(shop, _cases(f"{shop}1", keys[shop], shop))
    tally.settle(set(keys))
    # ("A",1,-9); ("A",1,-3) three times: shop A before A-1, then each piece's order; ("A",2,…);
    # then 售后 before 甲 (code points)
    want = ["A-11", "A1", "A2", "A-10", "B1", "B0", "A0"]
    assert order(tally) == want and order(tally, 3) == want   # batches that do not divide it: same order
    assert next(iter(tally.cases()))[0] == "<row>A-11：“太慢了”</row>".encode()   # the very bytes it was given
    tally.close()
    _read_from_the_index(path)

    tally = ChainTally(path)   # the next write: B saved (one case fewer), A-1 left the chain
    tally.sync("A", _cases("A1", keys["A"], "A"))   # unchanged: its rows stay as they were
    tally.sync("B", _cases("B2", keys["B"][1:], "B"))
    tally.settle({"A", "B"})
    assert order(tally) == ["A1", "A2", "B0", "A0"]
    tally.close()
    _read_from_the_index(path)


def test_a_write_that_stops_half_way_leaves_the_case_books_index_in_place(tmp_path: Path, monkeypatch) -> None:
    # the index goes once many shops are synced in one write; a write that ends before the
    # walk settles (a store read that failed) still leaves it made again, and a killed one
    # leaves the last write's file as it was (one transaction)
    monkeypatch.setattr(ChainTally, "RECOUNT_FROM", 1)
    path = tmp_path / "tally.sqlite"
    tally = ChainTally(path)
    tally.sync("A", _cases("A1", [("甲", 0, 0.0), ("乙", 1, -3.0)], "A"))
    tally.sync("B", _cases("B1", [("甲", 0, -1.0)], "B"))
    tally.close()   # no settle: as ``_compose`` closes it after a failed walk
    _read_from_the_index(path)
    tally = ChainTally(path)
    tally.sync("C", _cases("C1", [("甲", 0, -2.0)], "C"))
    tally._db.close()   # killed before the commit: the dropped index comes back with the rollback
    _read_from_the_index(path)
    tally = ChainTally(path)
    tally.settle({"A", "B"})
    assert [row.decode()[5:7] for rows in tally.cases() for row in rows] == ["A1", "B0", "A0"]   # 乙 before 甲
    tally.close()


def test_a_tally_that_cannot_be_saved_behind_the_render_says_so_and_is_counted_again(tmp_path: Path,
                                                                                    caplog) -> None:
    tally = ChainTally(tmp_path / "tally.sqlite")
    tally.sync("S01", _piece("t1", {"客户1": 2}, {}))
    real = tally._db

    class Refuses:   # the disk gives out as the thread commits
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def commit(self) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    tally._db = Refuses()  # type: ignore[assignment]
    tally.close_behind()
    tally.close()
    assert "tally not saved" in caplog.text and "disk I/O error" in caplog.text
    again = ChainTally(tmp_path / "tally.sqlite")   # nothing of that write kept: the shop is counted again
    assert again._db.execute("SELECT count(*) FROM shops").fetchone()[0] == 0
    again.close()


@pytest.mark.parametrize("batch", [1, 3, 4096])
def test_packed_repeat_counts_read_back_as_they_were_counted(monkeypatch, batch: int, tmp_path: Path) -> None:
    # a piece's counts go to the tally in key order, a packed batch at a time, without being
    # unpacked; unpacked (a summary counted in memory), they are the counts as they were
    import pickle

    monkeypatch.setattr(Repeats, "_BATCH", batch)
    rnd = random.Random(batch)
    made = Repeats(report._reach, report._customer_label)   # as 汇总 counts customers
    for _ in range(200):
        phone = f"1380000{rnd.randrange(60):04d}"
        made.add({"customer_phone": phone, "customer_name": rnd.choice(["", "张三", "李四"])})
    made.add({"customer_name": ""})   # no key: not counted
    plain = Repeats(str)
    for w in ["门店", "服务", "服务", "价格"] * 3 + ["退款"]:
        plain.add(w)
    for rep in (made, plain):
        want = (list(rep.labelled()), dict(rep.counts), dict(rep._first), dict(rep._names), rep.rows(None),
                rep.repeated())
        back = pickle.loads(pickle.dumps(rep))
        assert "_packed" in back.__dict__ and len(back.__dict__["_packed"]) == -(-len(rep.counts) // batch)
        assert list(back.labelled()) == want[0] == sorted(want[0])
        assert "_packed" in back.__dict__   # read, still packed
        assert (list(back.labelled()), dict(back.counts), dict(back._first), dict(back._names), back.rows(None),
                back.repeated()) == want
    # into the tally from the packed batches, as the counts themselves would go
    tally = ChainTally(tmp_path / "t.sqlite")
    tally.sync("S1", SimpleNamespace(token="a", summary=SimpleNamespace(customers=pickle.loads(pickle.dumps(made)),
                                                                       subjects=plain), cases=[]))
    tally.settle({"S1"})
    assert tally.rows("c", 100) == made.rows(100) and tally.rows("s") == plain.rows()
    tally.close()
