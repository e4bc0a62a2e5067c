"""Throw generated hostile workbooks at the reader and print counts and timings.

    python -m bench.fuzz_reader [--count 10000] [--jobs 2] [--seed 0] [--isolated]

Each workbook is written by ``tests.support.workbooks.write_malformed_workbook`` and read
by ``reader.read_workbook`` (or ``isolate.read_workbook_isolated`` with ``--isolated``).
Anything other than a table or UnreadableWorkbook, or a read over 10 s, is a failure and
the script exits 1.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc
import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path


def _one(args: tuple[int, str, bool]) -> tuple[int, str, str, float, float]:
    seed, folder, isolated = args
    from complaint_core.errors import UnreadableWorkbook
    from complaint_core.isolate import read_workbook_isolated
    from complaint_core.reader import read_workbook
    from tests.support.workbooks import write_malformed_workbook

    path = Path(folder) / f"fuzz{seed}.xlsx"
    t = time.perf_counter()
    kind = write_malformed_workbook(path, random.Random(seed))
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    try:
        (read_workbook_isolated if isolated else read_workbook)(path)
        outcome = "read"
    except UnreadableWorkbook as exc:
        outcome = type(exc).__name__
        if "\n" in str(exc) or not exc.reason:
            outcome = "FAIL unclear message"
    except BaseException as exc:  # noqa: BLE001 - this is what the bench hunts for
        outcome = f"FAIL {type(exc).__name__}: {str(exc)[:120]}"
    read_s = time.perf_counter() - t
    path.unlink(missing_ok=True)
    if read_s > 10:
        outcome = "FAIL slow"
    return seed, kind, outcome, write_s, read_s


def _write(args: tuple[int, str]) -> tuple[int, str, str]:
    seed, folder = args
    from tests.support.workbooks import write_malformed_workbook

    path = Path(folder) / f"fuzz{seed}.xlsx"
    return seed, write_malformed_workbook(path, random.Random(seed)), str(path)


def _isolated(a: argparse.Namespace, folder: str, pool: object) -> collections.abc.Iterator[tuple]:
    """As the daemon reads: read_many_isolated, several killable children at once (a pool
    worker may not have children, so the workbooks are written by the pool, read from here)."""
    from datetime import datetime

    from complaint_core.errors import UnreadableWorkbook
    from complaint_core.isolate import read_many_isolated

    batch = 200
    for start in range(0, a.count, batch):
        written = pool.map(_write, [(a.seed + i, folder) for i in range(start, min(start + batch, a.count))])
        kinds = {Path(p): (seed, kind) for seed, kind, p in written}
        t = time.perf_counter()
        for path, got in read_many_isolated(list(kinds), now=datetime(2026, 10, 1), jobs=a.jobs, timeout=10):
            seed, kind = kinds[path]
            if isinstance(got, UnreadableWorkbook):
                outcome = "FAIL slow" if "timed out" in got.reason else (
                    "FAIL unclear message" if "\n" in str(got) or not got.reason else type(got).__name__)
            else:
                outcome = "read"
            path.unlink(missing_ok=True)
            # per-file time is not separable with children in parallel: the batch's mean
            yield seed, kind, outcome, 0.0, (time.perf_counter() - t) / len(kinds) * a.jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--isolated", action="store_true")
    a = ap.parse_args(argv)
    outcomes: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    reads: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, mp.get_context("spawn").Pool(a.jobs) as pool:
        jobs = [(a.seed + i, folder, a.isolated) for i in range(a.count)]
        results = _isolated(a, folder, pool) if a.isolated else pool.imap_unordered(_one, jobs, chunksize=8)
        for seed, kind, outcome, _w, r in results:
            outcomes[outcome.split(":")[0]] += 1
            for k in kind.split(","):
                kinds[k.split("@")[0].rstrip("0123456789") or k] += 1
            reads.append(r)
            if outcome.startswith("FAIL"):
                failures.append(f"seed {seed} ({kind}): {outcome}")
    wall = time.perf_counter() - started
    reads.sort()
    print(f"workbooks: {a.count}  jobs: {a.jobs}  wall: {wall:.1f} s  isolated: {a.isolated}")
    print("outcomes:  " + "  ".join(f"{k}={v}" for k, v in outcomes.most_common()))
    print("features:  " + "  ".join(f"{k}={v}" for k, v in kinds.most_common()))
    print(f"read time: median {reads[len(reads) // 2] * 1000:.1f} ms  "
          f"p99 {reads[int(len(reads) * 0.99)] * 1000:.1f} ms  max {reads[-1] * 1000:.1f} ms")
    for line in failures[:20]:
        print(line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
