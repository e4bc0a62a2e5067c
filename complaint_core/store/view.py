"""What a sheet builder, the render and the scan may ask of the store, as a protocol.

Every sheet of the merged workbook (ours and the scan's) and the scheduler's scan read the
store through these methods and nothing else, so a newcomer can see at a glance what a sheet
depends on, and a test can hand one a different store. ``View`` in ``db.py`` is the one
implementation: one transaction, each query run once per render (see its docstring).

The add-in's ``excel_addin.port.WorkbookPort`` is the same idea on the Excel side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..penalties import PenaltyEvent
from ..rules_book import Rules

Record = dict[str, Any]
"""One complaint as ``Store.snapshot`` gives it: every schema key (values as the reader
normalised them: text, datetimes, money, or None), its provenance (shop, source_file,
source_row, record_id, record_ref, deleted, ...), its file's ``settings`` and the deadlines
computed for it. The values differ in type by key, hence ``Any``."""

RowKey = tuple[str, ...]
"""The key cells of one row of a sheet with manager columns (全部投诉: the 记录标识)."""

ManagerCells = dict[RowKey, dict[str, str | None]]
"""What managers typed on one sheet: row key -> column key -> the text (None: they cleared it)."""

FindingRow = tuple[str, str, str, int, str, str, str, str, str]
"""One stored finding: (shop, source_path, sheet, row, cell, field, severity, code, message)."""

T = TypeVar("T")


@runtime_checkable
class StoreView(Protocol):
    """One consistent read of the store (one transaction) for one render or one scan."""

    def current_records(self) -> list[Record]:
        """Every complaint ever seen, deleted ones too, in (shop, received, id) order."""

    def shop_marks(self) -> dict[str, tuple[int, int, int]]:
        """shop -> a mark that moves whenever one of the shop's stored rows is added or changed."""

    def shop_records(self, shop: str) -> Iterator[tuple[list[Record], list[dict[str, Any]]]]:
        """(records, conflicts) of one shop (deleted complaints too) in ``current_records``' order,
        decoded when asked and a thousand at a time: the render walks the shops so that it never
        holds every complaint, nor every complaint of a big shop."""

    def finding_digests(self) -> list[tuple[str, str, str]]:
        """(path, shop, digest of its findings' JSON) per file, in path order."""

    def finding_file(self, path: str) -> tuple[str, bytes, str] | None:
        """(shop, stored JSON of its findings in UTF-8, its digest) of one file; None: no such file."""

    def live_records(self) -> list[Record]:
        """The complaints whose source row still exists (what 逾期, 处罚 and 汇总 count)."""

    def conflicts(self) -> list[dict[str, Any]]:
        """Complaints present with different content in more than one place (see ``db._conflicts``)."""

    def findings(self) -> list[FindingRow]:
        """Every finding of every shop file, files in path order."""

    def sources(self) -> list[dict[str, Any]]:
        """One row of the ``sources`` table per shop file (path, shop, rows, status, error, ...)."""

    def manager_edits(self, sheet: str) -> ManagerCells:
        """What managers typed on ``sheet`` of the merged workbook, as saved in the store."""

    def rules(self) -> Rules:
        """The chain's rules as last saved (the defaults before any rules workbook was loaded)."""

    def penalty_marks(self) -> dict[str, tuple[int, str, str]]:
        """Each shop's penalty events as (how many, first id, last id) (``Store.penalty_marks``)."""

    def loss_event_ids(self) -> set[str]:
        """The ids of the stored loss penalty lines (损失处罚)."""

    def shop_penalty_events(self, shops: Iterable[str]) -> Iterator[tuple[str, list[PenaltyEvent]]]:
        """(shop, its penalty events by day) for ``shops``, in code-point order of the shops."""

    def confirmations(self) -> dict[str, str]:
        """处罚确认 per penalty event id (确认 / 免除 / 申诉, "" when nobody decided yet)."""

    def notes(self) -> list[dict[str, Any]]:
        """Adoptions of a merged workbook by this store (path, cells, sent, at), for 来源."""

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per view under ``key``: sheets share derived results (the overdue scan)."""
