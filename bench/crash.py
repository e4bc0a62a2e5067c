"""SIGKILL the writers at random moments and check the shop never loses its workbook.

    python bench/crash.py [--runs 200] [--rows 1000] [--seed 1]
    python bench/crash.py --daemon [--runs 200] [--seed 1] [--sync-only]

``--daemon`` is the merge daemon's campaign (``daemon_campaign`` below): ``complaint-desk run``
with a [sync] section (or ``sync --watch`` with ``--sync-only``) killed while shops keep saving.

Each run copies a shop workbook, starts ``complaint-desk suggest`` or ``validate --mark`` on
it in a child process, kills it with SIGKILL after a random delay (seeded) spread over the
command's whole duration, then checks: the zip is intact (``testzip``), python-calamine
reads every sheet, the complaint sheet is exactly the old or exactly the new content (never
a mix), and re-running the command gives exactly the clean result (nothing filled twice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import shop_file  # noqa: E402

NOW = "2026-11-20 10:00"
COMMANDS = {"suggest": ["suggest", "--now", NOW], "mark": ["validate", "--mark", "--now", NOW]}


def _cli(args: list[str], path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "complaint_desk", *args, str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def state(path: Path) -> str:
    """A digest of every sheet's cells; raises when the file is not a whole workbook."""
    from python_calamine import CalamineWorkbook

    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
        if bad is not None:
            raise ValueError(f"corrupt member {bad}")
    wb = CalamineWorkbook.from_path(str(path))
    h = hashlib.sha256()
    for name in wb.sheet_names:
        h.update(name.encode())
        h.update(json.dumps(wb.get_sheet_by_name(name).to_python(), default=str).encode())
    return h.hexdigest()


def _clean_run(src: Path, work: Path, cmd: str) -> tuple[str, float]:
    p = work / f"clean-{cmd}.xlsx"
    shutil.copy(src, p)
    t = time.perf_counter()
    assert _cli(COMMANDS[cmd], p).wait() in (0, 1)
    return state(p), time.perf_counter() - t


