"""Complaint ids: ``SHOP-YYYYMMDD-NNN``, a sequence per shop and day that never collides."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

_ID_RE = re.compile(r"^(?P<shop>.+)-(?P<day>\d{8})-(?P<seq>\d{3,})$")


def next_ids(shop: str, received_list: Iterable[datetime | None], existing_ids: Iterable[str],
             *, today: datetime | None = None) -> list[str]:
    """One new id per entry of ``received_list`` (the day comes from it, else ``today``)."""
    shop = (shop or "SHOP").strip()
    taken = set(existing_ids)
    last: dict[str, int] = {}
    for cid in taken:
        m = _ID_RE.match(cid)
        if m and m["shop"] == shop:
            last[m["day"]] = max(last.get(m["day"], 0), int(m["seq"]))
    out: list[str] = []
    for received in received_list:
        moment = received or today
        day = moment.strftime("%Y%m%d") if moment else "00000000"
        seq = last.get(day, 0)
        while True:
            seq += 1
            cid = f"{shop}-{day}-{seq:03d}"
            if cid not in taken:
                break
        last[day] = seq
        taken.add(cid)
        out.append(cid)
    return out
