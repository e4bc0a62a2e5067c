"""Print the benchmark table: each scenario beside its baselines, measured in the same run.

    python bench/run.py [--quick] [--only NAME] [--runs N]

Every measurement runs in a fresh child process (so imports, caches and memory of one case
do not help or hurt the next); the child times the operation only, the parent reads the
child's peak RSS from ``os.wait4``. Cases run round-robin (A B C, A B C, ...) so a burst of
load on this shared machine hits every case alike. Ratios are to the scenario's floor row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cases import machine_cpu  # noqa: E402

PY = sys.executable


def scenarios(quick: bool, size: dict | None = None) -> list[tuple[str, str, list[tuple[str, str, list]]]]:
    """(name, title, [(label, case, args)]); the first row of each scenario is its floor."""
    size = size or {}
    sizes = size.get("read") or ([300] if quick else [1_000, 10_000, 100_000])
    shops, rows = size.get("merge") or ((3, 100) if quick else (100, 1_000))
    ishops, irows = size.get("incremental") or (shops, rows)
    sshops, srows = size.get("stages") or (shops, rows)
    lat = size.get("latency") or ((2, 100, 2) if quick else (10, 1_000, 20))
    scan_n = size.get("scan") or (3_000 if quick else 1_000_000)
    scanq_n = size.get("scanq") or (3_000 if quick else 300_000)
    addin_n = size.get("addin") or (300 if quick else 10_000)
    mem_sizes = size.get("memory") or ([(2, 100), (2, 300)] if quick else [(100, 1_000), (100, 3_000)])
    scan_sizes = size.get("scanmem") or mem_sizes
    back_sizes = size.get("readback") or ([(2, 100), (2, 300)] if quick else [(100, 1_000), (300, 1_000)])
    big_shops, big_rows = size.get("million") or ((4, 500) if quick else (100, 10_000))
    read = []
    for n in sizes:
        read += [(f"floor: calamine to_python ({n:,})", "read_floor", [n]),
                 (f"ours: read_workbook ({n:,})", "read_ours", [n]),
                 (f"ours: read_workbook + validate_table ({n:,})", "read_validate_ours", [n]),
                 (f"openpyxl read_only ({n:,})", "read_openpyxl", [n])]
    return [
        ("read", "(1) read one shop workbook", read),
        ("merge", f"(2) full merge {shops} shops x {rows:,} rows", [
            ("floor: calamine read + XlsxWriter constant_memory", "merge_floor", [shops, rows]),
            ("floor: calamine read + rustpy-xlsxwriter (fastest writer)", "merge_floor_rust", [shops, rows]),
            ("ours: sync.api.merge_once (fresh SQLite)", "merge_ours", [shops, rows]),
            ("naive pandas read_excel + concat + to_excel", "merge_pandas", [shops, rows])]),
        ("stages", f"(2b) where a full merge's CPU goes, {sshops} shops x {srows:,} rows: CPU-seconds, "
                   "each stage in one process", [
            ("floor: calamine read + rustpy-xlsxwriter write", "stage_floor", [sshops, srows]),
            ("floor's read alone (calamine, a dict per row)", "stage_floor_read", [sshops, srows]),
            ("floor's write alone (rustpy-xlsxwriter, one sheet)", "stage_floor_write", [sshops, srows]),
            ("ours: read (reader.read_tables)", "stage_read", [sshops, srows]),
            ("ours: check (deadlines + validate_tables)", "stage_check", [sshops, srows]),
            ("ours: prepare to store (JSON, hashes, keys)", "stage_prepare", [sshops, srows]),
            ("ours: store (ingest_prepared, SQLite)", "stage_store", [sshops, srows]),
            ("ours: render, its first part: fetch and decode every stored complaint", "stage_decode", [sshops, srows]),
            ("ours: render, 全部投诉's rows written (row XML + deflate)", "stage_write", [sshops, srows]),
            ("ours: render every sheet (render_merged), that part included", "stage_render", [sshops, srows]),
            ("ours: the whole merge (merge_once), machine CPU while it ran", "stage_merge", [sshops, srows])]),
        ("incremental", f"(3) incremental merge, 1 of {ishops} files x {irows:,} rows changed", [
            ("floor: re-read the changed file", "incremental_floor", [ishops, irows]),
            ("ours: merge_once after one file changed", "incremental_ours", [ishops, irows]),
            ("ours: render_merged alone (no file read)", "render_only", [ishops, irows]),
            ("ours: render_merged, nothing changed since the last write", "render_unchanged", [ishops, irows])]),
        ("latency", f"(4) save-to-merged latency, {lat[0]} shops x {lat[1]:,} rows, {lat[2]} saves", [
            ("floor: full re-merge per save (no daemon)", "latency_floor", lat[:2]),
            ("ours: sync.daemon.Daemon (median; worst in notes)", "latency_ours", list(lat)),
            ("ours: Daemon, each shop's save 10 s after a manager's save of the merged workbook",
             "latency_manager", list(lat)),
            ("ours: `complaint-desk sync --watch`, a folder per shop, real clock", "latency_cli", list(lat)),
            ("ours: `complaint-desk run` (watcher + scan after each read), until the workbook shows the save",
             "latency_run", list(lat)),
            ("ours: a full merge of the same shops, for the ratio", "merge_ours", lat[:2]),
            ("ours: `complaint-desk sync --watch`, shops written from the template in one folder, "
             "one cell a clerk changed per save", "latency_template", list(lat)),
            ("ours: a full merge of those template shops, for its ratio", "merge_template", lat[:2]),
            ("ours: `complaint-desk sync --watch`, a chain with 4 years of history (yearly archives), "
             "one cell of a recent complaint changed per save", "latency_history", list(lat)),
            ("ours: the same, one cell of a complaint of an archived year changed per save (its "
             "archive written after the workbook)", "latency_history_archived", list(lat)),
            ("ours: a full merge of the chain with history, for their ratio", "merge_history", lat[:2])]),
        ("readback", "(4b) a manager's save of the merged workbook read back, laid out as Excel saves it, "
                     "by size (peak memory)", [
            row for shops_, rows_ in back_sizes for row in (
                (f"floor: inflate the parts it reads, nothing kept ({shops_ * rows_:,})", "readback_floor",
                 [shops_, rows_]),
                (f"before: read_manager_edits, a dict per row of 全部投诉 and _rendered ({shops_ * rows_:,})",
                 "readback_whole", [shops_, rows_]),
                (f"ours: render.read_back, only the changed cells kept ({shops_ * rows_:,})", "readback_ours",
                 [shops_, rows_]))]),
        ("scan", f"(5) overdue scan of {scan_n:,} records", [
            ("floor: one comparison per record", "scan_floor", [scan_n]),
            ("ours: complaint_core.deadlines per record", "scan_deadlines", [scan_n]),
            ("ours: overdue.scan + penalties.events_for", "scan_ours", [scan_n])]),
        ("scanq", f"(5b) overdue scan as a query, stored chain of {scanq_n:,} records", [
            ("floor: 3 indexed counts of deadlines past and not met", "scanq_floor", [scanq_n]),
            ("ours: scan_once, first scan (every record)", "scanq_first", [scanq_n]),
            ("ours: scan_once 15 min later, nothing changed", "scanq_rescan", [scanq_n, 15]),
            ("ours: scan_once the next day (digests, per-day penalties)", "scanq_rescan", [scanq_n, 24 * 60])]),
        ("scanmem", "(5c) the first full scan of a chain with 4 years of history, by size (peak memory)", [
            row for shops_, rows_ in scan_sizes for row in (
                (f"floor: every stored complaint decoded once, a shop at a time ({shops_} x {rows_:,})",
                 "scanmem_floor", [shops_, rows_]),
                (f"ours: scan_once, staff with addresses and two robot groups ({shops_} x {rows_:,})",
                 "scanmem_first", [shops_, rows_]))]),
        ("addin", "(6) add-in engine, validate + suggest", [
            (f"engine: table_from_grid+validate+fills ({addin_n:,})", "addin_engine", [addin_n]),
            ("Excel calls via MemoryPort (10)", "addin_calls", [10]),
            (f"Excel calls via MemoryPort ({addin_n:,})", "addin_calls", [addin_n])]),
        ("memory", "(7a) peak memory of a full merge, by size (each beside its floor)", [
            row for shops_, rows_ in mem_sizes for row in (
                (f"floor: calamine read + XlsxWriter constant_memory ({shops_ * rows_:,})", "merge_floor",
                 [shops_, rows_]),
                (f"ours: sync.api.merge_once ({shops_ * rows_:,}; notes: each kind of process's peak)",
                 "merge_roles", [shops_, rows_]),
                (f"ours: merge_once, 4 years of history, yearly archives ({shops_ * rows_:,})", "merge_history",
                 [shops_, rows_]))]),
        ("million", f"(7) merge of {big_shops * big_rows:,} rows ({big_shops} shops x {big_rows:,}): time and peak memory", [
            ("floor: calamine read + XlsxWriter constant_memory", "merge_floor", [big_shops, big_rows]),
            ("ours: sync.api.merge_once (fresh SQLite)", "merge_ours", [big_shops, big_rows])]),
    ]


def _stolen() -> float | None:
    """CPU-seconds the host has taken from this virtual machine's CPUs so far (``steal``); None
    where it is not known. A case run while the host took CPU away from us measures the host as
    much as the code: the table says how much, beside the time."""
    fields = machine_cpu()
    return fields[7] if fields is not None and len(fields) > 7 else None


def run_case(case: str, args: list) -> dict:
    """Run one case in a fresh interpreter; peak RSS from os.wait4 on exactly that child."""
    code = (f"import json,sys; sys.path.insert(0, {str(ROOT)!r}); from bench import cases\n"
            f"try:\n    r = cases.CASES[{case!r}](*{args!r})\n"
            "except cases.Absent as e:\n    r = {'absent': str(e)}\n"
            "except Exception as e:\n    r = {'error': f'{type(e).__name__}: {e}'[:160]}\n"
            # the merge's children's peak memory counted in this child's (cases.reap_children)
            "try:\n    cases.reap_children()\n"
            "except cases.Absent as e:\n    r.setdefault('notes', str(e))\n"
            "print('RESULT' + json.dumps(r, default=str), flush=True)")
    r_fd, w_fd = os.pipe()
    stolen = _stolen()
    pid = os.posix_spawn(PY, [PY, "-c", code], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_DUP2, w_fd, 1),
                                       (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
    os.close(w_fd)
    with os.fdopen(r_fd) as fh:
        out = fh.read()
    _, status, usage = os.wait4(pid, 0)
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        return {"error": f"child exited with status {status}"}
    res = json.loads(line[6:])
    res["rss"] = usage.ru_maxrss / 1024  # Linux reports KiB
    after = _stolen()
    if stolen is not None and after is not None:
        res["stolen"] = after - stolen   # over the child's whole life, its set-up included
    return res


# Cases that take minutes at full size run once (their spread is noted as 1 run).
ONCE = {"merge_pandas"}
ONCE_FROM_TOTAL = 500_000   # shops x rows: a merge of this size runs once
ONCE_FROM_ROWS = 100_000


def _runs_for(case: str, args: list, runs: int) -> int:
    big = bool(args) and isinstance(args[0], int) and args[0] >= ONCE_FROM_ROWS
    total = len(args) >= 2 and all(isinstance(a, int) for a in args[:2]) and args[0] * args[1] >= ONCE_FROM_TOTAL
    return 1 if case in ONCE or big or total else runs


def measure(rows: list[tuple[str, str, list]], runs: int) -> list[dict]:
    results: list[list[dict]] = [[] for _ in rows]
    for k in range(runs):
        for i, (_label, case, args) in enumerate(rows):
            if results[i] and ("absent" in results[i][0] or "error" in results[i][0]):
                continue
            if k >= _runs_for(case, args, runs):
                continue
            results[i].append(run_case(case, args))
    out = []
    for (label, _case, _args), rs in zip(rows, results, strict=True):
        ok = [r for r in rs if "seconds" in r]
        if not ok:
            out.append({"label": label, "note": rs[0].get("absent") or rs[0].get("error")})
            continue
        secs = [r["seconds"] for r in ok]
        med = statistics.median(secs)
        extra = {k: v for k, v in ok[0].items() if k not in ("seconds", "rows", "rss", "stolen")}
        if "worst" in extra:
            extra["worst"] = f"{max(r['worst'] for r in ok):.2f}s"
        stolen = [r["stolen"] for r in ok if "stolen" in r]
        if stolen and max(stolen) >= 0.05:
            # CPU the host took from this machine during a run (the worst run): only said when any
            extra["host_took"] = f"{max(stolen):.2f}s"
        out.append({"label": label, "runs": len(ok), "median": med, "min": min(secs),
                    "max": max(secs), "rows": ok[0]["rows"],
                    "rps": ok[0]["rows"] / med if med else 0.0,
                    "rss": max(r["rss"] for r in ok), "note": ", ".join(
                        f"{k}={v}" for k, v in extra.items() if k != "report")})
    return out


def fmt_table(title: str, rows: list[dict]) -> str:
    lines = [f"\n## {title}", "| case | runs | median s | min-max s | rows/s | peak RSS MiB "
             "| x floor | notes |", "|---|---|---|---|---|---|---|---|"]
    floor = rows[0].get("median")
    for r in rows:
        if r["label"].startswith("floor:"):
            floor = r.get("median")  # each size is compared with the floor of the same size
        if "median" not in r:
            lines.append(f"| {r['label']} | 0 | - | - | - | - | - | NOT MEASURED: {r['note']} |")
            continue
        ratio = f"{r['median'] / floor:.2f}" if floor else "-"
        lines.append(f"| {r['label']} | {r['runs']} | {r['median']:.3f} | {r['min']:.3f}-{r['max']:.3f}"
                     f" | {r['rps']:,.0f} | {r['rss']:.0f} | {ratio} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 run each (< 60 s)")
    ap.add_argument("--only", help="run one scenario: read, merge, stages, incremental, latency, readback, scan, scanq, scanmem, memory, "
                    "million, addin")
    ap.add_argument("--runs", type=int, help="runs per case (default 3, quick 1)")
    ap.add_argument("--size", action="append", default=[], metavar="SCENARIO=N[xM[xK]]",
                    help="override a size, e.g. read=1000,10000 merge=100x1000 scan=100000 memory=100x1000,100x3000 "
                         "scanmem=100x1000,300x1000 readback=100x1000,300x1000")
    ns = ap.parse_args(argv)
    size: dict = {}
    for item in ns.size:
        key, _, val = item.partition("=")
        size[key] = ([int(v) for v in val.split(",")] if key == "read"
                     else [tuple(int(x) for x in v.split("x")) for v in val.split(",")] if key in ("memory", "scanmem", "readback")
                     else int(val) if key in ("scan", "scanq", "addin") else tuple(int(v) for v in val.split("x")))
    runs = ns.runs or (1 if ns.quick else 3)
    print(f"# command: python bench/run.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# Complaint Desk benchmarks  nproc={os.cpu_count()}  load={os.getloadavg()[0]:.2f} "
          f"(1 min) at start  python={sys.version.split()[0]}  {'quick' if ns.quick else 'full'}")
    t0 = time.perf_counter()
    for name, title, rows in scenarios(ns.quick, size):
        if ns.only and ns.only != name:
            continue
        print(fmt_table(title, measure(rows, runs)), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s, load={os.getloadavg()[0]:.2f} (1 min) at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
