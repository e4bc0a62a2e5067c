"""Several shop files read at once in killable children, each file with its own limits, nothing lost or mixed up."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import cast

import pytest

from complaint_core.errors import UnreadableWorkbook
from complaint_core.isolate import read_many_isolated, time_limit
from complaint_core.reader import read_workbook
from complaint_core.store.codec import Prepared, foreign_shop_findings, prepare
from complaint_core.validate import validate_table
from tests.support.workbooks import NOW, inject_defects, sample_rows, write_shop_workbook

ODD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "odd"


def test_many_files_each_once_with_findings_and_failures(tmp_path: Path) -> None:
    good = [write_shop_workbook(tmp_path / f"S{i}.xlsx", sample_rows(40 + i, seed=i, now=NOW, shop=f"S{i}"))
            for i in range(5)]
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good[0].read_bytes()[:700])   # a half-copied file
    hostile = [ODD / "phpspreadsheet__oleloop.xls", ODD / "poi__poc-xmlbomb.xlsx"]
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=9, now=NOW))
    paths = [*good, broken, *hostile, big]
    got = dict(read_many_isolated(paths, now=NOW, jobs=2, memory_mb=2048))
    assert set(got) == set(paths)
    for p in good:
        table = read_workbook(p)
        findings = validate_table(table, now=NOW)
        # what the store needs, made in the child: the same as made here
        assert got[p] == prepare(table, findings, p)
        # every row names shop S<i>: the file speaks for it (no 设置 code), no row is foreign
        assert not foreign_shop_findings(table, p)
        assert got[p].findings == len(findings) and len(got[p].rows) == len(table.rows)
    for p in (broken, *hostile):
        assert isinstance(got[p], UnreadableWorkbook) and p.name in str(got[p]) and "\n" not in str(got[p])
    # sent back in slices, and kept pickled while it waited its turn: the same as made here
    table = read_workbook(big)
    assert len(got[big].rows) == 3000 and got[big] == prepare(table, validate_table(table, now=NOW), big)


def test_a_file_read_ahead_waits_pickled_and_is_unpacked_a_slice_at_a_time(tmp_path: Path) -> None:
    # the file read ahead of the one being stored waits as its pickled slices (issue 17: a
    # chain of long files held two files' rows at once), and past a few MB in a temporary
    # file; its rows are unpickled a slice at a time as they are gone through, and are the
    # file as sent
    from complaint_core import isolate
    from tests.support.pipe import through_the_pipe

    rows_in = sample_rows(1234, seed=3, now=NOW)
    inject_defects(rows_in, now=NOW)   # findings to send too
    shop = write_shop_workbook(tmp_path / "S.xlsx", rows_in)
    table = read_workbook(shop)
    prepared = prepare(table, validate_table(table, now=NOW), shop)
    assert len(prepared.findings_json) > 300
    packed = through_the_pipe(prepared)
    rows = packed.rows
    assert packed.prepared.rows == [] and len(rows._spool) == 3 and rows._spool._file is None
    opened = packed.open()
    assert opened == prepared and opened.rows is rows and len(rows) == 1234
    assert rows[0] == prepared.rows[0] and rows[-1] == prepared.rows[-1] and rows[700] == prepared.rows[700]
    assert rows[499:502] == prepared.rows[499:502] and list(rows) == list(prepared.rows)
    loads = []
    real = isolate.pickle.loads
    with pytest.MonkeyPatch.context() as mp_:
        mp_.setattr(isolate.pickle, "loads", lambda b: loads.append(len(b)) or real(b))
        first = next(iter(rows))
    assert first == prepared.rows[0] and len(loads) == 1   # one slice, not the file
    with pytest.raises(IndexError):
        rows[1234]
    rows.close()

    with pytest.MonkeyPatch.context() as mp_:
        mp_.setattr(isolate, "_IN_MEMORY", 100_000)
        # the findings' JSON in pieces of 100 bytes, set aside as they come
        mp_.setattr(isolate, "_FINDINGS_PIECE", 100)
        waiting = through_the_pipe(prepared)
        on_disk = waiting.rows
    # beyond the budget: a temporary file, the slices moved there one by one
    assert on_disk._spool._file is not None and on_disk._spool._held is None and on_disk == prepared.rows
    assert len(waiting._findings) == -(-len(prepared.findings_json) // 100) and waiting._findings._file is not None
    kept = waiting.open().findings_json   # apart, in its file, until stored
    assert not isinstance(kept, bytes) and len(kept) == len(prepared.findings_json)
    assert b"".join(kept.pieces()) == prepared.findings_json
    on_disk.close()


def test_a_spool_gives_back_each_piece_in_memory_or_in_its_file() -> None:
    from complaint_core import isolate

    pieces = [bytes([n]) * (n * 37 % 101) for n in range(60)]
    for limit in (10**9, 500, 0):
        spool = isolate._Spool(limit)
        for piece in pieces:
            spool.add(piece)
        assert (spool._file is None) == (limit == 10**9)
        assert [spool.get(n) for n in range(len(spool))] == pieces and spool.all() == b"".join(pieces)
        assert spool.get(3) == pieces[3]   # read back in any order
        spool.close()


def test_each_child_keeps_its_own_limits(tmp_path: Path) -> None:
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    small = write_shop_workbook(tmp_path / "small.xlsx", sample_rows(5, seed=2, now=NOW))
    got = dict(read_many_isolated([big, small], now=NOW, jobs=2, memory_mb=4))
    assert isinstance(got[big], UnreadableWorkbook)        # killed by its memory limit, and said so
    assert "memory limit" in got[big].reason and "reader crashed" not in got[big].reason
    other = write_shop_workbook(tmp_path / "other.xlsx", sample_rows(3000, seed=3, now=NOW))
    t = time.perf_counter()
    got = dict(read_many_isolated([big, other], now=NOW, jobs=2, timeout=0.001, per_mb=0))
    assert all(isinstance(v, UnreadableWorkbook) and "timed out" in v.reason for v in got.values())
    assert all("读取超过 0.001 秒" in v.reason for v in got.values())   # the limit it had, said
    assert time.perf_counter() - t < 5


def test_a_bigger_file_gets_more_time(tmp_path: Path) -> None:
    # The limit is there for a file that hangs the parser: a shop with years of history in one
    # workbook must not be refused at every retry because reading it takes longer than a
    # day's file. Each MB of the file adds per_mb seconds to the base.
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    size = big.stat().st_size
    assert size > 300_000
    got = dict(read_many_isolated([big], now=NOW, timeout=0.001, per_mb=120))
    assert not isinstance(got[big], UnreadableWorkbook), got[big]
    assert len(got[big].rows) == 3000
    # a small hostile file keeps the base, and the message names the limit the file had
    assert time_limit(20, 10_000) < 20.1
    got = dict(read_many_isolated([big], now=NOW, timeout=0.001, per_mb=0.001))
    limit = time_limit(0.001, size, 0.001)
    assert isinstance(got[big], UnreadableWorkbook)
    assert f"读取超过 {limit:.3g} 秒" in got[big].reason


def test_the_reading_child_loads_no_spreadsheet_writer(tmp_path: Path) -> None:
    # Reader children are started again and again: a library imported there is paid each time.
    # openpyxl (with numpy behind it) cost 0.25 s per file, more than the reading, when a
    # finding needed a column letter.
    import subprocess
    import sys

    rows = sample_rows(30, seed=4, now=NOW)
    rows[3]["received_at"] = "2026年13月40日"          # findings name their cell: A1 letters
    path = write_shop_workbook(tmp_path / "S1.xlsx", rows)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from datetime import datetime\n"
        "import python_calamine, complaint_core.reader, complaint_core.validate, complaint_core.store.codec\n"
        "before = set(sys.modules)\n"
        "from complaint_core.isolate import _work\n"
        f"got = _work({str(path)!r}, 4096, datetime({NOW.year}, {NOW.month}, {NOW.day}))\n"
        "assert got[0] == 'ok' and got[1].findings > 0, got\n"
        "print(sorted(m for m in set(sys.modules) - before if '.' not in m))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.strip()
    for heavy in ("openpyxl", "xlsxwriter", "numpy", "pandas"):
        assert f"'{heavy}'" not in loaded, loaded


def test_a_child_reads_many_files_and_a_failure_stays_with_its_file(tmp_path: Path) -> None:
    # One child reads file after file (a new process per file cost a third more, issue 17).
    # A hostile file between good ones ends its child; the files after it are still read,
    # each answer belongs to its own file, and a file that crashed a used child is tried
    # once more in a fresh one before it is called unreadable.
    from complaint_core import isolate

    good = [write_shop_workbook(tmp_path / f"S{i}.xlsx", sample_rows(30 + i, seed=i, now=NOW, shop=f"S{i}"))
            for i in range(8)]
    before = isolate._STARTED[0]
    got = list(read_many_isolated(good, now=NOW, jobs=2))
    assert isolate._STARTED[0] - before == 2
    assert [p for p, _ in sorted(got)] == sorted(good)
    for p, prepared in got:
        table = read_workbook(p)
        assert prepared == prepare(table, validate_table(table, now=NOW), p)

    crash = ODD / "phpspreadsheet__oleloop.xls"     # calamine aborts the process on it
    bomb = ODD / "poi__poc-xmlbomb.xlsx"            # refused by a check: its child stays
    order = [good[0], crash, good[1], bomb, good[2], good[3]]
    before = isolate._STARTED[0]
    got = dict(read_many_isolated(order, now=NOW, jobs=1))
    # child 1: S0, the crash; child 2 (fresh): the crash again, then leaves; child 3: the rest
    assert isolate._STARTED[0] - before == 3
    # it allocates without end: stopped by the child's memory limit, and said so
    assert "memory limit" in str(got[crash]) and crash.name in str(got[crash])
    assert "XML" in cast(UnreadableWorkbook, got[bomb]).reason
    for p in (good[0], good[1], good[2], good[3]):
        table = read_workbook(p)
        assert got[p] == prepare(table, validate_table(table, now=NOW), p)


def test_a_file_that_ran_a_used_child_out_of_memory_is_read_in_a_fresh_one(tmp_path: Path) -> None:
    from complaint_core import isolate

    # the limit counts beyond what the child maps before it reads (about 50 MB, more or less
    # by whether its modules come compiled): 20 rows take under 1 MB more, 3,000 rows 12-16
    small = [write_shop_workbook(tmp_path / f"s{i}.xlsx", sample_rows(20, seed=i, now=NOW)) for i in range(3)]
    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(3000, seed=2, now=NOW))
    before = isolate._STARTED[0]
    got = dict(read_many_isolated([small[0], small[1], big, small[2]], now=NOW, jobs=1, memory_mb=4))
    assert isolate._STARTED[0] - before == 3     # the big file had a child of its own, and failed there too
    # the parser aborts on the failed allocation (no MemoryError reaches Python): its own words
    # on stderr tell the limit from a broken file
    assert isinstance(got[big], UnreadableWorkbook) and "memory limit" in got[big].reason
    assert all(len(cast(Prepared, got[p]).rows) == 20 for p in small)
    # within the limit, the same four files need one child
    before = isolate._STARTED[0]
    got = dict(read_many_isolated([small[0], small[1], big, small[2]], now=NOW, jobs=1, memory_mb=2048))
    assert isolate._STARTED[0] - before == 1 and len(cast(Prepared, got[big]).rows) == 3000


def test_a_big_file_leaves_its_child_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the heap a big file grew is not kept for the small files after it
    from complaint_core import isolate

    files = [write_shop_workbook(tmp_path / f"s{i}.xlsx", sample_rows(10 + 200 * (i == 1), seed=i, now=NOW))
             for i in range(4)]
    monkeypatch.setattr(isolate, "BIG_FILE", (files[1].stat().st_size + files[0].stat().st_size) // 2)
    before = isolate._STARTED[0]
    got = dict(read_many_isolated(files, now=NOW, jobs=1))
    assert isolate._STARTED[0] - before == 2     # s0 and s1 in the first child, s2 and s3 in the next
    assert [len(cast(Prepared, got[p]).rows) for p in files] == [10, 210, 10, 10]


def _reader_pids() -> set[int]:
    """The reader children alive now: children of this process's forkserver (Linux /proc)."""
    def ppid(pid: str) -> int:
        try:
            state, parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            return -1
        return -1 if state == "Z" else int(parent)   # an exited child not yet reaped is not alive

    def cmdline(pid: str) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""

    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
    servers = {int(p) for p in pids if ppid(p) == os.getpid() and b"forkserver" in cmdline(p)}
    return {int(p) for p in pids if ppid(p) in servers}


