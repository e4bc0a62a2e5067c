"""Hypothesis properties of merging: idempotent, and independent of the order files arrive in.

Real workbooks on disk, a real SQLite store: each example merges the same shop files in a
drawn order (one folder at a time, some merged twice) and must end with exactly the records of
a single merge of everything, with no extra version recorded by the repeats.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from complaint_core.store import open_store
from complaint_core.store.tables import row_versions
from sync.api import merge_once
from tests.support.workbooks import NOW, sample_rows, write_rows

SHOPS = ("SH01", "SH02", "SH03", "SH04")
_CACHE: dict[str, Path] = {}


def _shop_files() -> Path:
    """Four shops written once per test process; two share a complaint id (a conflict)."""
    if "root" not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix="cd-prop-"))
        for i, shop in enumerate(SHOPS):
            rows = sample_rows(6, seed=40 + i, now=NOW, shop=shop)
            if shop == "SH02":
                rows[0]["complaint_id"] = "SH01-SHARED-001"
                rows[0]["shop"] = "SH01"
            if shop == "SH01":
                rows[0]["complaint_id"] = "SH01-SHARED-001"
            (root / shop).mkdir()
            write_rows(root / shop / f"{shop}.xlsx", rows, shop=shop)
        _CACHE["root"] = root
    return _CACHE["root"]


def _snapshot(state: Path) -> tuple[list, int]:
    store = open_store(state)
    records = [(r["record_id"], r["content_hash"], r["source_file"].split("/")[-1], r["deleted"])
               for r in store.current_records()]
    with store.engine.connect() as c:
        versions = c.execute(select(func.count()).select_from(row_versions)).scalar_one()
    store.engine.dispose()
    return sorted(records), versions


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(SHOPS), repeats=st.lists(st.sampled_from(SHOPS), max_size=3))
def test_merge_is_idempotent_and_order_independent(order, repeats):
    root = _shop_files()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = {s: root / s for s in SHOPS}
        merge_once(list(folders.values()), work / "all.xlsx", state_url=str(work / "all.db"), now=NOW)
        expected = _snapshot(work / "all.db")
        for shop in list(order) + list(repeats):
            merge_once([folders[shop]], work / "step.xlsx", state_url=str(work / "step.db"), now=NOW)
        merge_once(list(folders.values()), work / "step.xlsx", state_url=str(work / "step.db"), now=NOW)
        got = _snapshot(work / "step.db")
    assert got == expected


def teardown_module() -> None:
    if "root" in _CACHE:
        shutil.rmtree(_CACHE["root"], ignore_errors=True)