def crash_runs(runs: int, *, rows: int = 1000, seed: int = 1, work: Path | None = None) -> dict:
    """Kill ``runs`` times; returns counts of outcomes (any 'bad' count is a failure)."""
    work = work or Path(tempfile.mkdtemp(prefix="cd-crash-"))
    src = shop_file(rows, shop="S001", seed=1)
    old = state(src)
    clean = {c: _clean_run(src, work, c) for c in COMMANDS}
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    for i in range(runs):
        cmd = ("suggest", "mark")[i % 2]
        new, duration = clean[cmd]
        path = work / f"run{i}.xlsx"
        shutil.copy(src, path)
        proc = _cli(COMMANDS[cmd], path)
        time.sleep(rng.uniform(0, duration * 1.1))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            got = state(path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            tally[f"bad: unreadable after kill ({type(exc).__name__})"] += 1
            continue
        tally["old kept" if got == old else "new written" if got == new else "bad: mixed content"] += 1
        if _cli(COMMANDS[cmd], path).wait() not in (0, 1) or state(path) != new:
            tally["bad: re-run differs from a clean run"] += 1
        path.unlink()
        for debris in _temps(work):  # a killed writer's temp file, never the target
            tally["temp file left by the kill"] += 1
            debris.unlink()
    shutil.rmtree(work, ignore_errors=True)
    tally["runs"] = runs
    return dict(tally)


# --- the merge daemon ---------------------------------------------------------------------------

SHOPS = ("SH01", "SH02")
SHOP_FILE = "投诉.xlsx"


def write_plain(path: Path, rows: list[dict]) -> None:
    """A shop workbook as staff keep it: the complaint sheet with Chinese headers, text as text."""
    from openpyxl import Workbook

    from complaint_core.schema import FIELDS

    wb = Workbook()
    ws = wb.active
    ws.title = "投诉登记"
    ws.append([f.zh for f in FIELDS])
    for row in rows:
        ws.append([row.get(f.key) for f in FIELDS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    wb.save(path)


class ShopWriter(threading.Thread):
    """Shops saving the way Excel does: the whole file under a temp name, renamed over the old.

    Saves come in bursts with quiet gaps longer than the daemon's 2 s debounce, so merges keep
    happening between kills. Each save adds rows, and now and then changes a note on an old
    one; ``final()`` is what the shops' files hold when the writer stops.
    """

    def __init__(self, folders: dict[str, Path], *, seed: int, now: datetime, max_rows: int) -> None:
        super().__init__(name="shop-writer", daemon=True)
        from complaint_desk.demo_data import sample_rows

        self.folders = folders
        self.rng = random.Random(seed)
        self.rows = {s: sample_rows(max_rows, seed=i, now=now, shop=s) for i, s in enumerate(folders)}
        self.count = dict.fromkeys(folders, 0)
        self.saves = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def save(self, shop: str) -> None:
        rows, folder = self.rows[shop], self.folders[shop]
        if self.count[shop] and self.rng.random() < 0.3:
            rows[self.rng.randrange(self.count[shop])]["notes"] = f"第 {self.saves} 次保存时改过"
        n = min(len(rows), self.count[shop] + self.rng.randint(1, 3))
        owner = folder / f"~${SHOP_FILE}"   # Excel's owner file while the workbook is open
        owner.write_bytes(b"owner")
        tmp = folder / f"{self.rng.getrandbits(32):08X}"   # Excel's extension-less temp name
        write_plain(tmp, rows[:n])
        os.replace(tmp, folder / SHOP_FILE)
        if self.rng.random() < 0.7:
            owner.unlink()   # closed; otherwise Excel stays open and the owner file stays
        self.count[shop] = n
        self.saves += 1

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                for _ in range(self.rng.randint(1, 3)):
                    self.save(self.rng.choice(list(self.folders)))
                self.halt.wait(self.rng.uniform(0.5, 3.0))
        except BaseException as exc:  # noqa: BLE001 - reported by the campaign
            self.error = exc

    def final(self) -> dict[str, list[dict]]:
        return {s: [dict(r) for r in self.rows[s][: self.count[s]]] for s in self.folders}


class ManagerWriter(threading.Thread):
    """A manager typing 主管批示 on a random complaint of the merged workbook every few seconds,
    saved as Excel saves (a finished copy under an extension-less name, renamed onto it; the
    copy may be of a workbook the daemon has replaced meanwhile, as a manager's open Excel's
    is). ``typed`` is the last value typed on each (shop, id)."""

    def __init__(self, merged: Path, *, seed: int) -> None:
        super().__init__(name="manager", daemon=True)
        self.merged = merged
        self.rng = random.Random(seed)
        self.typed: dict[tuple[str, str], str] = {}
        self.saves = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def save(self) -> None:
        from openpyxl import load_workbook

        try:
            wb = load_workbook(self.merged)
        except (OSError, KeyError, zipfile.BadZipFile):
            return   # not written yet
        ws = wb["全部投诉"]
        head = [c.value for c in ws[2]]
        rows = [r for r in ws.iter_rows(min_row=3) if r[0].value]
        if not rows:
            return
        row = self.rng.choice(rows)
        key = (row[head.index("门店(来源)")].value, row[head.index("投诉编号")].value)
        value = f"第 {self.saves + 1} 次批示"
        row[head.index("主管批示")].value = value
        tmp = self.merged.with_name(f"{self.rng.getrandbits(32):08X}")
        wb.save(tmp)
        os.replace(tmp, self.merged)
        self.typed[key] = value
        self.saves += 1

    def run(self) -> None:
        try:
            while not self.halt.wait(self.rng.uniform(1.0, 8.0)):
                self.save()
        except BaseException as exc:  # noqa: BLE001 - reported by the campaign
            self.error = exc


def _typed_problem(merged: Path, typed: dict[tuple[str, str], str]) -> str:
    """'' when 全部投诉 shows every cell the manager typed last on each complaint."""
    from python_calamine import CalamineWorkbook

    try:
        grid = CalamineWorkbook.from_path(str(merged)).get_sheet_by_name("全部投诉").to_python()
    except Exception as exc:  # noqa: BLE001 - being replaced
        return f"merged workbook not readable ({type(exc).__name__})"
    shop, cid, approval = (grid[1].index(h) for h in ("门店(来源)", "投诉编号", "主管批示"))
    shown = {(r[shop], r[cid]): r[approval] for r in grid[2:]}
    lost = [(k, v, shown.get(k)) for k, v in typed.items() if shown.get(k) != v]
    return f"{len(lost)} manager cells not shown, e.g. {lost[:2]}" if lost else ""


def _daemon_setup(work: Path, *, now: datetime, scans: bool) -> tuple[list[str], dict[str, Path], Path, Path]:
    folders = {s: work / "shared" / s for s in SHOPS}
    for f in folders.values():
        f.mkdir(parents=True)
    # Inside a watched folder on purpose: the daemon's own workbook and the temp files a kill
    # leaves beside it must never be read as a shop's file.
    merged = folders[SHOPS[0]] / "汇总.xlsx"
    state = work / "state" / "desk.sqlite"
    state.parent.mkdir()
    base = [sys.executable, "-m", "complaint_desk"]
    if not scans:
        srcs = [a for f in folders.values() for a in ("--source", str(f))]
        return [*base, "sync", *srcs, "--out", str(merged), "--state", str(state), "--watch"], folders, merged, state
    from complaint_core.rules_book import DEFAULT, Person, Rules, build_rules_template
    from complaint_desk.demo_data import EMAILS, STAFF

    staff = [Person(name, dept, head, f"{EMAILS[name]}@example.com") for dept, name, head in STAFF]
    staff += [Person(h, "门店管理", "", f"{EMAILS[h]}@example.com") for h in sorted({h for *_, h in STAFF})]
    build_rules_template(work / "rules.xlsx", Rules(penalties=DEFAULT.penalties,
                                                    reminder_times=DEFAULT.reminder_times, staff=tuple(staff)))
    q = lambda v: json.dumps(str(v), ensure_ascii=False)  # noqa: E731 - a TOML basic string
    (work / "desk.toml").write_text(
        f"[store]\nurl = {q(state)}\nmerged = {q(merged)}\n[rules]\npath = {q(work / 'rules.xlsx')}\n"
        f"[scan]\ninterval_minutes = 1\n[mail]\noutbox_dir = {q(work / 'outbox')}\n"
        f"[sync]\nsources = [{', '.join(q(f) for f in folders.values())}]\nrescan_minutes = 1\n", encoding="utf-8")
    return [*base, "run", "--config", str(work / "desk.toml")], folders, merged, state


def _children(pid: int) -> set[int]:
    """The daemon's child processes (the isolated readers' forkserver), to check none outlive it."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except OSError:
        return False


def _temps(folder: Path) -> set[Path]:
    from complaint_core.atomic import TEMP_PREFIX

    return set(folder.glob(f"{TEMP_PREFIX}*"))


HUNT_LIMIT = 60.0   # seconds a hunting kill waits for a rewrite before it kills anyway


def _kill(proc: subprocess.Popen, rng: random.Random, merged: Path, life: float, kids: set[int]) -> str:
    """SIGKILL at a seeded random moment, or (every other time) just as a rewrite of the merged
    workbook starts (a new temp file beside it), then a random few milliseconds later."""
    before = _temps(merged.parent)
    hunt = rng.random() < 0.5
    # A hunt waits for the rewrite however long the daemon takes to start and merge: about
    # 2.5 s on a quiet machine, past ``life`` when the machine is busy (a CI run).
    deadline = time.monotonic() + (HUNT_LIMIT if hunt else rng.uniform(0.1, life))
    while time.monotonic() < deadline and proc.poll() is None:
        kids |= _children(proc.pid)
        if hunt and _temps(merged.parent) - before:
            time.sleep(rng.uniform(0, 0.01))
            break
        time.sleep(0.002)
    if proc.poll() is not None:
        return f"bad: daemon exited by itself (code {proc.returncode})"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return "killed mid-rewrite (temp file left)" if _temps(merged.parent) - before else "killed elsewhere"


def _after_kill(merged: Path, state: Path, outbox: Path, folders: dict[str, Path], emls: dict) -> list[str]:
    """What must hold after every kill; returns the problems found (empty when all is well)."""
    import sqlite3

    from openpyxl import load_workbook

    from complaint_core.merged.model import SHEET_ORDER

    bad = []
    if merged.exists():
        try:
            wb = load_workbook(merged)   # parses every sheet: a half-written file fails here
            if wb.sheetnames[: len(SHEET_ORDER)] != list(SHEET_ORDER):
                bad.append(f"bad: merged sheets {wb.sheetnames}")
            wb.close()
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            bad.append(f"bad: merged workbook unreadable ({type(exc).__name__})")
    if state.exists():
        shop_files = {str(f / SHOP_FILE) for f in folders.values()}
        with closing(sqlite3.connect(state, timeout=30)) as db:
            paths = [r[0] for r in db.execute("SELECT path FROM sources")]
        bad += [f"bad: not a shop file read as one: {Path(p).name}" for p in paths if p not in shop_files]
    for eml in outbox.glob("*.eml"):
        st = eml.stat()
        if emls.setdefault(eml.name, (st.st_ino, st.st_mtime_ns)) != (st.st_ino, st.st_mtime_ns):
            bad.append(f"bad: {eml.name} written twice")
    return bad


def _merged_problem(merged: Path, final: dict[str, list[dict]]) -> str:
    """'' when 全部投诉 holds each final shop row exactly once, with provenance and content."""
    from python_calamine import CalamineWorkbook

    try:
        grid = CalamineWorkbook.from_path(str(merged)).get_sheet_by_name("全部投诉").to_python()
    except Exception as exc:  # noqa: BLE001 - not written yet
        return f"merged workbook not readable ({type(exc).__name__})"
    head = grid[1]
    got = Counter()
    rows = {}
    for r in grid[2:]:
        rec = dict(zip(head, r, strict=False))
        key = (rec["门店(来源)"], rec["投诉编号"])
        got[key] += 1
        rows[key] = rec
    want = {(shop, row["complaint_id"]): (i + 2, row.get("notes") or "")
            for shop, rs in final.items() for i, row in enumerate(rs)}
    if twice := [k for k, n in got.items() if n > 1]:
        return f"rows twice: {twice[:3]}"
    if set(got) != set(want):
        return f"missing {len(set(want) - set(got))}, extra {len(set(got) - set(want))}"
    for key, (row_no, notes) in want.items():
        rec = rows[key]
        if (rec["来源文件"], int(rec["来源行"] or 0), rec["备注"] or "", rec["来源已删除"] or "") != \
                (SHOP_FILE, row_no, notes, ""):
            return f"{key}: {rec['来源文件']} row {rec['来源行']} note {rec['备注']!r}, want row {row_no} {notes!r}"
    return ""


def _final_checks(state: Path, outbox: Path, scans: bool, tally: Counter) -> None:
    import sqlite3

    with closing(sqlite3.connect(state, timeout=30)) as db:
        check = db.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            tally[f"bad: integrity_check {check[:3]}"] += 1
        if not scans:
            return
        dup = db.execute("SELECT record_id, rule_id, kind, day, why, COUNT(*) FROM penalty_events "
                         "GROUP BY record_id, rule_id, kind, day, why HAVING COUNT(*) > 1").fetchall()
        tally["bad: penalty event twice"] += len(dup)
        tally["penalty events"] = db.execute("SELECT COUNT(*) FROM penalty_events").fetchone()[0]
        mails = db.execute("SELECT message_id, state FROM outbox").fetchall()
    ids = {mid.strip("<>").split("@")[0]: st for mid, st in mails}
    names = {p.stem for p in outbox.glob("*.eml")}
    tally["mails queued"] = len(ids)
    tally["mails written (.eml)"] = len(names)
    tally["bad: .eml without an outbox row, or for a pending one"] += sum(
        ids.get(n) not in ("sent", "sending", "unknown") for n in names)
    tally["bad: sent but no .eml"] += sum(st == "sent" and n not in names for n, st in ids.items())
    tally["mails lost to a kill mid-send (state sending, never resent)"] = sum(
        st == "sending" and n not in names for n, st in ids.items())


def _ctrl_c_default() -> None:
    # A campaign started in the background (`nohup ... &`) inherits SIGINT ignored, and Python
    # then keeps ignoring Ctrl+C in the daemon; the final stop must test Ctrl+C as a console gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def daemon_campaign(kills: int, *, seed: int = 1, scans: bool = True, max_rows: int = 150, life: float = 4.0,
                    work: Path | None = None, echo: Any = None) -> dict:
    """Kill the merge daemon ``kills`` times while shops save; returns outcome counts ('bad: …' = failure)."""
    own_work = work is None
    work = Path(work or tempfile.mkdtemp(prefix="cd-daemon-crash-"))
    cmd, folders, merged, state = _daemon_setup(work, now=datetime.now().replace(microsecond=0), scans=scans)
    log = open(work / "daemon.log", "ab")  # noqa: SIM115 - every run of the daemon appends to it
    rng = random.Random(seed)
    writer = ShopWriter(folders, seed=seed, now=datetime.now().replace(microsecond=0), max_rows=max_rows)
    manager = ManagerWriter(merged, seed=seed)
    tally: Counter[str] = Counter()
    emls: dict[str, tuple[int, int]] = {}
    kids: set[int] = set()
    writer.start()
    manager.start()
    started = time.perf_counter()
    try:
        for i in range(kills):
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, preexec_fn=_ctrl_c_default)
            tally[_kill(proc, rng, merged, life, kids)] += 1
            for problem in _after_kill(merged, state, work / "outbox", folders, emls):
                tally[problem] += 1
            if echo and (i + 1) % 20 == 0:
                echo(f"{i + 1} kills, {writer.saves} saves, {time.perf_counter() - started:.0f} s")
        writer.halt.set()
        writer.join()
        manager.halt.set()
        manager.join()
        for who, thread in (("shop writer", writer), ("manager", manager)):
            if thread.error is not None:
                tally[f"bad: the {who} failed ({thread.error!r})"] += 1
        final = writer.final()
        # restart once more and let it settle: everything the shops saved must arrive, and
        # every cell the manager typed must still be there
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, preexec_fn=_ctrl_c_default)
        deadline = time.monotonic() + 120
        while ((problem := _merged_problem(merged, final)) or (typed := _typed_problem(merged, manager.typed))) \
                and time.monotonic() < deadline:
            kids |= _children(proc.pid)
            time.sleep(0.5)
        if problem:
            tally[f"bad: final merged workbook: {problem}"] += 1
        elif typed:
            tally[f"bad: final merged workbook: {typed}"] += 1
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            tally["bad: daemon did not stop on Ctrl+C"] += 1
            proc.send_signal(signal.SIGUSR1)   # every thread's stack into daemon.log
            time.sleep(2)
            proc.kill()
            proc.wait()
        _final_checks(state, work / "outbox", scans, tally)
        tally["bad: a daemon child process outlived it"] += sum(_alive(k) for k in _wait_gone(kids))
        tally["temp files left by kills (ignored)"] = sum(len(_temps(f)) for f in folders.values())
        tally["shop saves"] = writer.saves
        tally["manager saves"] = manager.saves
        tally["final rows"] = sum(len(rs) for rs in final.values())
    finally:
        writer.halt.set()
        manager.halt.set()
        log.close()
    tally["kills"] = kills
    tally["seconds"] = round(time.perf_counter() - started)
    if any(k.startswith("bad") and n for k, n in tally.items()):
        tally[f"work folder kept: {work}"] = 1   # for a post-mortem: daemon.log, the store, the files
    elif own_work:
        shutil.rmtree(work, ignore_errors=True)
    return {k: n for k, n in tally.items() if n or not k.startswith("bad")}


def _wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    """The pids still alive after ``timeout`` (a reader child may finish its file first)."""
    deadline = time.monotonic() + timeout
    while (alive := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--daemon", action="store_true", help="kill the merge daemon instead of suggest/mark")
    ap.add_argument("--sync-only", action="store_true", help="with --daemon: `sync --watch`, no scans")
    ns = ap.parse_args(argv)
    t = time.perf_counter()
    if ns.daemon:
        result = daemon_campaign(ns.runs, seed=ns.seed, scans=not ns.sync_only, echo=print)
    else:
        result = crash_runs(ns.runs, rows=ns.rows, seed=ns.seed)
    for key, n in sorted(result.items()):
        print(f"{key}: {n}")
    print(f"elapsed {time.perf_counter() - t:.0f} s")
    return 1 if any(k.startswith("bad") for k in result) else 0


if __name__ == "__main__":
    sys.exit(main())
