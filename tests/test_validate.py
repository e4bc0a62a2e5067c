from datetime import datetime, timedelta

import pytest

from complaint_core.findings import CODES
from complaint_core.model import ComplaintTable, Invalid, SourceRow
from complaint_core.schema import FIELDS, KEYS
from complaint_core.validate import email_ok, phone_ok, validate_table
from tests.support.workbooks import NOW, sample_rows

COLUMNS = {k: i for i, k in enumerate(KEYS)}


def table_of(rows, columns=None):
    return ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0,
                          columns=columns or COLUMNS, extra_columns={},
                          rows=[SourceRow(row=i + 2, values={k: r.get(k) for k in (columns or COLUMNS)})
                                for i, r in enumerate(rows)])


def codes(rows, **kw):
    return [(f.row, f.field, f.code) for f in validate_table(table_of(rows, **kw), now=NOW)]


def one(**changes):
    row = sample_rows(1, seed=1, now=NOW)[0]
    row.update(changes)
    return codes([row])


def test_clean_rows_have_no_findings():
    assert codes(sample_rows(300, seed=9, now=NOW)) == []


@pytest.mark.parametrize("key", [f.key for f in FIELDS if f.required])
def test_required(key):
    assert (2, key, "required") in one(**{key: None})


@pytest.mark.parametrize("changes, expected", [
    ({"customer_phone": "12345"}, ("customer_phone", "bad_phone")),
    ({"customer_phone": None, "customer_email": None}, ("customer_phone", "phone_or_email")),
    ({"customer_email": "a@b"}, ("customer_email", "bad_email")),
    ({"channel": Invalid("飞鸽", "bad_choice")}, ("channel", "bad_choice")),
    ({"received_at": Invalid("昨天", "bad_datetime")}, ("received_at", "bad_datetime")),
    ({"received_at": NOW + timedelta(hours=1)}, ("received_at", "future_datetime")),
    ({"loss_amount": -1}, ("loss_amount", "negative_amount")),
    ({"compensation_amount": Invalid("三百", "bad_number")}, ("compensation_amount", "bad_number")),
    ({"validity": "成立", "responsible_person": None}, ("responsible_person", "responsible_missing")),
    ({"status": "已解决", "resolved_at": None}, ("resolved_at", "status_needs_resolved")),
    ({"status": "已关闭", "resolved_at": NOW - timedelta(hours=1), "followup_at": None},
     ("followup_at", "status_needs_followup")),
    ({"status": "不成立", "validity": "成立"}, ("validity", "status_needs_invalid")),
    ({"validity": "不成立", "status": "不成立", "resolution_plan": None}, ("resolution_plan", "invalid_needs_reply")),
    ({"severity": "严重", "status": "处理中", "manager_approval": None}, ("manager_approval", "severe_not_escalated")),
])
def test_each_rule_fires(changes, expected):
    assert (2, *expected) in one(**changes)


def test_date_order():
    received = datetime(2026, 11, 10, 10, 0)
    found = one(received_at=received, first_contact_at=received - timedelta(hours=1),
                resolved_at=received + timedelta(days=2), followup_at=received + timedelta(days=1),
                status="已回访")
    assert (2, "first_contact_at", "before_received") in found
    assert (2, "followup_at", "followup_before_resolved") in found


def test_late_contact_and_feedback_are_warnings():
    received = datetime(2026, 11, 10, 10, 0)
    rows = [dict(sample_rows(1, seed=2, now=NOW)[0], received_at=received,
                 first_contact_at=received + timedelta(hours=3), feedback_at=received + timedelta(days=4))]
    found = validate_table(table_of(rows), now=NOW)
    late = {f.code: f.severity for f in found}
    assert late == {"contact_late": "warning", "feedback_late": "warning"}


def test_late_followup_is_a_warning_and_on_time_is_not():
    received = datetime(2026, 11, 10, 10, 0)
    base = dict(sample_rows(1, seed=2, now=NOW)[0], received_at=received, first_contact_at=received,
                feedback_at=received, resolved_at=received + timedelta(days=1), status="已回访")
    late = validate_table(table_of([dict(base, followup_at=received + timedelta(days=4, hours=1))]), now=NOW)
    assert [(f.code, f.severity) for f in late] == [("followup_late", "warning")]
    assert validate_table(table_of([dict(base, followup_at=received + timedelta(days=4))]), now=NOW) == []


def test_duplicate_ids_name_the_first_row():
    rows = sample_rows(3, seed=3, now=NOW)
    rows[2]["complaint_id"] = rows[0]["complaint_id"]
    found = validate_table(table_of(rows), now=NOW)
    assert [(f.row, f.code) for f in found] == [(4, "duplicate_id")]
    assert "第 2 行" in found[0].message and found[0].cell == "A4"


