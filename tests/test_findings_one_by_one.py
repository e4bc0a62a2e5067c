"""A file's findings decoded one at a time (issue 17): the same 校验问题 rows as decoded at once,
and an array's items as the standard library reads them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from complaint_core.merged import sheets
from complaint_core.merged.sheets import finding_rows
from complaint_core.store.codec import canonical, each_in_array


@pytest.mark.parametrize("text", [
    "[]", " [ ] ", "[1]", '[[1,"a"],[2,"b"]]', ' [ [1 , "a,]" ] ,\n\t[2,{"k":[1,2]}] ]\r\n',
    '[null,true,false,1.5,-0,12345678901234567890123,"\\u4e2d\\"\\\\"]', '[[],{},""]',
])
def test_an_arrays_items_one_at_a_time_are_what_json_reads(text: str) -> None:
    assert list(each_in_array(text)) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{}", "1", "[1,", "[1 2]", "[1,]", "[", '["a]'])
def test_what_is_not_an_array_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        list(each_in_array(text))


def _findings(n: int) -> str:
    found: list[list[Any]] = [["投诉登记", 2 + i, f"C{2 + i}", "customer_phone", "error" if i % 3 else "warning",
                               "bad_phone", f"电话“{i}”不是有效号码 “引号” \\ 与换行\n"] for i in range(n)]
    return canonical(found).decode()


def test_a_big_files_finding_rows_are_those_decoded_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _findings(5_000)
    whole = list(finding_rows("/x/SH01/店.xlsx", "SH01", data))
    monkeypatch.setattr(sheets, "FINDINGS_ONE_BY_ONE", 0)

    def whole_array(_text: str) -> Any:
        raise AssertionError("a big file's findings decoded at once")

    monkeypatch.setattr(sheets, "loads", whole_array)
    assert list(finding_rows("/x/SH01/店.xlsx", "SH01", data)) == whole
    assert len(whole) == 5_000 and whole[1][:6] == ["SH01", "店.xlsx", "投诉登记", 3, "C3", "错误"]
