"""The 处理手册 playbook: contents from the handling rules, sheet round trip, bad edits named."""

import pytest

from complaint_core.errors import BadSetting
from complaint_core.playbook import (
    DEFAULT_PLAYBOOK,
    HEADER,
    Playbook,
    playbook_from_rows,
    playbook_rows,
)
from complaint_core.schema import CUSTOMER_TYPES


def fired(**row) -> set[str]:
    return {r.rule_id for r in DEFAULT_PLAYBOOK.rules if r.applies(row)}


def test_round_trip_through_sheet_rows():
    rows = playbook_rows()
    assert tuple(rows[0]) == HEADER and len(rows) == len(DEFAULT_PLAYBOOK.rules) + 1
    assert playbook_from_rows(rows) == DEFAULT_PLAYBOOK
    # What a spreadsheet hands back: None for blanks, an empty row in the middle, extra columns.
    messy = [list(rows[0])] + [[c or None for c in r] + ["店长备注"] for r in rows[1:3]] + [[None] * 5] + rows[3:]
    assert playbook_from_rows(messy) == DEFAULT_PLAYBOOK


def test_always_rules_and_situations():
    always = fired()
    assert {"S1", "S2", "W3"} == always
    assert {"T1", "W1"} <= fired(customer_mood="愤怒") and "T1" not in fired(customer_mood="平静")
    assert "T2" in fired(validity="不成立") and "T2" not in fired(validity="成立")
    assert "T3" in fired(root_cause="客户原因") and "T3" not in fired(root_cause="员工原因")
    assert "T4" in fired(customer_request="赔偿补偿") and "T4" not in fired(customer_request="退款")
    assert "E1" in fired(severity="严重") and "E1" not in fired(severity="较重")
    assert "E2" in fired(customer_type="有社会背景型")


def test_every_customer_type_has_advice():
    for ctype in CUSTOMER_TYPES[1:]:
        assert fired(customer_type=ctype) - fired(), ctype


def test_english_values_and_commas_are_accepted_in_the_sheet():
    rows = [list(HEADER), ["X1", "Mood", "激动，Angry", "先安抚", "本店"]]
    book = playbook_from_rows(rows)
    assert book == Playbook((book.rules[0],)) and book.rules[0].field == "customer_mood"
    assert book.rules[0].values == {"激动", "愤怒"}


@pytest.mark.parametrize("row, cell", [
    (["X1", "客户情绪", "狂怒", "先安抚", ""], "C2"),          # not a dropdown value
    (["X1", "投诉内容", "吵架", "先安抚", ""], "B2"),          # not a dropdown column
    (["X1", "不存在的列", "愤怒", "先安抚", ""], "B2"),
    (["X1", "客户情绪", "", "先安抚", ""], "C2"),              # column without values
    (["X1", "", "愤怒", "先安抚", ""], "C2"),                  # values without a column
    (["X1", "客户情绪", "愤怒", "", ""], "D2"),                # no advice
    (["S1", "客户情绪", "愤怒", "先安抚", ""], "A3"),          # the same id twice: the 2nd is named
])
def test_bad_rows_name_sheet_cell_and_value(row, cell):
    with pytest.raises(BadSetting, match=f"处理手册!{cell}") as err:
        playbook_from_rows([list(HEADER), row] if row[0] != "S1" else [list(HEADER), row, row])
    assert repr(err.value.value) in str(err.value)


def test_empty_playbook_is_refused():
    with pytest.raises(BadSetting, match="处理手册!A2"):
        playbook_from_rows([list(HEADER), [None, None, None, None, None]])


def test_rules_doc_lists_every_built_in_rule():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in DEFAULT_PLAYBOOK.rules:
        assert f"| {rule.rule_id} |" in doc and rule.advice in doc, rule.rule_id