def test_a_child_killed_between_files_costs_no_file(tmp_path: Path) -> None:
    # The system may kill a reader (the OOM killer, a user's task manager) while it waits for
    # its next file or reads it: that file is read again in a fresh child, nothing is lost.
    files = [write_shop_workbook(tmp_path / f"s{i}.xlsx", sample_rows(15 + i, seed=i, now=NOW)) for i in range(5)]
    others = _reader_pids()   # children of earlier tests still on their way out
    reading = read_many_isolated(files, now=NOW, jobs=1)
    first = next(reading)
    (child,) = _reader_pids() - others
    os.kill(child, signal.SIGKILL)
    got = dict([first, *reading])
    assert [len(cast(Prepared, got[p]).rows) for p in files] == [15, 16, 17, 18, 19]
    deadline = time.monotonic() + 5
    while _reader_pids() - others and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _reader_pids() - others   # and none is left behind


def _left(pid: int) -> list[str]:
    import tempfile

    return [p.name for p in Path(tempfile.gettempdir()).glob(f"complaint-desk-reader-{pid}-*")]


def test_no_reader_leaves_a_file_behind(tmp_path: Path) -> None:
    # Each reader's stderr goes to a temporary file (why it died, if it dies). None is left
    # behind: not after a batch, not after a crash, not when the daemon itself is killed.
    import subprocess
    import sys

    files = [write_shop_workbook(tmp_path / f"s{i}.xlsx", sample_rows(20, seed=i, now=NOW)) for i in range(3)]
    crash = ODD / "phpspreadsheet__oleloop.xls"
    got = dict(read_many_isolated([files[0], crash, files[1]], now=NOW, jobs=2, memory_mb=512))
    assert isinstance(got[crash], UnreadableWorkbook) and not _left(os.getpid())
    code = (
        "import os, signal, sys\n"
        "from datetime import datetime\n"
        "from pathlib import Path\n"
        "from complaint_core.isolate import read_many_isolated\n"
        f"files = [Path(p) for p in {[str(f) for f in files]!r}]\n"
        f"reading = read_many_isolated(files, now=datetime({NOW.year}, {NOW.month}, {NOW.day}), jobs=2)\n"
        "next(reading)\n"
        "print(os.getpid(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)   # the daemon dies with readers busy or idle\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _left(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _left(pid)


def test_files_left_when_the_daemon_and_its_readers_died_together_are_swept(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A PC switched off, or the whole process group killed: neither the reader nor the daemon
    # deletes the reader's stderr file. The next daemon's first reader deletes the files of
    # processes that are gone, and no file of a running one (its own, another daemon's).
    import subprocess
    import sys

    from complaint_core import isolate

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = tmp_path / f"complaint-desk-reader-{gone}-abc.txt"
        running = tmp_path / f"complaint-desk-reader-{other.pid}-def.txt"
        unrelated = tmp_path / f"complaint-desk-readers-{gone}.txt"
        for f in (left, running, unrelated):
            f.write_bytes(b"memory allocation of 1 bytes failed")
        monkeypatch.setattr(isolate, "_SWEPT", [False])
        shop = write_shop_workbook(tmp_path / "s.xlsx", sample_rows(5, seed=1, now=NOW))
        got = dict(read_many_isolated([shop], now=NOW, jobs=1))
        assert not isinstance(got[shop], UnreadableWorkbook)
        assert not left.exists() and running.exists() and unrelated.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f"complaint-desk-reader-{os.getpid()}-")]
    finally:
        other.kill()
        other.wait()
    assert isolate.sweep_stale_errors(str(tmp_path)) == 1 and not running.exists()


