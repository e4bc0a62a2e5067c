"""The open deadlines the day's digests list, kept per recipient as a scan finds them (issue 17).

A chain with years of history can have tens of thousands of open deadlines. The scan used to
hold every one of them until the digests were written, whether or not anyone had an address to
send them to, and a person's mail then listed thousands of lines nobody reads. The book keeps,
for each recipient the rules and robots name, how many items it has and only its
``LINES`` most urgent ones: overdue before due soon, the longest late first, then the soonest
due. Those are listed in the order the scan met them (shop, then sheet row), as before; a
digest under the limit is word for word what it was. The rest are on the merged workbook's
逾期 sheet, and the digest says how many there are.

What a scan holds for the digests is then bounded by the staff and robot groups, not by the
store.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from complaint_core.overdue import OverdueItem
from complaint_core.rules_book import Rules

if TYPE_CHECKING:
    from .robots import Robot

__all__ = ["LINES", "DigestBook", "Shortlist"]

LINES = 200   # items one digest lists; its title and first line give the full count
_RANK = {"overdue": 0, "due_soon": 1}
_EPOCH = datetime(1900, 1, 1)


@dataclass
class Shortlist:
    """One recipient's open items: how many, and the ``limit`` most urgent with where each was met."""

    limit: int
    count: int = 0
    _kept: list[tuple[tuple[int, float, int], int, OverdueItem]] = field(default_factory=list)

    def add(self, item: OverdueItem, seq: int) -> None:
        self.count += 1
        # a min-heap of the negated urgency: its top is the least urgent kept, the one to drop
        late = (item.due - _EPOCH).total_seconds()
        entry = ((-_RANK[item.state], -late, -seq), seq, item)
        if len(self._kept) < self.limit:
            heapq.heappush(self._kept, entry)
        elif entry[0] > self._kept[0][0]:
            heapq.heapreplace(self._kept, entry)

    @property
    def items(self) -> list[OverdueItem]:
        """The kept items in the order the scan met them."""
        return [item for _key, _seq, item in sorted(self._kept, key=lambda e: e[1])]

    @property
    def left_out(self) -> int:
        return self.count - len(self._kept)


class DigestBook:
    """What the day's mails and robot posts need, filled a shop at a time by ``add``.

    ``persons``: a person with an e-mail address -> their open items. ``heads``: (head, address)
    -> the overdue items of the departments they head. ``groups``: robot name -> its items (a
    shop group: its shops' open items; the managers' group: every overdue item), with the
    people to @ in the order first met. ``states`` counts every open item added.
    """

    def __init__(self, rules: Rules, robots: Sequence[Robot] = (), *, limit: int | None = None) -> None:
        self.rules, self.robots = rules, tuple(robots)
        self.limit = LINES if limit is None else max(1, limit)
        self.states: Counter[str] = Counter()
        self.persons: dict[str, Shortlist] = {}
        self.heads: dict[tuple[str, str], Shortlist] = {}
        self.groups: dict[str, Shortlist] = {}
        self.people: dict[str, dict[str, None]] = {r.name: {} for r in self.robots}
        self._seq = 0
        self._address: dict[str, str] = {}
        # a department's head and the address their digest goes to (the last staff row of a
        # department says, as before); a head of two departments gets one mail for both, the
        # first department's items before the second's
        self._head_of: dict[str, tuple[str, str]] = {}
        for p in rules.staff:
            if p.dept and p.head:
                boss = rules.person(p.head)
                email = p.manager_email or (boss.email if boss else "")
                if email:
                    self._head_of[p.dept] = (p.head, email)
        self._dept_rank = {d: n for n, d in enumerate(self._head_of)}
        for key in self._head_of.values():   # a head gets their mail even with nothing overdue
            self._list(self.heads, key)
        self._head_names = rules.heads()

    @classmethod
    def of(cls, items: Iterable[OverdueItem], rules: Rules, robots: Sequence[Robot] = (), *,
           limit: int | None = None) -> DigestBook:
        book = cls(rules, robots, limit=limit)
        book.add(items)
        return book

    def email(self, name: str) -> str:
        """The address of person ``name``'s digest (empty: they have none)."""
        got = self._address.get(name)
        if got is None:
            p = self.rules.person(name)
            got = self._address[name] = p.email if p and p.email else ""
        return got

    def add(self, items: Iterable[OverdueItem]) -> None:
        """Items of a scan (open or not: only the open ones are digest lines)."""
        for i in items:
            if i.state not in _RANK:
                continue
            self._seq += 1
            seq = self._seq
            self.states[i.state] += 1
            if self.email(i.person):
                self._list(self.persons, i.person).add(i, seq)
            overdue = i.state == "overdue"
            if overdue and i.dept in self._head_of:
                # one mail for all a head's departments: the departments in the staff sheet's order
                rank = self._dept_rank[i.dept]
                self._list(self.heads, self._head_of[i.dept]).add(i, rank * (1 << 40) + seq)
            for robot in self.robots:
                if robot.for_managers:
                    if overdue:
                        self._list(self.groups, robot.name).add(i, seq)
                        self.people[robot.name].setdefault(self._head_names.get(i.dept, ""))
                elif robot.covers(i.shop):
                    self._list(self.groups, robot.name).add(i, seq)
                    self.people[robot.name].setdefault(i.person)

    def _list(self, lists: dict[Any, Shortlist], key: Any) -> Shortlist:
        got = lists.get(key)
        if got is None:
            got = lists[key] = Shortlist(self.limit)
        return got

    def wanted(self, day: date, channel: str) -> set[str]:
        """The outbox keys of the digests this book would give on ``day``."""
        keys = {f"{name}|person|{day.isoformat()}" for name in self.persons}
        keys |= {f"{channel}|{name}|digest|{day.isoformat()}" for name in self.groups}
        return keys


def more_line(short: Shortlist) -> str:
    """The line a digest that leaves items out starts its list with (empty when it lists all)."""
    if not short.left_out:
        return ""
    return (f"共 {short.count} 条，以下列出最紧急的 {short.count - short.left_out} 条；"
            f"其余 {short.left_out} 条见汇总工作簿“逾期”表")
