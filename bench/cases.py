"""One measured operation per function; each runs in its own child process (see run.py).

Every function returns ``{"seconds": op time, "rows": data rows handled, ...}``; imports and
input preparation are outside the timed part, as in shared/research/xlsx-io-floor.md.
A product function that does not exist in this tree raises ``Absent`` so the table says so.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import shop_file, shop_set  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0)


class Absent(Exception):
    """The product module this case measures is not in the tree."""


def _scratch() -> str:
    """A temporary folder removed when the case's process ends: a 100 x 1,000 merge leaves a
    500 MB store and a 75 MB workbook, and a day of runs would fill the disk."""
    import atexit

    folder = tempfile.mkdtemp(prefix="cd-bench-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _need(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise Absent(f"{module}.{name} absent") from exc


# ---- (1) reading one shop workbook -------------------------------------------------------
def read_floor(n: int) -> dict:
    from python_calamine import CalamineWorkbook

    p = shop_file(n)
    t = time.perf_counter()
    grid = CalamineWorkbook.from_path(str(p)).get_sheet_by_name("投诉登记").to_python()
    return {"seconds": time.perf_counter() - t, "rows": len(grid) - 1}


def read_openpyxl(n: int) -> dict:
    from openpyxl import load_workbook

    p = shop_file(n)
    t = time.perf_counter()
    wb = load_workbook(p, read_only=True)
    rows = [list(r) for r in wb["投诉登记"].iter_rows(values_only=True)]
    wb.close()
    return {"seconds": time.perf_counter() - t, "rows": len(rows) - 1}


def read_ours(n: int) -> dict:
    read_workbook = _need("complaint_core.reader", "read_workbook")
    p = shop_file(n)
    t = time.perf_counter()
    table = read_workbook(p)
    return {"seconds": time.perf_counter() - t, "rows": len(table.rows)}


def read_validate_ours(n: int) -> dict:
    read_workbook = _need("complaint_core.reader", "read_workbook")
    validate_table = _need("complaint_core.validate", "validate_table")
    p = shop_file(n)
    t = time.perf_counter()
    table = read_workbook(p)
    findings = validate_table(table, now=NOW)
    return {"seconds": time.perf_counter() - t, "rows": len(table.rows), "findings": len(findings)}


# ---- (2) full merge ----------------------------------------------------------------------
def merge_floor(shops: int, rows: int) -> dict:
    """Raw read of every cell + XlsxWriter constant_memory write of the same cells."""
    import xlsxwriter
    from python_calamine import CalamineWorkbook

    files = shop_set(shops, rows)
    out = Path(_scratch()) / "merged.xlsx"
    t = time.perf_counter()
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    ws = wb.add_worksheet("汇总")
    r = 0
    for i, f in enumerate(files):
        grid = CalamineWorkbook.from_path(str(f)).get_sheet_by_name("投诉登记").to_python()
        for line in grid[0 if i == 0 else 1:]:
            ws.write_row(r, 0, [None if v == "" else v for v in line])
            r += 1
    wb.close()
    return {"seconds": time.perf_counter() - t, "rows": r - 1}


def _floor_records(files: list[Path]) -> list[dict]:
    """The floor's read: calamine's raw read of every cell, '' -> None, one dict per row."""
    from python_calamine import CalamineWorkbook

    records: list[dict] = []
    for f in files:
        grid = CalamineWorkbook.from_path(str(f)).get_sheet_by_name("投诉登记").to_python()
        head = [str(h) for h in grid[0]]
        records += [{h: (None if v == "" else v) for h, v in zip(head, line, strict=False)} for line in grid[1:]]
    return records


def _floor_rust(shops: int, rows: int, clock: Callable[[], float]) -> dict:
    """The fastest writer's floor (shared/research/xlsx-io-floor.md): calamine's raw read of
    every cell, '' -> None, one dict per row, rustpy-xlsxwriter (Rust) writes one sheet;
    timed by ``clock`` (the time it takes, or the CPU it uses)."""
    rustpy = _need("rustpy_xlsxwriter", "write_worksheets")
    files = shop_set(shops, rows)
    out = Path(_scratch()) / "merged.xlsx"
    t = clock()
    records = _floor_records(files)
    rustpy([("汇总", records)], str(out))
    return {"seconds": clock() - t, "rows": len(records)}


def merge_floor_rust(shops: int, rows: int) -> dict:
    return _floor_rust(shops, rows, time.perf_counter)


def merge_pandas(shops: int, rows: int) -> dict:
    """The script a user would write: read_excel each, concat, to_excel."""
    import pandas as pd

    files = shop_set(shops, rows)
    out = Path(_scratch()) / "merged.xlsx"
    t = time.perf_counter()
    df = pd.concat([pd.read_excel(f, sheet_name="投诉登记") for f in files], ignore_index=True)
    df.to_excel(out, index=False)
    return {"seconds": time.perf_counter() - t, "rows": len(df)}


def _merge_env(shops: int, rows: int) -> tuple[Any, Path, Path, str]:
    merge_once = _need("sync.api", "merge_once")
    files = shop_set(shops, rows)
    work = Path(_scratch())
    return merge_once, files[0].parent, work / "merged.xlsx", f"sqlite:///{work / 'state.sqlite'}"


def _call_merge(merge_once: Any, folder: Path, out: Path, url: str) -> Any:
    # every path renders every sheet of the contract (汇总, 逾期 and 处罚 included)
    report = merge_once([folder], out, state_url=url, now=NOW)
    if report.failed or report.written is None:   # a figure of a merge that failed means nothing
        raise RuntimeError(f"merge failed: {report.failed[:1]} {report.write_error}")
    return report


def merge_ours(shops: int, rows: int) -> dict:
    merge_once, folder, out, url = _merge_env(shops, rows)
    t = time.perf_counter()
    report = _call_merge(merge_once, folder, out, url)
    secs = time.perf_counter() - t
    return {"seconds": secs, "rows": report.rows, "files_read": len(report.read),
            "sheets": 7}


def _kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        here = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{here}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{here}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def merge_roles(shops: int, rows: int) -> dict:
    """``merge_ours``, with the peak memory of each kind of process beside it: the merging
    process itself, its reading children and its piece makers (told apart by the names they
    give themselves, ``complaint_core.procname``), sampled from Linux's /proc every 20 ms."""
    from complaint_core.procname import MAKER, READER

    if not os.path.isdir("/proc/self/task"):
        raise Absent("no /proc here: the kinds of process are not told apart")
    merge_once, folder, out, url = _merge_env(shops, rows)
    peaks = {"merging": 0, "readers": 0, "makers": 0}
    roles = {READER: "readers", MAKER: "makers"}
    done = threading.Event()

    def sample() -> None:
        me = os.getpid()
        while not done.is_set():
            peaks["merging"] = max(peaks["merging"], _kb(me))
            for pid in _descendants(me):
                try:
                    with open(f"/proc/{pid}/comm") as fh:
                        role = roles.get(fh.read().strip())
                except OSError:
                    continue
                if role is not None:
                    peaks[role] = max(peaks[role], _kb(pid))
            time.sleep(0.02)

    watch = threading.Thread(target=sample, daemon=True)
    watch.start()
    t = time.perf_counter()
    try:
        report = _call_merge(merge_once, folder, out, url)
    finally:
        secs = time.perf_counter() - t
        done.set()
        watch.join()
    return {"seconds": secs, "rows": report.rows, "files_read": len(report.read),
            **{f"{k}_MiB": round(v / 1024) for k, v in peaks.items()}}


