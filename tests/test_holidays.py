"""The shop's 节假日 sheet: parsed into Settings, winning over chinese-calendar, and a warning for
years that no calendar knows, across the 2026/2027 boundary (chinese-calendar 1.11.0 stops at 2026)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from complaint_core import holidays as hol
from complaint_core import workcal
from complaint_core.deadlines import deadlines
from complaint_core.errors import BadSetting
from complaint_core.reader import read_workbook
from complaint_core.settings import Settings
from complaint_core.validate import validate_table
from complaint_desk.cli import main
from complaint_desk.demo_data import sample_rows, write_rows

BIZ = Settings(business_hours=True)
NEW_YEAR_EVE = datetime(2026, 12, 31, 17, 0)   # Thursday, one business hour left that day
NOW = datetime(2027, 1, 8, 12, 0)


@pytest.fixture(autouse=True)
def _fresh_caches():
    # the calendar lookups are cached per process; tests that teach chinese-calendar a year clear them
    workcal._is_workday.cache_clear()
    hol._builtin_years.cache_clear()
    yield
    workcal._is_workday.cache_clear()
    hol._builtin_years.cache_clear()


def shop_file(tmp_path, holiday_rows, *, business_hours=True, name="shop.xlsx"):
    rows = sample_rows(3, seed=5, now=datetime(2026, 12, 20, 10, 0))
    for r in rows:
        for key in ("first_contact_at", "feedback_at", "resolved_at", "followup_at", "contact_due", "feedback_due",
                    "followup_due", "suggested_steps"):
            r[key] = None
        r["status"] = "处理中"
    rows[0]["received_at"] = NEW_YEAR_EVE
    path = write_rows(tmp_path / name, rows, shop="SH01")
    wb = load_workbook(path)
    st = wb["设置"]
    for row in st.iter_rows(min_row=2):
        if row[0].value == "按工作时间计算":
            row[1].value = "是" if business_hours else "否"
    ws = wb[hol.SHEET_HOLIDAYS]
    for i, (day, kind, note) in enumerate(holiday_rows, start=6):
        ws.cell(row=i, column=1, value=day)
        ws.cell(row=i, column=2, value=kind)
        ws.cell(row=i, column=3, value=note)
    wb.save(path)
    return path


def test_sheet_rows_parse_and_placeholders_are_skipped():
    rows = [["日期", "类型", "说明"], [None, "休息", "2027 年元旦：待填"], [datetime(2027, 1, 1), "休息", "元旦"],
            ["2027/2/20", "上班", "调休"], ["２０２７年２月１１日", "Holiday", ""], [date(2027, 1, 1), "休息", "重复同型"]]
    assert hol.holidays_from_rows(rows) == ((date(2027, 1, 1), False), (date(2027, 2, 11), False),
                                            (date(2027, 2, 20), True))


@pytest.mark.parametrize(("row", "cell", "value"), [
    (["2027-13-01", "休息"], "节假日!A2", "2027-13-01"),
    ([datetime(2027, 1, 1), "放个假吧"], "节假日!B2", "放个假吧"),
    ([datetime(2027, 1, 1), None], "节假日!B2", "None"),
])
def test_bad_rows_name_the_cell_and_the_value(row, cell, value):
    with pytest.raises(BadSetting) as err:
        hol.holidays_from_rows([["日期", "类型"], row])
    assert err.value.where == cell and value in str(err.value)


def test_one_day_listed_as_both_is_refused():
    with pytest.raises(BadSetting, match="第 2 行"):
        hol.holidays_from_rows([["日期", "类型"], ["2027-01-01", "休息"], ["2027-01-01", "上班"]])


def test_without_the_sheet_new_year_2027_counts_as_a_working_day_and_validate_says_so(tmp_path):
    table = read_workbook(shop_file(tmp_path, []))
    assert table.settings.holidays == () and table.settings.business_hours
    due = deadlines(table.rows[0].values, table.settings)
    assert due.contact_due == datetime(2027, 1, 1, 10, 0)   # weekends only: 1 January looks like a Friday
    findings = validate_table(table, now=NOW)
    warned = [f for f in findings if f.code == "holidays_unknown"]
    assert len(warned) == 1 and findings[0] is warned[0]      # once per workbook, first
    f = warned[0]
    assert (f.sheet, f.row, f.cell, f.severity) == ("节假日", 1, "A1", "warning")
    assert "2027" in f.message and chinese_calendar.__version__ in f.message and "2026" not in f.message.split("只含")[0]


def test_the_sheet_wins_across_the_year_boundary(tmp_path):
    days = [(datetime(2027, 1, 1), "休息", "元旦"), (datetime(2027, 1, 2), "休息", ""),
            (datetime(2027, 1, 3), "休息", "")]
    table = read_workbook(shop_file(tmp_path, days))
    assert table.settings.holidays == tuple((d[0].date(), False) for d in days)
    due = deadlines(table.rows[0].values, table.settings)
    # 17:00–18:00 on 31 December, then the next working day is Monday 4 January 2027
    assert due.contact_due == datetime(2027, 1, 4, 10, 0)
    # three working days from Thursday 31 December: 4, 5 and 6 January
    assert due.feedback_due == datetime(2027, 1, 6, 17, 0)
    assert not [f for f in validate_table(table, now=NOW) if f.code == "holidays_unknown"]


def test_the_sheet_overrides_a_day_the_builtin_calendar_knows():
    # chinese-calendar 1.11.0: 2 January 2026 is a holiday and Sunday 4 January a make-up working day
    assert not workcal.is_workday(date(2026, 1, 2), BIZ) and workcal.is_workday(date(2026, 1, 4), BIZ)
    shop = BIZ.with_(holidays=((date(2026, 1, 2), True), (date(2026, 1, 4), False)))
    assert workcal.is_workday(date(2026, 1, 2), shop) and not workcal.is_workday(date(2026, 1, 4), shop)
    start = datetime(2026, 1, 2, 17, 0)
    assert workcal.add_business_time(start, timedelta(hours=2), BIZ) == datetime(2026, 1, 4, 11, 0)
    assert workcal.add_business_time(start, timedelta(hours=2), shop) == datetime(2026, 1, 5, 10, 0)


def test_once_the_builtin_calendar_knows_2027_the_warning_stops(tmp_path, monkeypatch):
    """What a chinese-calendar release with 2027 changes (its data taught the same way it holds it)."""
    path = shop_file(tmp_path, [])
    assert [f.code for f in validate_table(read_workbook(path), now=NOW)].count("holidays_unknown") == 1
    monkeypatch.setitem(chinese_calendar.holidays, date(2027, 1, 1), chinese_calendar.Holiday.new_years_day.value)
    workcal._is_workday.cache_clear()
    hol._builtin_years.cache_clear()
    table = read_workbook(path)
    assert hol.builtin_years()[1] == 2027
    assert not [f for f in validate_table(table, now=NOW) if f.code == "holidays_unknown"]
    assert deadlines(table.rows[0].values, table.settings).contact_due == datetime(2027, 1, 4, 10, 0)
    # the shop's own row still wins over the newly known day
    shop = table.settings.with_(holidays=((date(2027, 1, 1), True),))
    assert deadlines(table.rows[0].values, shop).contact_due == datetime(2027, 1, 1, 10, 0)


def test_clock_time_shops_get_no_warning(tmp_path):
    table = read_workbook(shop_file(tmp_path, [], business_hours=False))
    assert not [f for f in validate_table(table, now=NOW) if f.code == "holidays_unknown"]


def test_cli_validate_json_warns_once_and_logs_the_version(tmp_path, caplog):
    path = shop_file(tmp_path, [])
    other = shop_file(tmp_path, [], name="other.xlsx")
    with caplog.at_level("WARNING", logger="complaint_core.holidays"):
        result = CliRunner().invoke(main, ["validate", str(path), str(other), "--json", "--now", NOW.isoformat()])
    files = json.loads(result.output)["files"]
    assert [sum(f["code"] == "holidays_unknown" for f in x["findings"]) for x in files] == [1, 1]
    assert f"chinese-calendar {chinese_calendar.__version__}" in caplog.text and "pip install -U" in caplog.text


def test_a_bad_holiday_row_is_one_line_naming_file_sheet_and_cell(tmp_path):
    path = shop_file(tmp_path, [("2027-02-30", "休息", "")])
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "shop.xlsx!节假日!A6" in result.output and "2027-02-30" in result.output


def test_holidays_stay_plain_data():
    # the lead stores Settings as JSON: the shop's days are dates and bools only
    parsed = hol.holidays_from_rows([["2027-01-01", "休息"], ["2027-02-20", "上班"]])
    assert json.loads(json.dumps([[d.isoformat(), w] for d, w in parsed])) == [["2027-01-01", False],
                                                                                ["2027-02-20", True]]
    hash(parsed)