def test_missing_required_column_is_reported_on_the_header_row():
    columns = {k: i for i, k in enumerate(k for k in KEYS if k != "channel")}
    found = validate_table(table_of(sample_rows(2, seed=4, now=NOW), columns=columns), now=NOW)
    assert [(f.row, f.field, f.code) for f in found] == [(1, "channel", "missing_column")]


def test_english_messages_and_every_code_documented():
    found = validate_table(table_of([dict(sample_rows(1, seed=1, now=NOW)[0], customer_phone="12")]),
                           now=NOW, lang="en")
    assert found[0].message == "Phone: '12' is not a valid mobile or landline number"
    assert set(CODES) >= {"required", "bad_phone", "duplicate_id"}


@pytest.mark.parametrize("text", ["13800138000", "+86 138 0013 8000", "１３８００１３８０００", "021-12345678",
                                  "0755 1234567", "400-800-1234", "010-12345678转123"])
def test_phone_ok(text):
    assert phone_ok(text)


@pytest.mark.parametrize("text", ["12345", "1380013800", "23800138000", "abc"])
def test_phone_bad(text):
    assert not phone_ok(text)


def test_email():
    assert email_ok("wang.li@example.com.cn") and not email_ok("wang@") and not email_ok("a b@c.com")


@pytest.mark.parametrize("changes", [
    {"customer_phone": "138-0013-8000"},
    {"customer_phone": None, "customer_email": "li@example.com"},
    {"customer_phone": "0755-1234567", "customer_email": None},
    {"received_at": NOW + timedelta(minutes=4)},               # within the clock-skew tolerance
    {"loss_amount": 0.0, "compensation_amount": 0.0},
    {"validity": "成立", "responsible_dept": "售后部", "responsible_person": "张伟"},
    {"validity": "待判定", "responsible_dept": None, "responsible_person": None},
    {"status": "已解决", "resolved_at": NOW - timedelta(hours=1)},
    {"status": "已关闭", "resolved_at": NOW - timedelta(hours=2), "followup_at": NOW - timedelta(hours=1)},
    {"status": "不成立", "validity": "不成立", "resolution_plan": "已向客户说明保修条款"},
    {"severity": "严重", "status": "待批示", "manager_approval": None},
    {"severity": "严重", "status": "处理中", "manager_approval": "同意退款"},
])
def test_correct_variants_raise_nothing(changes):
    row = sample_rows(1, seed=1, now=NOW)[0]
    row.update(changes, received_at=changes.get("received_at", NOW - timedelta(days=1)),
               first_contact_at=None, feedback_at=None)
    if row["status"] in ("已解决", "已回访", "已关闭") and "resolved_at" not in changes:
        row["status"] = "处理中"
    if row["validity"] == "不成立" and "validity" not in changes:
        row["validity"] = "待判定"
    if "followup_at" not in changes:
        row["followup_at"] = None
        if row["status"] in ("已回访", "已关闭"):
            row["status"] = "处理中"
    if "resolved_at" not in changes and row["status"] not in ("已解决", "已回访", "已关闭"):
        row["resolved_at"] = None
    assert codes([row]) == []


def test_future_beyond_tolerance_and_time_order_boundaries():
    assert (2, "received_at", "future_datetime") in one(received_at=NOW + timedelta(minutes=6))
    received = NOW - timedelta(days=1)
    same = one(received_at=received, first_contact_at=received, feedback_at=None, resolved_at=None,
               followup_at=None, status="处理中")
    assert not [c for c in same if c[2] in ("before_received", "followup_before_resolved")]


def test_findings_are_ordered_by_row_then_sheet_column():
    # The shop moved 联系电话 to the front: its finding comes first in that row.
    columns = dict(COLUMNS, customer_phone=0, complaint_id=COLUMNS["customer_phone"])
    rows = sample_rows(2, seed=12, now=NOW)
    rows[1].update(customer_phone="12", channel=None, loss_amount=-5.0)
    rows[0].update(customer_email="bad@")
    found = [(f.row, f.field) for f in validate_table(table_of(rows, columns=columns), now=NOW)]
    assert found == [(2, "customer_email"), (3, "customer_phone"), (3, "channel"), (3, "loss_amount")]
    assert validate_table(table_of(rows, columns=columns), now=NOW)[1].cell == "A3"


def test_every_duplicate_after_the_first_is_reported():
    rows = sample_rows(4, seed=13, now=NOW)
    for r in rows[1:]:
        r["complaint_id"] = rows[0]["complaint_id"]
    found = validate_table(table_of(rows), now=NOW)
    assert [(f.row, f.code) for f in found] == [(3, "duplicate_id"), (4, "duplicate_id"), (5, "duplicate_id")]
    assert all("第 2 行" in f.message for f in found)


