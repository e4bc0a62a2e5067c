"""``complaint-desk run --config desk.toml --once`` end to end: real shop workbooks in real folders,
a real SMTP server and the loopback robot server; the CLI as a shop's Task Scheduler runs it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from complaint_core.rules_book import Person, Rules, build_rules_template
from complaint_desk.cli import main
from complaint_desk.demo_data import sample_rows, write_rows

NOW = datetime(2026, 11, 20, 10, 0)
STAFF = (Person("李娜", "前台", "王经理", "li.na@example.com", mobile="13800000001"),
         Person("张强", "售后部", "赵主管", "zhang.qiang@example.com", mobile="13800000002"),
         Person("王经理", "门店管理", "", "wang@example.com", mobile="13800000009"),
         Person("赵主管", "门店管理", "", "zhao@example.com", mobile="13800000008"))


def chain(tmp_path: Path, smtp_port: int) -> Path:
    for seed, shop in enumerate(("SH01", "SH02"), start=1):
        rows = sample_rows(6, seed=seed, now=NOW, shop=shop)
        for r in rows:
            r.update(responsible_person="李娜" if shop == "SH01" else "张强",
                     responsible_dept="前台" if shop == "SH01" else "售后部", severity="一般",
                     channel="现场", customer_type="一般", description="商品有划痕")
            r["received_at"] = NOW - timedelta(hours=5)
            for k in ("first_contact_at", "feedback_at", "resolved_at", "followup_at", "followup_method",
                      "satisfaction", "resolution_plan"):
                r.pop(k, None)
            r["status"] = "处理中"
        rows[0]["severity"] = "严重"                      # escalates on arrival
        rows[1]["description"] = "顾客说要找电视台记者曝光"   # so does this
        (tmp_path / "shops" / shop).mkdir(parents=True)
        write_rows(tmp_path / "shops" / shop / f"{shop}_投诉登记.xlsx", rows, shop=shop)
    build_rules_template(tmp_path / "rules.xlsx", Rules(staff=STAFF))
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'''
[store]
url = "state.db"
merged = "汇总.xlsx"

[rules]
path = "rules.xlsx"

[mail]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_seconds = 5

[sync]
sources = ["shops/SH01", "shops/SH02"]

[[bot]]
name = "人民路店群"
kind = "wecom"
url_env = "T_BOT_SH01"
shops = ["SH01"]

[[bot]]
name = "滨江店群"
kind = "dingtalk"
url_env = "T_BOT_SH02"
secret_env = "T_BOT_SH02_SECRET"
shops = ["SH02"]

[[bot]]
name = "主管群"
kind = "feishu"
url_env = "T_BOT_BOSS"
secret_env = "T_BOT_BOSS_SECRET"
shops = []
''', encoding="utf-8")
    return cfg


def robots_env(monkeypatch, server, *, ding_secret="SECding"):
    monkeypatch.setenv("T_BOT_SH01", server.add("wecom", "wk"))
    monkeypatch.setenv("T_BOT_SH02", server.add("dingtalk", "dt", "SECding"))
    monkeypatch.setenv("T_BOT_SH02_SECRET", ding_secret)
    monkeypatch.setenv("T_BOT_BOSS", server.add("feishu", "fs", "fs-secret"))
    monkeypatch.setenv("T_BOT_BOSS_SECRET", "fs-secret")


def run_once(cfg: Path, now: datetime):
    return CliRunner().invoke(main, ["run", "--config", str(cfg), "--once", "--now", now.isoformat()])


def test_run_once_merges_scans_alerts_and_posts_exactly_once(tmp_path, smtp_server, robot_server, monkeypatch):
    server = smtp_server()
    cfg = chain(tmp_path, server.port)
    robots_env(monkeypatch, robot_server)
    r = run_once(cfg, NOW)
    assert r.exit_code == 0, r.output
    assert "合并：读取 2 个文件" in r.output and "Traceback" not in r.output
    subjects = [str(m["Subject"]) for m in server.messages]
    alerts = [s for s in subjects if "预警上报" in s]
    # 4 risky complaints x 2 managers (王经理, 赵主管), at once, not in tomorrow's digest
    assert len(alerts) == 8 and any("记者" in s for s in alerts)
    assert any("投诉时限提醒" in s for s in subjects)   # the day's digests too
    kinds = sorted(p.kind for p in robot_server.posts)
    assert kinds.count("wecom") == 1 and kinds.count("dingtalk") == 1
    assert kinds.count("feishu") == 5                     # 4 alerts + the managers' digest
    wecom = robot_server.posts_to("wecom", "wk")[0].body
    assert wecom["text"]["mentioned_mobile_list"] == ["13800000001"]
    ding = robot_server.posts_to("dingtalk", "dt")[0].body
    assert ding["at"]["atMobiles"] == ["13800000002"]
    assert any("@王经理" in p.body["content"]["text"] for p in robot_server.posts_to("feishu", "fs"))
    wb = load_workbook(tmp_path / "汇总.xlsx", read_only=True)
    assert {"汇总", "逾期", "处罚"} <= set(wb.sheetnames)
    wb.close()
    # Task Scheduler runs it again a quarter of an hour later: nothing doubles
    mails, posts = len(server.messages), len(robot_server.posts)
    r = run_once(cfg, NOW + timedelta(minutes=15))
    assert r.exit_code == 0, r.output
    assert len(server.messages) == mails and len(robot_server.posts) == posts
    assert "新邮件 0 封，新机器人消息 0 条" in r.output


def test_run_once_bad_signature_exits_1_naming_the_robot_and_the_rest_goes_out(
        tmp_path, smtp_server, robot_server, monkeypatch):
    server = smtp_server()
    cfg = chain(tmp_path, server.port)
    robots_env(monkeypatch, robot_server, ding_secret="SECwrong")
    r = run_once(cfg, NOW)
    assert r.exit_code == 1, r.output
    bad = [line for line in r.output.splitlines() if line.startswith("未发出")]
    assert len(bad) == 1 and "滨江店群" in bad[0] and "310000" in bad[0], r.output
    assert server.messages and robot_server.posts_to("wecom", "wk") and robot_server.posts_to("feishu", "fs")
    assert robot_server.posts_to("dingtalk", "dt") == []
    monkeypatch.setenv("T_BOT_SH02_SECRET", "SECding")   # the technician fixes the variable
    r = run_once(cfg, NOW + timedelta(minutes=15))
    assert r.exit_code == 0, r.output
    assert len(robot_server.posts_to("dingtalk", "dt")) == 1


def test_run_once_refuses_while_the_service_runs(tmp_path, smtp_server):
    from complaint_core.store import open_store
    from scheduler.lock import DaemonLock

    cfg = chain(tmp_path, smtp_server().port)
    with DaemonLock(open_store(f"sqlite:///{tmp_path / 'state.db'}")):
        r = run_once(cfg, NOW)
    assert r.exit_code == 2 and "另一个后台进程" in r.output and "Traceback" not in r.output


def test_unset_robot_variable_is_said_and_writes_json(tmp_path, smtp_server, robot_server, monkeypatch):
    cfg = chain(tmp_path, smtp_server().port)
    robots_env(monkeypatch, robot_server)
    monkeypatch.delenv("T_BOT_SH01")   # a typo in the variable's name looks the same
    r = run_once(cfg, NOW)
    assert r.exit_code == 0, r.output
    assert "人民路店群" in r.output and "T_BOT_SH01 未设置" in r.output
    assert robot_server.posts_to("wecom", "wk") == [] and list((tmp_path / "outbox" / "人民路店群").glob("*.json"))


def test_now_needs_once(tmp_path, smtp_server):
    cfg = chain(tmp_path, smtp_server().port)
    r = CliRunner().invoke(main, ["run", "--config", str(cfg), "--now", NOW.isoformat()])
    assert r.exit_code == 2 and "--once" in r.output


def test_the_service_jobs_post_too(tmp_path, smtp_server, robot_server, monkeypatch):
    """The daemon's own jobs (scan_job, send_job) queue and post the same way, each post once."""
    from complaint_core.rules_book import load_rules
    from complaint_desk.wiring import merge_once
    from scheduler.config import load_config
    from scheduler.daemon import scan_job, send_job

    server = smtp_server()
    cfg = chain(tmp_path, server.port)
    robots_env(monkeypatch, robot_server)
    merge_once(load_config(cfg), NOW)   # what the watcher does when a shop saves
    assert load_rules(tmp_path / "rules.xlsx").person("李娜").mobile == "13800000001"
    scan_job(str(cfg))
    posted = len(robot_server.posts)
    assert posted >= 7 and any(p.kind == "dingtalk" for p in robot_server.posts)
    send_job(str(cfg))
    scan_job(str(cfg))
    assert len(robot_server.posts) == posted
