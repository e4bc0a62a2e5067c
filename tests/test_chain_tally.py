"""汇总's chain-wide repeat counts (merged/pieces.py ``ChainTally``) are the same whether the
totals are kept up to date shop by shop (one shop's save) or summed again at the end of a
write that changed many shops (a first write), across writes, re-saves and shops leaving."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from complaint_core.merged.pieces import ChainTally
from complaint_core.merged.report import Repeats


def _piece(token: str, customers: dict[str, int], subjects: dict[str, int]) -> SimpleNamespace:
    c, s = Repeats(str), Repeats(str)
    c.counts.update(customers)
    s.counts.update(subjects)
    return SimpleNamespace(token=token, summary=SimpleNamespace(customers=c, subjects=s))


def _expected(held: dict[str, SimpleNamespace], what: str) -> tuple[list[list[object]], int]:
    total: Counter[str] = Counter()
    for piece in held.values():
        total.update((piece.summary.customers if what == "c" else piece.summary.subjects).counts)
    rows = sorted(([k, n] for k, n in total.items() if n > 1), key=lambda r: (-r[1], r[0]))
    return rows[:20], sum(1 for n in total.values() if n > 1)


@pytest.mark.parametrize("recount_from", [1, 3, 10**9])
@pytest.mark.parametrize("seed", range(6))
def test_totals_kept_or_summed_again_agree(tmp_path: Path, monkeypatch, recount_from: int, seed: int) -> None:
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
        tally.keep(set(shops))
        for what in ("c", "s"):
            rows, repeated = _expected(held, what)
            assert tally.rows(what) == rows and tally.repeated(what) == repeated, (write, what)
        tally.close()
