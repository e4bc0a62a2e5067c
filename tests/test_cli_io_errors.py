"""Every I/O and store failure a user can cause is one line naming the file or store, exit 2.

Run from the outside (a real process), as a shop's technical person would; the read-only
cases drop the capabilities that let root write anything (setpriv), so the refusal is real.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
CLI = [sys.executable, "-m", "complaint_desk"]


def _run(args: list[str], *, caps: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(([] if caps else NO_CAPS) + CLI + args, capture_output=True, text=True, timeout=timeout)


def _one_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "内部错误" not in proc.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def _shop(tmp: Path) -> Path:
    folder = tmp / "SH01"
    folder.mkdir()
    write_shop_workbook(folder / "投诉.xlsx", sample_rows(4, seed=1, now=NOW))
    return folder


def test_unknown_store_scheme_and_unreachable_postgresql(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    out = str(tmp_path / "m.xlsx")
    _one_line(_run(["sync", "--source", str(shop), "--out", out, "--once", "--state", "mysq://x/y"]), "mysq")
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://shop:secret@127.0.0.1:{port}/desk"
    proc = _run(["sync", "--source", str(shop), "--out", out, "--once", "--state", url])
    _one_line(proc, "存储", str(port))
    assert "secret" not in proc.stderr   # the password is never printed


def test_read_only_store_and_merged_folder(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    out_dir = tmp_path / "merged"
    out_dir.mkdir()
    out = out_dir / "m.xlsx"
    assert _run(["sync", "--source", str(shop), "--out", str(out), "--once"]).returncode == 0
    state = out_dir / ".m.state.sqlite"
    state.chmod(0o444)
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(5, seed=2, now=NOW))   # something to store
    _one_line(_run(["sync", "--source", str(shop), "--out", str(out), "--once"], caps=False),
              "存储", str(state), "readonly")
    state.chmod(0o644)
    out_dir.chmod(0o555)
    try:
        _one_line(_run(["sync", "--source", str(shop), "--out", str(out), "--once"], caps=False), str(out_dir))
    finally:
        out_dir.chmod(0o755)


def test_read_only_shop_folder_and_file_for_suggest_and_mark(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    book = shop / "投诉.xlsx"
    before = book.read_bytes()
    book.chmod(0o444)
    _one_line(_run(["suggest", str(book), "--now", NOW.isoformat()]), str(book), "只读")   # even for root
    _one_line(_run(["validate", "--mark", str(book), "--now", NOW.isoformat()]), str(book), "只读")
    book.chmod(0o644)
    shop.chmod(0o555)
    try:
        _one_line(_run(["suggest", str(book), "--now", NOW.isoformat()], caps=False), str(book), "无法写入")
    finally:
        shop.chmod(0o755)
    assert book.read_bytes() == before


def test_rewrite_keeps_owner_group_and_mode(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    book = shop / "投诉.xlsx"
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    os.chown(book, uid, gid)
    book.chmod(0o660)                           # shared with the shop's group, nobody else
    proc = _run(["suggest", str(book), "--now", NOW.isoformat()])
    assert proc.returncode == 0, proc.stderr
    st = book.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o660)
    assert _run(["validate", "--mark", str(book), "--now", NOW.isoformat()]).returncode in (0, 1)
    st = book.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o660)


def test_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "投诉.xlsx"
    os.mkfifo(fifo)
    t = time.perf_counter()
    _one_line(_run(["validate", str(fifo)], timeout=30), str(fifo), "管道")
    _one_line(_run(["suggest", str(fifo)], timeout=30), str(fifo), "管道")
    assert time.perf_counter() - t < 20


def test_validate_into_a_closed_pipe_is_one_line(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    files = []
    for i in range(60):
        f = shop / f"b{i}.xlsx"
        f.write_bytes((shop / "投诉.xlsx").read_bytes())
        files.append(str(f))
    proc = subprocess.run(f"{sys.executable} -m complaint_desk validate {' '.join(files)} --now {NOW.isoformat()}"
                          " | head -1", shell=True, capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "内部错误" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 1


def test_a_file_name_that_is_not_utf8_is_printed_not_a_crash(tmp_path):
    """A GBK name on a share mounted without a UTF-8 character set: ``validate`` reads the file
    and prints its name escaped; ``sync --once`` lists it as not merged, merges the rest and
    writes the other files' feedback.
    Run with a strict UTF-8 output, as a service log or a UTF-8 terminal has it."""
    folder = _shop(tmp_path)
    odd = os.path.join(os.fsencode(folder), "南京店".encode("gbk") + b".xlsx")
    with open(odd, "wb") as fh:
        fh.write((folder / "投诉.xlsx").read_bytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run([*CLI, "validate", os.fsdecode(odd), "--now", NOW.isoformat()], capture_output=True,
                          env=env, timeout=120)
    out = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")
    assert proc.returncode in (0, 1) and "内部错误" not in out and "\\udc" in out, out
    merged = tmp_path / "merged.xlsx"
    proc = subprocess.run([*CLI, "sync", "--once", "--feedback", "--source", str(folder), "--out", str(merged)],
                          capture_output=True, env=env, timeout=120)
    out = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")
    assert proc.returncode == 1 and "内部错误" not in out, out
    assert "文件名不是 UTF-8 编码" in out and merged.is_file(), out
    assert [p.name for p in (folder / "_反馈").iterdir() if p.suffix == ".xlsx"] == ["投诉_反馈.xlsx"]


def test_run_once_merges_the_folders_it_can_enter_and_names_the_one_it_cannot(tmp_path):
    """A [sync] folder under a parent that can be listed but not entered (r-- on a share): its
    look used to raise, and the whole cycle stopped (exit 2, nothing merged)."""
    _shop(tmp_path)
    (tmp_path / "locked" / "SH02").mkdir(parents=True)
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[sync]\nsources = ["SH01", "locked/SH02"]\n',
                   encoding="utf-8")
    (tmp_path / "locked").chmod(0o444)
    try:
        proc = _run(["run", "--config", str(cfg), "--once", "--now", NOW.isoformat()], caps=False)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "合并：读取 1 个文件" in proc.stdout and "投诉 4 条" in proc.stdout, proc.stdout
    assert "SH02: 门店文件夹无法访问" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
