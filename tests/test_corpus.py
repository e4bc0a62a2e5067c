"""Every real-world workbook in ../shared/corpus is read or cleanly rejected, each in < 10 s.

The reader runs in a killable child (complaint_core.isolate), as the daemon uses it, so the
.xls that makes python-calamine abort the process and the files with a claimed
1,048,576-row range cannot take the test process down.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_workbook_isolated

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in ("README.md", "PROBE.md", "MANIFEST.tsv"))


def test_corpus_is_present():
    assert len(FILES) == 468, f"expected the 468 corpus files beside the repo at {CORPUS}"


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(4))
def test_every_corpus_file_is_read_or_rejected(chunk):
    failures = []
    for path in FILES[chunk::4]:
        t = time.perf_counter()
        try:
            table = read_workbook_isolated(path, timeout=10)
            assert table.rows is not None
        except UnreadableWorkbook as exc:
            # One line naming the file and a reason; never a bare traceback.
            if str(path) not in str(exc) or "\n" in str(exc) or not exc.reason:
                failures.append(f"{path.name}: unclear message {exc!r}")
        took = time.perf_counter() - t
        if took >= 10:
            failures.append(f"{path.name}: {took:.1f} s")
    assert not failures, "\n".join(failures)


def test_known_hostile_files_get_the_right_reason():
    odd = CORPUS / "odd"
    cases = {
        "phpspreadsheet__oleloop.xls": ".xls",
        "poi__poc-xmlbomb.xlsx": "XML",
        "poi__Simple.xlsb": "xlsb",
    }
    for name, reason in cases.items():
        with pytest.raises(UnreadableWorkbook) as err:
            read_workbook_isolated(odd / name)
        assert reason in err.value.reason, (name, err.value.reason)
    for name in ("calamine__issue_174.xlsx", "phpspreadsheet__issue.3982.xlsx"):
        t = time.perf_counter()
        with pytest.raises(UnreadableWorkbook):
            read_workbook_isolated(odd / name)
        assert time.perf_counter() - t < 10


def test_isolation_survives_a_crashing_child(tmp_path):
    # A child that dies (here: killed by its memory limit on a big but valid file) becomes
    # an UnreadableWorkbook, not a crash of the caller.
    from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

    path = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    with pytest.raises(UnreadableWorkbook, match="big.xlsx"):
        read_workbook_isolated(path, memory_mb=4)   # beyond the interpreter's own: 3,000 rows take 12-16
    assert len(read_workbook_isolated(path).rows) == 3000
