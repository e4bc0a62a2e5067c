"""Generate docs/schema.md from the schema and the settings (``python -m complaint_desk.docgen``).

The docs are data-driven so they cannot drift: a test regenerates the text and compares.
"""

from __future__ import annotations

from pathlib import Path

from complaint_core.schema import FIELDS
from complaint_core.settings import SETTINGS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def schema_markdown() -> str:
    lines = [
        "# 投诉记录字段 The complaint record schema",
        "",
        "Generated from `complaint_core/schema.py` by `python -m complaint_desk.docgen`; do not edit by hand.",
        "Both header languages are recognised on input, in any column order; extra columns are kept.",
        "",
        "| key | 中文表头 | English header | type | required | allowed values | 说明 / help |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FIELDS:
        values = "、".join(f.choices) if f.choices else ""
        if f.choices_en:
            values += "<br>" + " / ".join(f.choices_en)
        flags = "yes" if f.required else ""
        lines.append(f"| `{f.key}` | {f.zh} | {f.en} | {f.type} | {flags} | {values} | {f.help_zh}<br>{f.help_en} |")
    lines += [
        "",
        "## 设置 Settings",
        "",
        "The 设置 sheet of a shop workbook (项目 | 值) and the rules the deadlines use.",
        "",
        "| key | 中文 | default | 说明 / help |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = s.default.strftime("%H:%M") if hasattr(s.default, "strftime") else s.default
        span = f"（0 到 {s.most:g}）" if s.most is not None else ""
        span_en = f" (0 to {s.most:g})" if s.most is not None else ""
        lines.append(f"| `{s.key}` | {s.zh} | `{default!s}` | {s.help_zh}{span}<br>{s.help_en}{span_en} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    (DOCS / "schema.md").write_text(schema_markdown(), encoding="utf-8")


if __name__ == "__main__":
    main()
