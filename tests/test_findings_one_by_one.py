"""A file's findings decoded one at a time (issue 17): the same 校验问题 rows as decoded at once,
and an array's items as the standard library reads them."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from complaint_core.merged import sheets
from complaint_core.merged.sheets import finding_rows
from complaint_core.store import codec
from complaint_core.store.codec import canonical, each_in_array


@pytest.mark.parametrize("text", [
    "[]", " [ ] ", "[1]", '[[1,"a"],[2,"b"]]', ' [ [1 , "a,]" ] ,\n\t[2,{"k":[1,2]}] ]\r\n',
    '[null,true,false,1.5,-0,12345678901234567890123,"\\u4e2d\\"\\\\"]', '[[],{},""]',
])
def test_an_arrays_items_one_at_a_time_are_what_json_reads(text: str) -> None:
    assert list(each_in_array(text)) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{}", "1", "[1,", "[1 2]", "[1,]", "[", '["a]', "[1.]", "[1e]", "[tru]", "[-]"])
@pytest.mark.parametrize("piece", [1, 3, 1 << 18])
def test_what_is_not_an_array_is_refused(text: str, piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec._Window, "_PIECE", piece)
    for data in (text, text.encode()):
        with pytest.raises(ValueError):
            list(each_in_array(data))


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_utf8_bytes_are_decoded_a_piece_at_a_time_and_read_as_json_reads_them(
        piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the stored findings come as UTF-8 bytes, decoded as they are taken: an item, a number, a
    # word or a character cut where a piece ends reads whole, as json.loads reads the bytes
    monkeypatch.setattr(codec._Window, "_PIECE", piece)
    rnd = random.Random(piece)
    values = [1, 12345678901234567890, -3.5e10, 1.5e-7, "中文", "\ud800", "😀", [1, [2, "a,]"]], {"k": "v]"},
              True, False, None, "x" * 40, ""]
    for n in range(300):
        items = [rnd.choice(values) for _ in range(rnd.randint(0, 12))]
        layout = rnd.choice([{"separators": (",", ":")}, {"separators": (", ", ": ")}, {"indent": 2}])
        text = json.dumps(items, ensure_ascii=n % 3 == 0, **layout)   # type: ignore[arg-type]
        text = " \n" + text + " \t" if n % 4 == 0 else text
        data = text.encode("utf-8", "surrogatepass")
        assert list(each_in_array(data)) == json.loads(data) == list(each_in_array(text)), text


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
    assert list(finding_rows("/x/SH01/店.xlsx", "SH01", data.encode())) == whole   # as the store gives them
    assert len(whole) == 5_000 and whole[1][:6] == ["SH01", "店.xlsx", "投诉登记", 3, "C3", "错误"]