# ---- (2b) where a full merge's CPU goes, stage by stage ----------------------------------
# Each stage runs in one process and is timed in CPU-seconds (``time.process_time``: every
# thread of the process), so the stages add up to the work a merge spreads over the cores;
# the stages before the measured one run untimed to make its input. The merge runs them in
# two reader children, the daemon and two piece makers; on two cores its wall time is at
# least half their sum.
def stage_floor(shops: int, rows: int) -> dict:
    """The fastest-writer floor (``merge_floor_rust``) in CPU-seconds."""
    return _floor_rust(shops, rows, time.process_time)


def stage_floor_read(shops: int, rows: int) -> dict:
    """The floor's reading alone: calamine's raw read of every cell, one dict per row."""
    files = shop_set(shops, rows)
    t = time.process_time()
    records = _floor_records(files)
    return {"seconds": time.process_time() - t, "rows": len(records)}


def stage_floor_write(shops: int, rows: int) -> dict:
    """The floor's writing alone: rustpy-xlsxwriter writes the rows read (untimed) into one sheet."""
    rustpy = _need("rustpy_xlsxwriter", "write_worksheets")
    records = _floor_records(shop_set(shops, rows))
    out = Path(_scratch()) / "merged.xlsx"
    t = time.process_time()
    rustpy([("汇总", records)], str(out))
    return {"seconds": time.process_time() - t, "rows": len(records)}


def _stages(shops: int, rows: int, upto: str) -> tuple[dict, list[tuple[Path, Any]]]:
    """Our reader's stages over every file, ``upto`` timed and the ones before it not:
    (result, [(file, its prepared rows)] when the store is next)."""
    read_tables = _need("complaint_core.reader", "read_tables")
    validate = _need("complaint_core.validate", "validate_tables")
    table_dues = _need("complaint_core.validate", "table_dues")
    prepare = _need("complaint_core.store.codec", "prepare")
    spent, count = 0.0, 0
    kept: list[tuple[Path, Any]] = []   # only what the store needs: a chain's tables would not fit
    for f in shop_set(shops, rows):
        t = time.process_time()
        tables = read_tables(f)
        spent += time.process_time() - t if upto == "read" else 0.0
        count += sum(len(tb.rows) for tb in tables)
        if upto == "read":
            continue
        t = time.process_time()
        dues = [table_dues(tb) for tb in tables]
        findings = validate(tables, now=NOW, dues=dues)
        spent += time.process_time() - t if upto == "check" else 0.0
        if upto == "check":
            continue
        t = time.process_time()
        prepared = prepare(tables, findings, f, dues)
        spent += time.process_time() - t if upto == "prepare" else 0.0
        if upto == "store":
            kept.append((f, prepared))
    return {"seconds": spent, "rows": count}, kept


def stage_read(shops: int, rows: int) -> dict:
    """Reading every file into complaint tables (``reader.read_tables``): what a reader child does first."""
    return _stages(shops, rows, "read")[0]


def stage_check(shops: int, rows: int) -> dict:
    """Every row's deadlines and checks (``validate.table_dues`` + ``validate_tables``)."""
    return _stages(shops, rows, "check")[0]


def stage_prepare(shops: int, rows: int) -> dict:
    """Each row made ready to store (``store.codec.prepare``: JSON, hashes, keys, scan fields)."""
    return _stages(shops, rows, "prepare")[0]


def stage_store(shops: int, rows: int) -> dict:
    """Storing the prepared files in a fresh SQLite store (``ingest_prepared``): the daemon's part."""
    ingest_prepared = _need("complaint_core.store.ingest", "ingest_prepared")
    open_store = _need("complaint_core.store", "open_store")
    result, done = _stages(shops, rows, "store")
    store = open_store(Path(_scratch()) / "state.sqlite")
    t = time.process_time()
    for f, prepared in done:
        st = f.stat()
        ingest_prepared(store, f, prepared, file_hash=f.name, size=st.st_size, mtime=st.st_mtime, now=NOW)
    return {"seconds": time.process_time() - t, "rows": result["rows"]}


def _stored_chain(shops: int, rows: int) -> tuple[Any, Path]:
    """The chain read into a store in memory (untimed): (store, where its workbook goes)."""
    open_store = _need("complaint_core.store", "open_store")
    scan = _need("sync.pipeline", "scan")
    files = shop_set(shops, rows)
    out = Path(_scratch()) / "merged.xlsx"
    store = open_store("sqlite://")
    scan(store, [files[0].parent], out=out, now=NOW)
    return store, out


def stage_decode(shops: int, rows: int) -> dict:
    """The first part of the render: every stored complaint fetched and decoded, shop by shop
    (``Store.shop_records``), as the render's piece makers take them."""
    store, _out = _stored_chain(shops, rows)
    count = 0
    with store.engine.connect() as c:
        names = sorted(store.shop_marks(c))
        t = time.process_time()
        for name in names:
            for records, _conflicts in store.shop_records(name, c):
                count += len(records)
        spent = time.process_time() - t
    return {"seconds": spent, "rows": count}


