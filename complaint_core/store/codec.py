"""How a stored row is written: canonical JSON of its values, and a hash of that JSON.

No SQLAlchemy here: the reader's child processes encode the rows they read (in parallel, on
every core) and the daemon only stores them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
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


def encode_rows(table: ComplaintTable) -> list[tuple[str, str]]:
    """(JSON, hash) of every row of ``table``, in row order: what ingest stores."""
    out = []
    for row in table.rows:
        data = encode_values(row.values, row.extras)
        out.append((data, content_hash(data)))
    return out


def encode_findings(findings: list[Finding]) -> str:
    """A file's findings as one JSON array (see tables.file_findings)."""
    return json.dumps([[f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message] for f in findings],
                      ensure_ascii=False)
