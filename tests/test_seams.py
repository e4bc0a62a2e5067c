"""The seams a newcomer changes code across: the store-reading protocol, the transports' one error
model, outbox states as values, the config's shape and the sync hook `run` is handed."""

from __future__ import annotations

import inspect
import socket
import typing
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from complaint_core.errors import ComplaintDeskError
from complaint_core.merged.render import build_sheets
from complaint_core.store import open_store
from complaint_core.store.db import View
from complaint_core.store.view import StoreView
from complaint_desk.demo_data import sample_rows, write_rows
from complaint_desk.wiring import SYNC
from scheduler import transport, webhook
from scheduler.commands import run_cmd, run_command
from scheduler.config import KEYS, Config
from scheduler.outbox import Resend, resend

NOW = datetime(2026, 11, 20, 10, 0)


def _shop(folder: Path, shop: str = "SH01", n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_rows(folder / f"{shop}_投诉登记.xlsx", sample_rows(n, seed=3, now=NOW, shop=shop), shop=shop)


def test_the_store_view_implements_the_protocol_the_sheets_are_written_against(tmp_path):
    from sync.api import merge_once

    _shop(tmp_path / "shops")
    merge_once([tmp_path / "shops"], tmp_path / "汇总.xlsx", state_url=str(tmp_path / "state.db"), now=NOW)
    store = open_store(tmp_path / "state.db")
    with store.engine.begin() as conn:
        view = View(store, conn)
        assert isinstance(view, StoreView)
        # same parameters as the protocol, not only the same names (isinstance checks names only)
        names = [n for n, v in vars(StoreView).items() if callable(v) and not n.startswith("_")]
        assert {"current_records", "manager_edits", "penalty_marks", "shop_penalty_events", "memo"} <= set(names)
        for name in names:
            want = list(inspect.signature(getattr(StoreView, name)).parameters)[1:]
            assert list(inspect.signature(getattr(view, name)).parameters) == want, name
        assert len(view.live_records()) == 4
        assert view.memo("k", lambda: [1]) is view.memo("k", lambda: [2])   # computed once per view
    # the render builds every sheet through that protocol
    sheets = {s.name: s for s in build_sheets(store, NOW)}
    assert len(sheets["全部投诉"].rows) == 4


def test_every_delivery_failure_is_a_complaint_desk_error():
    failures = [c for _n, c in inspect.getmembers(transport, inspect.isclass)
                if issubclass(c, Exception) and c.__module__ == transport.__name__]
    assert {c.__name__ for c in failures} >= {"TemporaryFailure", "RateLimited", "PermanentFailure", "SetupFailure",
                                              "AuthFailure", "StartTlsMissing", "UnknownOutcome", "ClaimLost"}
    assert all(issubclass(c, ComplaintDeskError) for c in failures)


def test_an_unreachable_mail_server_is_one_line_naming_host_and_port(tmp_path):
    from email.message import EmailMessage

    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "desk@example.com", "zs@example.com", "x"
    with pytest.raises(ComplaintDeskError) as e:
        transport.SmtpTransport("127.0.0.1", port, tls="none", timeout=2).send(msg)
    assert isinstance(e.value, transport.TemporaryFailure)
    assert f"127.0.0.1:{port}" in str(e.value) and "\n" not in str(e.value)


def test_the_transports_fit_the_protocols_the_outbox_uses(tmp_path):
    from scheduler.robots import Robot

    robot = Robot("主管群", "feishu", "T_NOT_SET", "", ())
    for way in (transport.EmlFolderTransport(tmp_path), transport.SmtpTransport("127.0.0.1"),
                *webhook.robot_transports([robot], tmp_path, environ={}).values(),
                webhook.WebhookTransport(robot, "https://open.feishu.cn/x")):
        assert isinstance(way.claim_ttl, type(NOW - NOW)) and isinstance(way.idempotent, bool)
        params = list(inspect.signature(way.send).parameters)
        assert len(params) == 2 and params[1] == "before_data"


def test_resend_answers_with_a_state_instead_of_raising(tmp_path):
    store = open_store(tmp_path / "state.db")

    assert resend(store, 999, now=NOW) == Resend(999, None, queued=False)


def test_the_config_type_names_every_section_load_config_fills():
    sections = {k.section for k in KEYS} | {"bot"}
    assert set(typing.get_type_hints(Config, localns={"Robot": object})) == sections


def _config(tmp_path: Path) -> Path:
    _shop(tmp_path / "shops" / "SH01")
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "汇总.xlsx"\n\n[sync]\nsources = ["shops/SH01"]\n',
                   encoding="utf-8")
    return cfg


def test_run_merges_the_shop_folders_only_through_the_sync_hook_it_is_given(tmp_path):
    args = ["--config", str(_config(tmp_path)), "--once", "--now", NOW.isoformat()]
    r = CliRunner().invoke(run_cmd, args)   # no hook: the scheduler alone scans, merges nothing
    assert r.exit_code == 0, r.output
    assert "合并" not in r.output and "投诉 0 条" in r.output
    r = CliRunner().invoke(run_command(SYNC), args)
    assert r.exit_code == 0, r.output
    assert "合并：读取 1 个文件" in r.output and "投诉 4 条" in r.output


def test_run_once_names_each_shop_folder_it_cannot_see(tmp_path):
    """A mistyped [sync] source and one that is a link to itself: ``run --once`` (what Task
    Scheduler starts) says so, one line each, and merges the folder it can see."""
    cfg = _config(tmp_path)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "汇总.xlsx"\n\n[sync]\n'
                   'sources = ["shops/SH01", "shops/SH0l", "loop"]\n', encoding="utf-8")
    r = CliRunner().invoke(run_command(SYNC), ["--config", str(cfg), "--once", "--now", NOW.isoformat()])
    assert r.exit_code == 0, r.output
    said = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert "合并：读取 1 个文件" in said and "投诉 4 条" in said
    assert "SH0l: 门店文件夹不存在" in said and "loop: 门店文件夹无法访问" in said, said
