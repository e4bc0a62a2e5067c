"""Realistic, seeded sample complaints for the demo, the tests and the benchmarks.

Rows are consistent with the handling rules unless a defect is injected on purpose, so
a validator that reports anything on a clean row has a false error.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from complaint_core.schema import CATEGORIES, CHANNELS, FIELDS, HARASSMENT, REQUESTS

# Complaints only (the same seven categories as before, so seeded data stays what it was): a
# harassment call is logged apart and has no deadlines.
COMPLAINT_CATEGORIES = tuple(c for c in CATEGORIES if c != HARASSMENT)

# Demo mobiles in a block no real subscriber has: group robots @ people by them (企业微信, 钉钉).
MOBILES = {"李娜": "13800000001", "张强": "13800000002", "陈静": "13800000003", "刘洋": "13800000004",
           "周杰": "13800000005", "王经理": "13800000011", "赵主管": "13800000012", "孙主管": "13800000013"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英")
STAFF = (("前台", "李娜", "王经理"), ("售后部", "张强", "赵主管"), ("收银", "陈静", "王经理"),
         ("客服部", "刘洋", "孙主管"), ("仓储部", "周杰", "赵主管"))
# Demo addresses on the reserved example.com domain: reminder mails go to the outbox folder only.
EMAILS = {"李娜": "li.na", "张强": "zhang.qiang", "陈静": "chen.jing", "刘洋": "liu.yang",
          "周杰": "zhou.jie", "王经理": "wang.manager", "赵主管": "zhao.lead", "孙主管": "sun.lead"}
SUBJECTS = ("电饭煲", "空调安装", "会员卡充值", "收银员服务", "冰箱", "快递配送", "洗衣机维修", "手机壳", "退货流程")
STORIES = (
    "购买的{s}使用三天就出现故障，要求尽快处理。",
    "对{s}不满意，店员态度冷淡，多次询问无人回应。",
    "{s}的价格与宣传不一致，结账时多收了费用。",
    "预约的{s}服务迟到两小时，没有提前通知。",
    "{s}维修后问题依旧，已经来回跑了三次。",
    "会员承诺的{s}优惠没有兑现，觉得被欺骗。",
)


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))


def sample_rows(n: int, *, seed: int, now: datetime, shop: str = "SH01") -> list[dict[str, Any]]:
    """``n`` valid complaint rows received in the 30 days before ``now``."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        received = now - timedelta(minutes=rng.randint(30, 30 * 24 * 60))
        dept, person, _head = rng.choice(STAFF)
        subject = rng.choice(SUBJECTS)
        row: dict[str, Any] = {
            "complaint_id": f"{shop}-{received:%Y%m%d}-{i + 1:03d}",
            "shop": shop,
            "received_at": received.replace(second=0, microsecond=0),
            "received_by": rng.choice(("李娜", "陈静", "刘洋")),
            "channel": rng.choice(CHANNELS),
            "customer_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "customer_phone": _phone(rng),
            "subject": subject,
            "category": rng.choice(COMPLAINT_CATEGORIES),
            "description": rng.choice(STORIES).format(s=subject),
            "customer_request": rng.choice(REQUESTS),
            "customer_mood": rng.choice(("平静", "不满", "激动", "愤怒")),
            "customer_type": rng.choice(("一般", "一般", "一般", "感情用事型", "固执己见型", "有备而来型")),
            "severity": rng.choice(("一般", "一般", "较重")),
            "validity": "成立",
            "responsible_dept": dept,
            "responsible_person": person,
            "root_cause": rng.choice(("员工原因", "企业原因", "外部原因", "待查")),
            "status": "处理中",
        }
        age = now - received
        if age > timedelta(hours=3) and rng.random() < 0.8:
            row["first_contact_at"] = received + timedelta(minutes=rng.randint(10, 110))
        if age > timedelta(days=3) and rng.random() < 0.8:
            row["feedback_at"] = received + timedelta(hours=rng.randint(4, 70))
        if age > timedelta(days=5) and rng.random() < 0.6 and "first_contact_at" in row:
            resolved = received + timedelta(days=rng.randint(1, 4))
            row["resolved_at"] = resolved
            row["resolution_plan"] = rng.choice(("退款并致歉", "上门维修", "更换新品", "赠送优惠券并道歉"))
            row["status"] = "已解决"
            if now - resolved > timedelta(days=4) and rng.random() < 0.7:
                row["followup_at"] = resolved + timedelta(days=rng.randint(1, 2))
                row["followup_method"] = rng.choice(("电话", "短信", "上门"))
                row["satisfaction"] = rng.choice(("非常满意", "满意", "一般"))
                row["status"] = "已回访"
        if row["channel"] == "第三方转办":
            # passed on by 12315 / 消协: escalated at once (预警上报), as the handling rules ask
            row["severity"] = "严重"
            if row["status"] == "处理中":
                row["status"] = "待批示"
        if rng.random() < 0.3:
            row["loss_amount"] = rng.choice((50, 120, 300, 880))
            row["compensation_amount"] = rng.choice((0, 20, 50, 100))
        rows.append(row)
    return rows


def inject_defects(rows: list[dict[str, Any]], *, now: datetime) -> dict[int, str]:
    """Break a few rows on purpose; returns row index -> finding code expected."""
    expected: dict[int, str] = {}
    if len(rows) > 4:
        rows[1]["customer_phone"] = "138-0013"
        expected[1] = "bad_phone"
        rows[2]["received_at"] = now + timedelta(days=2)
        rows[2].pop("first_contact_at", None)
        rows[2].pop("feedback_at", None)
        rows[2].pop("resolved_at", None)
        rows[2].pop("followup_at", None)
        rows[2]["status"] = "处理中"
        expected[2] = "future_datetime"
        rows[3]["customer_name"] = None
        expected[3] = "required"
        rows[4].update(validity="不成立", status="不成立", resolution_plan=None)
        expected[4] = "invalid_needs_reply"
    return expected


def write_rows(path: Path, rows: list[dict[str, Any]], *, shop: str, lang: str = "zh") -> Path:
    """Rows written into a fresh template, the way staff fill it in Excel."""
    from complaint_core.atomic import atomic_write
    from complaint_core.model import column_letter
    from complaint_core.template import build_workbook

    wb = build_workbook(shop_code=shop, lang=lang)
    ws = wb.worksheets[0]
    col = {f.key: i + 1 for i, f in enumerate(FIELDS)}
    for r, row in enumerate(rows, start=2):
        for key, value in row.items():
            if value is None:
                continue
            cell = ws.cell(row=r, column=col[key], value=value)
            if isinstance(value, str):
                cell.data_type = "s"
    table = next(iter(ws.tables.values()))
    last = max(len(rows) + 1, int(table.ref.split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")))
    table.ref = f"A1:{column_letter(len(FIELDS) - 1)}{last}"
    with atomic_write(path) as tmp:
        wb.save(tmp)
    return path
