"""Generated hostile workbooks are read or rejected cleanly: never another exception, never a hang.

The CI run keeps 100 examples; ``bench/fuzz_reader.py`` runs 10,000 and prints the figures.
"""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_workbook_isolated
from complaint_core.model import ComplaintTable
from complaint_core.reader import read_workbook
from tests.support.workbooks import write_malformed_workbook


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_malformed_workbooks_are_read_or_rejected(tmp_path, seed):
    path = tmp_path / f"fuzz{seed}.xlsx"
    kind = write_malformed_workbook(path, random.Random(seed))
    t = time.perf_counter()
    try:
        table = read_workbook(path)
    except UnreadableWorkbook as exc:
        assert exc.reason and "\n" not in str(exc) and str(path) in str(exc), (kind, exc)
    else:
        assert isinstance(table, ComplaintTable)
        assert all(r.row > table.header_row for r in table.rows), kind
    assert time.perf_counter() - t < 5, kind


def test_huge_dimension_through_isolation(tmp_path):
    rng = random.Random(0)
    for i in range(200):
        path = tmp_path / f"d{i}.xlsx"
        if "huge-dimension" in write_malformed_workbook(path, rng):
            break
    else:
        raise AssertionError("generator never produced a claimed 1,048,576-row sheet")
    t = time.perf_counter()
    try:
        read_workbook_isolated(path, timeout=10)
    except UnreadableWorkbook as exc:
        assert str(path) in str(exc)
    assert time.perf_counter() - t < 10