def test_a_caller_that_stops_early_leaves_no_child(tmp_path: Path) -> None:
    # The daemon may stop storing half-way (its store failed, the user pressed Ctrl+C): the
    # children reading ahead for it stop too, at once, busy or idle.
    files = [write_shop_workbook(tmp_path / f"s{i}.xlsx", sample_rows(300, seed=i, now=NOW)) for i in range(6)]
    others = _reader_pids()
    reading = read_many_isolated(files, now=NOW, jobs=2)
    next(reading)
    assert _reader_pids() - others
    t = time.monotonic()
    reading.close()
    assert time.monotonic() - t < 5
    deadline = time.monotonic() + 5
    while _reader_pids() - others and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _reader_pids() - others


def test_the_forkserver_started_early_serves_readers_without_the_callers_main(tmp_path: Path) -> None:
    # warm_children starts the readers' forkserver while the daemon still hashes the files; the
    # readers it then forks never import the caller's main module (the CLI: start_child)
    import subprocess
    import sys

    path = write_shop_workbook(tmp_path / "S1.xlsx", sample_rows(5, seed=2, now=NOW))
    marker = tmp_path / "main-imported-again"
    script = tmp_path / "caller.py"
    script.write_text(
        "import os, sys, time\n"
        f"if __name__ != '__main__':\n    open({str(marker)!r}, 'w').close()\n"
        "else:\n"
        f"    sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "    from complaint_core.isolate import read_tables_isolated, warm_children\n"
        "    warm_children()\n"
        "    time.sleep(1.0)   # the forkserver imports meanwhile\n"
        # a process of another test may end between the listing and the look (flaky in CI)
        "    def look(p, what):\n"
        "        try:\n"
        "            return open(f'/proc/{p}/{what}').read()\n"
        "        except OSError:\n"
        "            return ''\n"
        "    kids = [p for p in os.listdir('/proc') if p.isdigit() and\n"
        "            look(p, 'stat').rsplit(')', 1)[-1].split()[1:2] == [str(os.getpid())]]\n"
        "    cmds = [look(p, 'cmdline') for p in kids]\n"
        "    assert any('multiprocessing.forkserver' in c for c in cmds), cmds\n"
        f"    assert len(read_tables_isolated({str(path)!r})[0].rows) == 5\n"
        "    print('ok')\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert not marker.exists()


def test_running_out_of_memory_while_reading_is_said_so_not_taken_for_a_damaged_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a MemoryError raised in Python (not the parser's abort) while a sheet's rows are made was
    # reported as "工作簿无法解析，文件可能已损坏" and never read again in a fresh child
    from complaint_core import isolate, reader

    path = write_shop_workbook(tmp_path / "s.xlsx", sample_rows(5, seed=1, now=NOW))

    def short(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(reader, "tables_from_grid", short)
    with pytest.raises(MemoryError):
        reader.read_tables(path)
    assert isolate._work(str(path), 2048, NOW) == ("error", "UnreadableWorkbook", isolate._over(2048), "memory")


def test_a_full_temp_folder_is_said_as_such_and_the_next_file_is_read(tmp_path: Path, monkeypatch) -> None:
    # a big file's rows wait in a temporary file: when the temp folder is full, that file is
    # not merged this time and the reason says why (not "the reader crashed"); the next file
    # is read by a fresh child
    import errno

    from complaint_core import isolate

    big = write_shop_workbook(tmp_path / "big.xlsx", sample_rows(700, seed=1, now=NOW))
    small = write_shop_workbook(tmp_path / "small.xlsx", sample_rows(20, seed=2, now=NOW))

    def full(self: isolate.PackedRows, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(isolate.PackedRows, "add", full)
    before = isolate._STARTED[0]
    got = dict(read_many_isolated([big, small], now=NOW, jobs=1))
    assert isinstance(got[big], UnreadableWorkbook) and "temp folder" in got[big].reason
    assert "No space left" in got[big].reason and "crashed" not in got[big].reason
    table = read_workbook(small)
    assert got[small] == prepare(table, validate_table(table, now=NOW), small)
    assert isolate._STARTED[0] - before == 2