def test_ten_thousand_rows_validate_quickly():
    import time

    big = table_of(sample_rows(10_000, seed=14, now=NOW))
    start = time.perf_counter()
    assert validate_table(big, now=NOW) == []
    # Measured ~0.3 s on a loaded 2-core box; the limit leaves room for slow CI runners.
    assert time.perf_counter() - start < 5


def test_phone_typed_as_a_number_is_judged_by_its_digits():
    assert one(customer_phone=13800138000.0) == []
    assert (2, "customer_phone", "bad_phone") in one(customer_phone=12345.0)


@pytest.mark.parametrize("layout", [{}, {"lang": "en", "shuffle_columns": True, "title_rows": 2}])
def test_real_workbook_finds_exactly_the_broken_cells(tmp_path, layout):
    from complaint_core.reader import read_workbook
    from tests.support.workbooks import inject_defects, write_shop_workbook

    rows = sample_rows(30, seed=22, now=NOW)
    path = write_shop_workbook(tmp_path / "shop.xlsx", rows, shop_code="SH01", **layout)
    clean = read_workbook(path)
    assert validate_table(clean, now=NOW) == []
    expected = inject_defects(rows, now=NOW)
    path = write_shop_workbook(tmp_path / "broken.xlsx", rows, shop_code="SH01", **layout)
    table = read_workbook(path)
    found = validate_table(table, now=NOW)
    first = table.rows[0].row
    assert sorted((f.row, f.code) for f in found) == sorted((first + i, c) for i, c in expected.items())
    for f in found:
        assert f.cell == table.cell(f.field, f.row) and f.sheet == table.sheet and f.message


def test_a_moment_in_a_message_reads_the_same_whatever_its_kind() -> None:
    # Messages print moments to the minute. Naive datetimes take a quicker path than strftime
    # (1,700 findings a file): it must print exactly what strftime prints, and a moment with a
    # zone must not grow an offset.
    from datetime import date, time, timedelta, timezone

    from complaint_core.findings import _fmt

    moments = [datetime(1000, 1, 1), datetime(1999, 12, 31, 23, 59, 59, 999999), datetime(2026, 9, 16, 22, 31, 5),
               datetime(9999, 12, 31, 23, 59), datetime(999, 5, 4, 3, 2),
               datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=8)))]
    for m in moments:
        assert _fmt(m) == m.strftime("%Y-%m-%d %H:%M"), m
    assert _fmt(date(2026, 3, 1)) == "2026-03-01 00:00"
    assert _fmt(time(9, 30)) == time(9, 30).strftime("%Y-%m-%d %H:%M")


def _message_as_first_written(code: str, key: str, lang: str, **fmt: object) -> str:
    from complaint_core.findings import _NEEDS_CHOICES, CODES, _fmt
    from complaint_core.schema import FIELD_BY_KEY

    _sev, zh, en = CODES[code]
    field = FIELD_BY_KEY.get(key)
    header = (field.zh if lang == "zh" else field.en) if field else key
    args = {k: _fmt(v) for k, v in fmt.items()}
    if field and field.choices and "choices" not in args and code in _NEEDS_CHOICES:
        args["choices"] = "、".join(field.choices) if lang == "zh" else ", ".join(field.choices_en)
    return (zh if lang == "zh" else en).format(header=header, **args)


def _outcome(make, *args: object, **kw: object) -> object:
    try:
        return make(*args, **kw)
    except KeyError as exc:   # a template naming a value the call does not give: as before
        return ("KeyError", str(exc))


def test_every_message_reads_as_first_written() -> None:
    # the header and the choices are filled into each template once: the text must not change
    import re
    from datetime import datetime

    from complaint_core.findings import CODES, message
    from complaint_core.schema import FIELDS

    values = [datetime(2026, 9, 16, 22, 31), "{x}", "值}{", 12.0, -3.5, "x" * 80, None]
    for code, (_sev, zh, en) in CODES.items():
        names = sorted(set(re.findall(r"{(\w+)}", zh + en)) - {"header"})
        for key in [f.key for f in FIELDS] + ["stray", "{odd}"]:
            for lang in ("zh", "en"):
                for i in range(len(values)):
                    args = {n: values[(i + j) % len(values)] for j, n in enumerate(names) if n != "choices"}
                    assert _outcome(message, code, key, lang, **args) == _outcome(
                        _message_as_first_written, code, key, lang, **args)
                    if "choices" in names:
                        args["choices"] = "甲、乙"
                        assert _outcome(message, code, key, lang, **args) == _outcome(
                            _message_as_first_written, code, key, lang, **args)
