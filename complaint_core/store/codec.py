"""How a stored row is written: canonical JSON of its values, and a hash of that JSON.

No SQLAlchemy here: the reader's child processes encode the rows they read (in parallel, on
every core) and the daemon only stores them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model import ComplaintTable, Finding, Invalid
from ..schema import DATETIME_KEYS


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Invalid):
        return str(value.raw)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def encode_values(values: dict[str, Any], extras: dict[str, Any] | None = None) -> str:
    doc = {k: _encode(v) for k, v in values.items() if v is not None}
    if extras:
        doc["_extras"] = {k: _encode(v) for k, v in extras.items()}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def decode_values(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    for key in DATETIME_KEYS & doc.keys():
        try:
            doc[key] = datetime.fromisoformat(doc[key])
        except (TypeError, ValueError):
            pass  # kept as the text the shop typed (it was reported as bad_datetime)
    return doc


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def record_key(shop: str, complaint_id: str | None, path: str, row: int) -> str:
    # Rows without an id cannot be matched across files: they are keyed by where they are.
    return f"{shop}\x1f{complaint_id}" if complaint_id else f"{shop}\x1f@{path}#{row}"


def shop_of(table: ComplaintTable, row_values: dict[str, Any], path: Path) -> str:
    # The row's own 门店 wins, then the workbook's settings, then the folder the shop saves into.
    shop = row_values.get("shop")
    if shop and not isinstance(shop, Invalid):
        return str(shop).strip()
    if table.shop_code:
        return str(table.shop_code).strip()
    return path.parent.name


# What the store needs of one row: (sheet row, shop, complaint id, 最后更新, JSON, hash, sheet).
PreparedRow = tuple[int, str, "str | None", "datetime | None", str, str, str]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A shop file ready to store: made in the reader's child, small to send to the daemon
    (no cell dicts, no finding objects), so the daemon only runs SQL."""

    sheet: str                   # the first table's sheet; each row carries its own
    rows: list[PreparedRow]
    findings_json: str
    findings: int


def prepare_rows(table: ComplaintTable, path: Path) -> list[PreparedRow]:
    out: list[PreparedRow] = []
    for row in table.rows:
        data = encode_values(row.values, row.extras)
        cid = row.values.get("complaint_id")
        cid = str(cid).strip() if cid and not isinstance(cid, Invalid) else None
        upd = row.values.get("updated_at")
        out.append((row.row, shop_of(table, row.values, path), cid, upd if isinstance(upd, datetime) else None,
                    data, content_hash(data), table.sheet))
    return out


def prepare(table: ComplaintTable | list[ComplaintTable], findings: list[Finding], path: Path) -> Prepared:
    """One file's tables (a workbook may hold several) ready to store."""
    tables = table if isinstance(table, list) else [table]
    rows = [r for t in tables for r in prepare_rows(t, path)]
    return Prepared(tables[0].sheet, rows, encode_findings(findings), len(findings))


def encode_findings(findings: list[Finding]) -> str:
    """A file's findings as one JSON array (see tables.file_findings)."""
    return json.dumps([[f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message] for f in findings],
                      ensure_ascii=False)