def stage_write(shops: int, rows: int) -> dict:
    """The writing proper of the biggest sheet: 全部投诉's 4 million cells made into worksheet
    XML and deflated (``RowCodec.encode``, what a piece maker does with a shop's rows), from
    rows made untimed from the decoded complaints. Beside the floor's write of one sheet."""
    number_formats = _need("complaint_core.merged.xlsx", "NUMBER_FORMATS")
    row_codec = _need("complaint_core.merged.xlsx", "RowCodec")
    all_rows = _need("complaint_core.merged.sheets", "AllRows")
    store, _out = _stored_chain(shops, rows)
    make = all_rows()
    # style numbers as a workbook gives them: any distinct numbers encode the same way
    codec = row_codec(make.columns, {kind: 10 + i for i, kind in enumerate(number_formats)})
    spent, count = 0.0, 0
    with store.engine.connect() as c:
        for name in sorted(store.shop_marks(c)):
            for records, _conflicts in store.shop_records(name, c):
                made = [make(r) for r in records]
                t = time.process_time()
                codec.encode(made)
                spent += time.process_time() - t
                count += len(made)
    return {"seconds": spent, "rows": count}


def stage_render(shops: int, rows: int) -> dict:
    """Writing every sheet of the merged workbook from the stored chain (``render_merged``),
    in one process: the store is in memory, which another process cannot open, so no piece
    maker is started and the process's CPU is the whole render's."""
    render_merged = _need("complaint_core.merged.render", "render_merged")
    store, out = _stored_chain(shops, rows)
    t = time.process_time()
    rendered = render_merged(store, out, now=NOW)
    return {"seconds": time.process_time() - t, "rows": rendered.rows}


def machine_cpu() -> list[float] | None:
    """The whole machine's CPU-seconds so far by kind, as Linux's /proc/stat counts them (user,
    nice, system, idle, iowait, irq, softirq, steal, …); None where it is not known."""
    import os

    try:
        with open("/proc/stat") as fh:
            ticks = os.sysconf("SC_CLK_TCK")
            return [int(v) / ticks for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _machine_busy() -> float:
    """CPU-seconds the whole machine has been busy: the merge's children are the forkserver's,
    not this process's, so their CPU is not in this process's times."""
    fields = machine_cpu()
    if fields is None:
        raise Absent("/proc/stat absent (Linux only)")
    # user, nice, system, irq and softirq: not idle, not waiting on the disk, and not the
    # time the host gave this virtual machine's CPUs to another (steal)
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return user + nice + system + irq + softirq


def stage_merge(shops: int, rows: int) -> dict:
    """The whole merge (``merge_once``), as the CPU-seconds the machine was busy during it:
    every stage above in the processes that run them, with what passing work between them
    costs. Run alone: anything else busy on the machine is counted too."""
    merge_once, folder, out, url = _merge_env(shops, rows)
    t = _machine_busy()
    wall = time.perf_counter()
    report = _call_merge(merge_once, folder, out, url)
    cpu = _machine_busy() - t
    return {"seconds": cpu, "rows": report.rows, "wall_s": round(time.perf_counter() - wall, 2)}


# ---- (3) incremental merge ---------------------------------------------------------------
def incremental_floor(shops: int, rows: int) -> dict:
    """Lower bound of an incremental merge: re-read the one changed file (calamine)."""
    from python_calamine import CalamineWorkbook

    f = shop_set(shops, rows)[0]
    t = time.perf_counter()
    grid = CalamineWorkbook.from_path(str(f)).get_sheet_by_name("投诉登记").to_python()
    return {"seconds": time.perf_counter() - t, "rows": len(grid) - 1, "files_read": 1}


def incremental_ours(shops: int, rows: int) -> dict:
    from bench.data import rows_for, write_shop

    merge_once, folder, out, url = _merge_env(shops, rows)
    folder2 = out.parent / "shops"
    shutil.copytree(folder, folder2)
    _call_merge(merge_once, folder2, out, url)
    changed = sorted(folder2.glob("*.xlsx"))[0]
    write_shop(changed, rows_for(rows, shop="S001", seed=99), shop="S001")
    t = time.perf_counter()
    report = _call_merge(merge_once, folder2, out, url)
    secs = time.perf_counter() - t
    return {"seconds": secs, "rows": rows, "files_read": len(report.read),
            "files_skipped": len(report.skipped)}


def render_only(shops: int, rows: int) -> dict:
    """Rewriting the merged workbook from the store alone (no shop file read)."""
    render_merged = _need("complaint_core.merged.render", "render_merged")
    open_store = _need("complaint_core.store", "open_store")
    merge_once, folder, out, url = _merge_env(shops, rows)
    _call_merge(merge_once, folder, out, url)
    store = open_store(url)
    # a workbook of its own: the merged one is unchanged since the merge wrote it, and a render
    # of it would be skipped (see render_unchanged)
    t = time.perf_counter()
    rendered = render_merged(store, out.with_name("merged-again.xlsx"), now=NOW)
    return {"seconds": time.perf_counter() - t, "rows": rendered.rows}


def render_unchanged(shops: int, rows: int) -> dict:
    """render_merged again with nothing changed since the last write (a quiet scan's render)."""
    from datetime import timedelta

    render_merged = _need("complaint_core.merged.render", "render_merged")
    open_store = _need("complaint_core.store", "open_store")
    merge_once, folder, out, url = _merge_env(shops, rows)
    _call_merge(merge_once, folder, out, url)
    store = open_store(url)
    stamp = out.stat().st_mtime_ns
    t = time.perf_counter()
    rendered = render_merged(store, out, now=NOW + timedelta(seconds=1))
    secs = time.perf_counter() - t
    return {"seconds": secs, "rows": rendered.rows, "unchanged": rendered.unchanged,
            "file_untouched": out.stat().st_mtime_ns == stamp}


# ---- (4) save-to-merged latency ----------------------------------------------------------
def _stamp(out: Path) -> int:
    return out.stat().st_mtime_ns if out.exists() else 0


def _replaced(out: Path, before: int, limit: float) -> float:
    """Seconds from now until ``out`` is no longer the file stamped ``before`` (a save has just
    landed: the clock starts here)."""
    t = time.perf_counter()
    while _stamp(out) == before:
        if time.perf_counter() - t > limit:
            raise TimeoutError(f"merged workbook not replaced within {limit:g} s")
        time.sleep(0.01)
    return time.perf_counter() - t


def latency_floor(shops: int, rows: int) -> dict:
    """What a full re-merge costs per save with the floor pipeline (no daemon)."""
    return merge_floor(shops, rows)


def latency_ours(shops: int, rows: int, saves: int, manager_gap: float = 0.0) -> dict:
    """A shop saves; time until the daemon has replaced the merged workbook (median, worst).
    With ``manager_gap``: before each shop's save a manager saves the merged workbook, that many
    seconds earlier (``_manager_save``)."""
    import os
    import statistics

    from bench.data import rows_for, write_shop

    Daemon = _need("sync.daemon", "Daemon")
    files = shop_set(shops, rows, folder=Path(_scratch()) / "shops")
    out = files[0].parent.parent / "merged.xlsx"
    daemon = Daemon([files[0].parent], out, f"sqlite:///{out.parent / 'state.sqlite'}",
                    clock=lambda: NOW)
    daemon.start()
    daemon.merge_now()
    try:
        waits = []
        for i in range(saves):
            before = _stamp(out)
            # the shop's save lands (temp file, then rename: what Excel does) -> clock starts
            # the shop's own code on its 设置 sheet too: a file that named another shop would move
            # its complaints to that shop (what the first measurements of this case did)
            shop = f"S{i % shops + 1:03d}"
            if manager_gap:
                before = _manager_save(out)
                time.sleep(manager_gap)
            write_shop(files[i % shops], rows_for(rows, shop=shop, seed=1000 + i), shop=shop)
            waits.append(_replaced(out, before, 60))
    finally:
        daemon.stop()
    os.sync()
    return {"seconds": statistics.median(waits), "rows": shops * rows, "worst": max(waits),
            "settle_s": daemon.settle, "quick_settle_s": getattr(daemon, "quick_settle", None)}


def _manager_save(out: Path) -> int:
    """The merged workbook saved as a manager's Excel saves it (a finished copy renamed onto it,
    a new modification time); its stamp. The cells are those of the last write: reading them
    back costs what reading a manager's typing costs (every 记录标识 and manager column)."""
    import os

    tmp = out.with_name(f".~{out.stem}.saving")
    shutil.copyfile(out, tmp)
    os.replace(tmp, out)
    return _stamp(out)


def latency_manager(shops: int, rows: int, saves: int) -> dict:
    """``latency_ours`` with a manager's save of the merged workbook 10 s before each shop's
    save (the daemon reads a save once it has been still for 5 s: ``sync.daemon.OUT_SETTLE``)."""
    return latency_ours(shops, rows, saves, manager_gap=10.0)


def _shop_folders(work: Path, shops: int, rows: int, years: int = 0) -> list[Path]:
    """One shared folder per shop (门店001 …), each holding its shop's workbook."""
    folders = []
    for i, f in enumerate(shop_set(shops, rows, years=years), start=1):
        folder = work / "shared" / f"门店{i:03d}"
        folder.mkdir(parents=True)
        shutil.copy(f, folder / "投诉登记.xlsx")
        folders.append(folder)
    return folders


def _save_shop(folder: Path, k: int, i: int, rows: int) -> None:
    """The ``i``-th save of shop ``k``'s workbook, as Excel saves it: ``rows`` new rows written
    under an extension-less temp name, renamed onto the workbook."""
    import os

    from bench.data import rows_for, write_shop

    tmp = folder / f"{i:08X}"
    write_shop(tmp, rows_for(rows, shop=f"S{k + 1:03d}", seed=2000 + i), shop=f"S{k + 1:03d}")
    os.replace(tmp, folder / "投诉登记.xlsx")


def _watched_saves(sources: list[Path], out: Path, saves: int, save: Callable[[int], None]) -> list[float]:
    """``complaint-desk sync --watch`` over ``sources`` in a process of its own, the real clock:
    after its first merge, ``save(i)`` lands each save, a second apart (each its own merge).
    Seconds from each save landing until ``out`` is replaced."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "complaint_desk", "sync", *[a for f in sources for a in ("--source", str(f))],
           "--out", str(out), "--watch"]
    daemon = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + 600
        while not out.exists():   # the first merge of every shop
            if daemon.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"sync --watch made no merged workbook (exit code {daemon.poll()})")
            time.sleep(0.1)
        time.sleep(2)   # the first merge has landed; its watchers are up
        waits = []
        for i in range(saves):
            before = _stamp(out)
            save(i)
            waits.append(_replaced(out, before, 120))
            time.sleep(1)
    finally:
        daemon.terminate()
        daemon.wait(60)
    return waits


def latency_cli(shops: int, rows: int, saves: int) -> dict:
    """The same through the command a chain runs: ``complaint-desk sync --watch`` in a process of
    its own, one folder per shop, the real clock, each save written as Excel writes it (a temp
    file renamed onto the workbook). Time until the merged workbook is replaced (median, worst)."""
    import statistics

    work = Path(_scratch())
    folders = _shop_folders(work, shops, rows)

    def save(i: int) -> None:
        k = i * 37 % shops
        _save_shop(folders[k], k, i, rows)

    waits = _watched_saves(folders, work / "汇总.xlsx", saves, save)
    return {"seconds": statistics.median(waits), "rows": shops * rows, "worst": round(max(waits), 2)}


# a chain with years of history: received over 4 years before the 80 days of (4)'s chain,
# so that most closed complaints are in 2022-2024's archives (``data.rows_for``)
HISTORY_YEARS = 4


def _history_save(folder: Path, k: int, i: int, rows: int, *, archived: bool) -> None:
    """Shop ``k``'s workbook saved with one cell a clerk changed (处理过程 of one complaint),
    as Excel saves it: of a complaint received this autumn, or with ``archived`` of one
    closed in an archived year (its year's archive is then written again)."""
    import os

    from bench.data import BASE, rows_for, write_shop
    from complaint_core.schema import FIELDS

    keys = [f.key for f in FIELDS]
    recv, done, note = keys.index("received_at"), keys.index("resolved_at"), keys.index("notes")
    shop = f"S{k + 1:03d}"
    table = rows_for(rows, shop=shop, seed=k + 1, years=HISTORY_YEARS)
    picked = [n for n, r in enumerate(table) if isinstance(r[recv], datetime)
              and (r[recv].year <= BASE.year - 3 and isinstance(r[done], datetime) if archived
                   else r[recv] >= BASE)]
    row = table[picked[i % len(picked)]]
    row[note] = f"{row[note] or ''}；第 {i + 1} 次回访已记录"
    tmp = folder / f"{i:08X}"
    write_shop(tmp, table, shop=shop)
    os.replace(tmp, folder / "投诉登记.xlsx")


def latency_history(shops: int, rows: int, saves: int, archived: bool = False) -> dict:
    """``latency_cli`` on a chain with years of history (``HISTORY_YEARS``; the merged workbook
    beside its yearly archives), each save one cell a clerk changed (``_history_save``)."""
    import statistics

    work = Path(_scratch())
    folders = _shop_folders(work, shops, rows, HISTORY_YEARS)

    def save(i: int) -> None:
        k = i * 37 % shops
        _history_save(folders[k], k, i, rows, archived=archived)

    waits = _watched_saves(folders, work / "汇总.xlsx", saves, save)
    return {"seconds": statistics.median(waits), "rows": shops * rows, "worst": round(max(waits), 2)}


def latency_history_archived(shops: int, rows: int, saves: int) -> dict:
    """``latency_history`` with each save changing a complaint of an archived year."""
    return latency_history(shops, rows, saves, archived=True)


def merge_history(shops: int, rows: int) -> dict:
    """A full merge (``merge_once``, fresh SQLite) of the chain with years of history: the merged
    workbook and its yearly archives."""
    seconds, report, out = _merge_folder(shop_set(shops, rows, years=HISTORY_YEARS)[0].parent)
    # every complaint of the chain, as the other merges count them (the merged workbook shows
    # the open ones and those of the last two years; the archives hold the rest)
    return {"seconds": seconds, "rows": shops * rows, "files_read": len(report.read),
            "in_workbook": report.rows, "archives": len(list(out.parent.glob(f"{out.stem}-*.xlsx")))}


def _merge_folder(folder: Path) -> tuple[float, Any, Path]:
    """A full merge (``merge_once``, fresh SQLite) of the shops in ``folder``, timed: (seconds,
    its report, the merged workbook)."""
    merge_once = _need("sync.api", "merge_once")
    work = Path(_scratch())
    out = work / "merged.xlsx"
    t = time.perf_counter()
    report = _call_merge(merge_once, folder, out, f"sqlite:///{work / 'state.sqlite'}")
    return time.perf_counter() - t, report, out


def _shows(out: Path, name: str, rows: int) -> bool:
    """Whether the merged workbook's 来源 lists the file ``name`` (its folder and name) with ``rows`` rows."""
    from python_calamine import CalamineWorkbook

    try:
        sheet = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("来源").to_python()
    except Exception:  # noqa: BLE001 - replaced while read: the next replacement is looked at
        return False
    return any(len(r) > 2 and str(r[1]).replace("\\", "/").endswith(name) and r[2] == rows for r in sheet)


def latency_run(shops: int, rows: int, saves: int) -> dict:
    """The same under ``complaint-desk run`` (the watcher and the scheduler in one process, as a
    chain's service runs them): every read also has the scheduler scan at once (a complaint to
    report upward goes out in seconds), which stores the saved shop's new penalty lines and writes
    the workbook again. Time until the merged workbook shows the save (来源 lists the saved file
    with its new row count), not merely until it is replaced: a scan's rewrite of the save before
    it must not be taken for this one."""
    import json
    import re
    import statistics
    import subprocess
    import sys

    work = Path(_scratch())
    folders = _shop_folders(work, shops, rows)
    out = work / "汇总.xlsx"
    log = work / "run.log"

    def q(v: object) -> str:
        return json.dumps(str(v), ensure_ascii=False)

    (work / "desk.toml").write_text(
        f"[store]\nurl = {q(work / 'state.sqlite')}\nmerged = {q(out)}\n[scan]\ninterval_minutes = 15\n"
        f"[mail]\noutbox_dir = {q(work / 'outbox')}\n[sync]\nsources = [{', '.join(q(f) for f in folders)}]\n",
        encoding="utf-8")
    cmd = [sys.executable, "-m", "complaint_desk", "-v", "run", "--config", str(work / "desk.toml")]
    with open(log, "wb") as err:
        daemon = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    scanned = re.compile("扫描完成.*查看 [1-9]")
    try:
        give_up = time.monotonic() + 900
        # the first merge, then the first scan of every complaint (it stores the chain's penalties)
        while not scanned.search(log.read_text(encoding="utf-8", errors="replace")):
            if daemon.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"complaint-desk run made no first scan (exit code {daemon.poll()})")
            time.sleep(0.2)
        time.sleep(2)
        waits = []
        for i in range(saves):
            k = i * 37 % shops
            n = rows + 1 + i   # a row count this file never had: what 来源 must come to show
            _save_shop(folders[k], k, i, n)
            t = time.perf_counter()
            seen = _stamp(out)
            while True:
                if time.perf_counter() - t > 120:
                    raise TimeoutError("the merged workbook did not show the save within 120 s")
                if (stamp := _stamp(out)) != seen:
                    seen = stamp
                    if _shows(out, f"{folders[k].name}/投诉登记.xlsx", n):
                        break
                time.sleep(0.01)
            waits.append(time.perf_counter() - t)
            time.sleep(1)
    finally:
        daemon.terminate()
        daemon.wait(60)
    return {"seconds": statistics.median(waits), "rows": shops * rows, "worst": round(max(waits), 2)}


def _clerk_saves(path: Path, i: int) -> None:
    """A clerk's ``i``-th save: one 备注 cell of the complaint table changed (openpyxl), saved
    as Excel saves (a temp file renamed onto the workbook) when ``i`` is even, written in place
    (as some programs save) when it is odd. Returns once the save has landed."""
    import os

    import openpyxl

    from complaint_core.schema import FIELDS

    wb = openpyxl.load_workbook(path)
    column = [f.key for f in FIELDS].index("notes") + 1
    wb.worksheets[0].cell(row=2 + i, column=column).value = f"第 {i + 1} 次保存：已电话回访"
    if i % 2:
        wb.save(path)
        return
    tmp = path.with_name(f"{i:08X}")
    wb.save(tmp)
    os.replace(tmp, path)


def latency_template(shops: int, rows: int, saves: int) -> dict:
    """Save-to-merged on a chain unlike (4)'s: shops written into the template (every sheet of
    it, a few defects each, ``data.template_set``) in one folder, each save one cell a clerk
    changed (``_clerk_saves``), through ``complaint-desk sync --watch`` with the real clock.
    Time from the save landing until the merged workbook is replaced (median, worst)."""
    import statistics

    from bench.data import template_set

    work = Path(_scratch())
    folder = work / "shared"
    folder.mkdir()
    files = [Path(shutil.copy(f, folder / f.name)) for f in template_set(shops, rows)]
    waits = _watched_saves([folder], work / "汇总.xlsx", saves, lambda i: _clerk_saves(files[i * 37 % shops], i))
    return {"seconds": statistics.median(waits), "rows": shops * rows, "worst": round(max(waits), 2)}


def merge_template(shops: int, rows: int) -> dict:
    """A full merge (``merge_once``, fresh SQLite) of ``latency_template``'s chain, for its ratio."""
    from bench.data import template_set

    seconds, report, _out = _merge_folder(template_set(shops, rows)[0].parent)
    return {"seconds": seconds, "rows": report.rows, "files_read": len(report.read)}


# ---- (5) scan of 1M records --------------------------------------------------------------
def _records(n: int) -> list[dict]:
    from bench.data import rows_for
    from complaint_core.schema import KEYS

    base = rows_for(1000, seed=7)
    out = []
    for i in range(n):
        values = dict(zip(KEYS, base[i % 1000], strict=True))
        for k, v in values.items():
            if isinstance(v, str) and k.endswith("_at"):
                values[k] = None  # the scan meets normalised values, not typos
        out.append(values)
    return out


def scan_floor(n: int) -> dict:
    """The least work any overdue scan does: one comparison per record."""
    from datetime import timedelta

    recs = _records(n)
    t = time.perf_counter()
    late = sum(1 for v in recs if v["first_contact_at"] is None
               and v["received_at"] + timedelta(hours=2) < NOW)
    return {"seconds": time.perf_counter() - t, "rows": n, "overdue": late}


def scan_deadlines(n: int) -> dict:
    """The product's deadline rule (business hours, holidays) applied to every record."""
    deadlines = _need("complaint_core.deadlines", "deadlines")
    from complaint_core.settings import DEFAULTS

    recs = _records(n)
    t = time.perf_counter()
    late = 0
    for v in recs:
        d = deadlines(v, DEFAULTS)
        if v["first_contact_at"] is None and d.contact_due is not None and d.contact_due < NOW:
            late += 1
    return {"seconds": time.perf_counter() - t, "rows": n, "overdue": late}


def scan_ours(n: int) -> dict:
    """complaint_core.overdue.scan + penalties.events_for (what scheduler.api.scan_once runs)."""
    scan = _need("complaint_core.overdue", "scan")
    events_for = _need("complaint_core.penalties", "events_for")
    rules = _need("complaint_core.rules_book", "DEFAULT")
    recs = _records(n)
    for i, r in enumerate(recs):
        r["record_id"] = f"R{i}"
        r["shop"] = f"S{i % 100:03d}"
    t = time.perf_counter()
    items = scan(recs, now=NOW)
    events = events_for(items, {r["record_id"]: r for r in recs}, rules.penalties, rules.heads())
    return {"seconds": time.perf_counter() - t, "rows": n, "items": len(items), "penalties": len(events)}


# ---- (5b) the scan as a query over a stored chain ----------------------------------------
SHOP_ROWS = 10_000


def _store_path(n: int, scanned: bool) -> Path:
    from bench.data import OUT
    from complaint_core.store.codec import ROW_JSON

    # named with the format of its rows' JSON: a cache an older version made would be
    # rewritten (store/reencode.py) in every copy the scenario opens
    return OUT / f"scanstore_{n}_j{ROW_JSON}{'_scanned' if scanned else ''}.sqlite"


def scan_store(n: int, *, scanned: bool) -> Path:
    """A SQLite store of n complaints (n / 10,000 shop files), stored the way the daemon stores
    them (codec + ingest_prepared, no xlsx); ``scanned``: after a first scan at NOW. Cached."""
    from complaint_core.settings import DEFAULTS
    from complaint_core.store import dcjson, open_store
    from complaint_core.store.codec import (
        Prepared,
        anchor,
        content_hash,
        encode_values,
        engine_dues,
        scan_fields,
    )
    from complaint_core.store.ingest import ingest_prepared

    path = _store_path(n, scanned)
    if path.exists():
        return path
    raw = _store_path(n, False)
    if not raw.exists():
        base = _records(1000)
        tmp = raw.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        store = open_store(tmp)
        settings_json = dcjson.dumps(DEFAULTS)
        for k in range(max(n // SHOP_ROWS, 1)):
            shop = f"S{k + 1:03d}"
            rows = []
            for j in range(min(SHOP_ROWS, n)):
                values = dict(base[j % 1000], complaint_id=f"{shop}-{j:05d}", shop=shop)
                data = encode_values(values)
                rows.append((j + 2, shop, values["complaint_id"], None, data.encode(), content_hash(data), anchor(values),
                             engine_dues(values, DEFAULTS), "投诉登记", scan_fields(values)))
            ingest_prepared(store, Path(f"/bench/{shop}/{shop}.xlsx"),
                            Prepared("投诉登记", rows, b"[]", 0, shop=shop, settings_json=settings_json),
                            file_hash=shop, size=1, mtime=1.0, now=NOW)
        store.engine.dispose()
        tmp.replace(raw)
    if scanned:
        from scheduler.api import scan_once

        tmp = path.with_suffix(".tmp")
        shutil.copyfile(raw, tmp)
        store = open_store(tmp)
        scan_once(store, now=NOW)
        store.engine.dispose()
        tmp.replace(path)
    return path


def _scan_copy(n: int, scanned: bool) -> Any:
    return _store_copy(scan_store(n, scanned=scanned))


def _store_copy(cached: Path) -> Any:
    """A store opened on a scratch copy of ``cached`` (a case writes into its copy only)."""
    import atexit

    from complaint_core.store import open_store

    work = Path(_scratch()) / "state.sqlite"
    atexit.register(shutil.rmtree, work.parent, True)   # a million-record copy is gigabytes
    shutil.copyfile(cached, work)
    return open_store(work)


def scanq_floor(n: int) -> dict:
    """The least a scan as a query does: count the stored deadlines past and not met (3 indexed counts)."""
    from sqlalchemy import func, select

    from complaint_core.store import tables as t

    store = _scan_copy(n, False)
    sr = t.source_rows.c
    t0 = time.perf_counter()
    with store.engine.connect() as c:
        late = sum(c.execute(select(func.count()).select_from(t.source_rows).where(t.open_predicate(kind))
                             .where(sr[f"due_{kind}"] <= NOW)).scalar()
                   for kind in ("contact", "feedback", "followup"))
    return {"seconds": time.perf_counter() - t0, "rows": n, "overdue": late}


def _scan_report(rep: Any) -> dict:
    return {"scanned": rep.scanned, "full": rep.full, "new_penalties": rep.new_penalties,
            "queued": rep.queued_mails + rep.queued_posts}


def scanq_first(n: int) -> dict:
    """scheduler.api.scan_once on a store never scanned: every record is looked at."""
    scan_once = _need("scheduler.api", "scan_once")
    store = _scan_copy(n, False)
    t0 = time.perf_counter()
    rep = scan_once(store, now=NOW)
    return {"seconds": time.perf_counter() - t0, "rows": n, **_scan_report(rep)}


def scanq_rescan(n: int, minutes: int = 15) -> dict:
    """scan_once ``minutes`` after the last scan, nothing stored changed in between."""
    from datetime import timedelta

    scan_once = _need("scheduler.api", "scan_once")
    store = _scan_copy(n, True)
    t0 = time.perf_counter()
    rep = scan_once(store, now=NOW + timedelta(minutes=minutes))
    return {"seconds": time.perf_counter() - t0, "rows": n, **_scan_report(rep)}


# ---- (5c) the first full scan of a chain with years of history, by size -------------------
def history_store(shops: int, rows: int) -> Path:
    """A SQLite store of the chain with ``HISTORY_YEARS`` of history (``shop_set(..., years=)``),
    stored by a full merge, never scanned. Cached; made in a process of its own, so that the
    merge's memory is not the scan's."""
    import subprocess

    from bench.data import OUT
    from complaint_core.store.codec import ROW_JSON

    path = OUT / f"histstore_{shops}x{rows}y{HISTORY_YEARS}_j{ROW_JSON}.sqlite"
    if not path.exists():
        subprocess.run([sys.executable, "-c", f"from bench.cases import _make_history_store as m; "
                        f"m({shops}, {rows}, {str(path)!r})"], cwd=ROOT, check=True, capture_output=True)
    return path


def _make_history_store(shops: int, rows: int, path: str) -> None:
    merge_once = _need("sync.api", "merge_once")
    work = Path(_scratch())
    folder = shop_set(shops, rows, years=HISTORY_YEARS)[0].parent
    _call_merge(merge_once, folder, work / "merged.xlsx", f"sqlite:///{work / 'state.sqlite'}")
    shutil.copyfile(work / "state.sqlite", path + ".tmp")
    Path(path + ".tmp").replace(path)
    shutil.rmtree(work, ignore_errors=True)


def scanmem_floor(shops: int, rows: int) -> dict:
    """The least a full scan does: every stored complaint decoded once, a shop at a time in the
    scan's own parts (``SCAN_CHUNK``), nothing kept."""
    chunk = _need("scheduler.api", "SCAN_CHUNK")
    store = _store_copy(history_store(shops, rows))
    t0 = time.perf_counter()
    n = 0
    with store.engine.connect() as conn:
        for shop in sorted(store.shop_marks(conn)):
            for records, _conflicts in store.shop_records(shop, conn, size=chunk):
                n += sum(1 for r in records if not r["deleted"])
    return {"seconds": time.perf_counter() - t0, "rows": shops * rows, "live": n}


def scanmem_first(shops: int, rows: int) -> dict:
    """scan_once on the stored chain never scanned, with every person the chain names on the
    staff sheet (an address and a head) and two robot groups: penalties, alerts, the digests."""
    from bench.data import _NAMES
    from complaint_core.rules_book import Person, Rules

    scan_once = _need("scheduler.api", "scan_once")
    Robot = _need("scheduler.robots", "Robot")
    staff = [Person(p, "销售部", "王芳", f"p{i}@example.cn", mobile=f"1380013{i:04d}")
             for i, p in enumerate(_NAMES) if p != "王芳"]
    rules = Rules(staff=(*staff, Person("王芳", "门店管理", "", "wf@example.cn", mobile="13900139000")))
    robots = (Robot("S001群", "wecom", "CD_BENCH_BOT_1", "", ("S001",)), Robot("主管群", "feishu", "CD_BENCH_BOT_2", "", ()))
    store = _store_copy(history_store(shops, rows))
    t0 = time.perf_counter()
    rep = scan_once(store, now=NOW, rules=rules, robots=robots)
    return {"seconds": time.perf_counter() - t0, "rows": shops * rows, **_scan_report(rep)}


# ---- (4b) a manager's save of the merged workbook read back, by size ---------------------
def manager_saved(shops: int, rows: int) -> tuple[Path, Path]:
    """(a store, the merged workbook it wrote of ``shop_set(shops, rows)`` laid out as Excel
    saves it: numbered cells, every text a shared string). Cached; made in a process of its
    own."""
    import subprocess

    from bench.data import OUT
    from complaint_core.store.codec import ROW_JSON

    store, book = OUT / f"saved_{shops}x{rows}_j{ROW_JSON}.sqlite", OUT / f"saved_{shops}x{rows}_j{ROW_JSON}.xlsx"
    if not (store.exists() and book.exists()):
        subprocess.run([sys.executable, "-c", f"from bench.cases import _make_manager_saved as m; "
                        f"m({shops}, {rows}, {str(store)!r}, {str(book)!r})"], cwd=ROOT, check=True, capture_output=True)
    return store, book


def _make_manager_saved(shops: int, rows: int, store: str, book: str) -> None:
    from bench.excel_save import excel_save

    merge_once = _need("sync.api", "merge_once")
    work = Path(_scratch())
    _call_merge(merge_once, shop_set(shops, rows)[0].parent, work / "merged.xlsx", f"sqlite:///{work / 'state.sqlite'}")
    excel_save(work / "merged.xlsx", book + ".tmp")
    shutil.copyfile(work / "state.sqlite", store + ".tmp")
    Path(book + ".tmp").replace(book)
    Path(store + ".tmp").replace(store)
    shutil.rmtree(work, ignore_errors=True)


def _saved_copy(shops: int, rows: int) -> tuple[Any, Path]:
    """A scratch copy of ``manager_saved``'s store and workbook, the workbook newer than the
    store's record of its write (a manager's save)."""
    import os

    cached_store, cached_book = manager_saved(shops, rows)
    store = _store_copy(cached_store)
    out = Path(store.engine.url.database).with_name("merged.xlsx")
    shutil.copyfile(cached_book, out)
    later = time.time() + 5
    os.utime(out, (later, later))
    # the store wrote the workbook here (at another time and size): what is there now is a save
    store.save_written_stamp(Path(os.path.realpath(out)), (1, 1))
    return store, out


def readback_floor(shops: int, rows: int) -> dict:
    """The least a read-back does: inflate the parts it reads (全部投诉, 处罚, ``_rendered``,
    the shared strings), nothing kept."""
    import zipfile

    sheet_part = _need("complaint_core.merged.colread", "sheet_part")
    _store, out = _saved_copy(shops, rows)
    t0 = time.perf_counter()
    size = 0
    with zipfile.ZipFile(out) as zf:
        parts = [sheet_part(zf, out, name) for name in ("全部投诉", "处罚", "_rendered")]
        for name in [*parts, "xl/sharedStrings.xml"]:
            with zf.open(name) as fh:
                while block := fh.read(1 << 20):
                    size += len(block)
    return {"seconds": time.perf_counter() - t0, "rows": shops * rows, "inflated_mib": size >> 20}


def readback_whole(shops: int, rows: int) -> dict:
    """What a read-back did before: every manager cell and every ``_rendered`` row in dicts
    (``read_manager_edits``), then compared."""
    read_manager_edits = _need("complaint_core.merged.readback", "read_manager_edits")
    all_sheet = _need("complaint_core.merged.sheets", "all_sheet")
    penalty_frame = _need("complaint_core.merged.report", "penalty_frame")
    _store, out = _saved_copy(shops, rows)
    t0 = time.perf_counter()
    back = read_manager_edits(out, [all_sheet(), penalty_frame([])])
    return {"seconds": time.perf_counter() - t0, "rows": shops * rows,
            "edits": sum(len(v) for v in back.edits.values())}


def readback_ours(shops: int, rows: int) -> dict:
    """``render.read_back``, as the daemon calls it at a manager's save."""
    read_back = _need("complaint_core.merged.render", "read_back")
    store, out = _saved_copy(shops, rows)
    t0 = time.perf_counter()
    saved = read_back(store, out, now=NOW)
    return {"seconds": time.perf_counter() - t0, "rows": shops * rows, "saved": saved}


# ---- (6) add-in engine -------------------------------------------------------------------
def addin_engine(n: int) -> dict:
    from python_calamine import CalamineWorkbook

    table_from_grid = _need("complaint_core.reader", "table_from_grid")
    validate_table = _need("complaint_core.validate", "validate_table")
    fills_for_table = _need("complaint_core.suggest", "fills_for_table")
    grid = CalamineWorkbook.from_path(str(shop_file(n))).get_sheet_by_name("投诉登记").to_python()
    t = time.perf_counter()
    table = table_from_grid(grid, sheet="投诉登记")
    findings = validate_table(table, now=NOW)
    fills = fills_for_table(table, now=NOW)
    return {"seconds": time.perf_counter() - t, "rows": len(table.rows),
            "findings": len(findings), "fills": len(fills)}


def addin_calls(n: int) -> dict:
    MemoryPort = _need("excel_addin.memory_port", "MemoryPort")
    actions = importlib.import_module("excel_addin.actions")
    port = MemoryPort(shop_file(n), now=NOW)
    t = time.perf_counter()
    actions.validate(port)
    actions.fill(port)
    return {"seconds": time.perf_counter() - t, "rows": n, "excel_calls": port.total_calls}


def reap_children() -> None:
    """Stop the process a case's reader children and piece makers were forked from, and wait
    for it. Linux then counts their peak memory as this process's children's, so the peak RSS
    the bench reads (``os.wait4`` on the case's process) is that of the largest process of the
    merge, not of the merge's own process only: before this, a reader child holding a shop of
    3,000 complaints (106 MiB) was not in the figure (70 → 78 MiB was reported).

    multiprocessing has no public way to stop its forkserver; ``ForkServer._stop`` is what its
    own tests call. Its absence (another Python, another start method) leaves the figure as
    it was, and the case's result says so."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if server is None or stop is None:
        raise Absent("multiprocessing's forkserver cannot be stopped here: peak RSS of the merge's process only")
    if getattr(server, "_forkserver_pid", None) is not None:
        stop()


CASES = {name: fn for name, fn in globals().items()
         if callable(fn) and name.split("_")[0] in
         ("read", "merge", "stage", "incremental", "render", "latency", "readback", "scan", "scanq", "scanmem",
          "addin")}
