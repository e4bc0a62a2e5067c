"""The sheets a scan's results fill: 逾期, 处罚 and 汇总, pure functions of the store and ``now``.

They live in the core beside the store's own sheets so that every path that writes the merged
workbook (``sync --once``, the daemon, ``scan``, ``run``, the demo) writes all of them: a sheet
left out would be rendered empty, and a manager's 处罚确认 on it would never be read back.
"""

from __future__ import annotations

import pickle
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, Protocol

from ..overdue import KIND_ZH, STATE_ZH, OverdueItem, state_counts
from ..penalties import CONFIRM_CHOICES, LOSS_KINDS, PenaltyEvent, loss_events
from ..penalties import STATE_ZH as PENALTY_STATE_ZH
from ..rules_book import Rules
from ..schema import HARASSMENT, ROOT_CAUSES, SATISFACTION
from ..store.view import Record
from .model import Block, ChartSpec, Column, SheetData, Spooled

OVERDUE_COLUMNS = [Column("complaint_id", "投诉编号", width=18), Column("shop", "门店", width=8),
                   Column("kind", "时限"), Column("due", "截止时间", "datetime", 17), Column("state", "状态"),
                   Column("late_h", "逾期（小时）", "float"), Column("person", "责任人"), Column("dept", "责任部门"),
                   Column("why", "如何计算", width=60)]


def overdue_row(i: OverdueItem, why: str | None = None) -> list[Any]:
    """逾期's row of ``i``; ``why``: its last cell, when not ``i.why``."""
    return [i.complaint_id, i.shop, KIND_ZH[i.kind], i.due, STATE_ZH[i.state],
            round(i.late.total_seconds() / 3600, 1), i.person, i.dept, i.why if why is None else why]


def overdue_sheet(rows: list[list[Any]] | Spooled, now: datetime) -> SheetData:
    return SheetData("逾期", OVERDUE_COLUMNS, rows, note=f"截至 {now:%Y-%m-%d %H:%M} 的时限状态")


def ledger(events: Iterable[PenaltyEvent], current_loss: set[str], conf: dict[str, str]) -> list[PenaltyEvent]:
    """The stored penalty events the 处罚 sheet lists.

    Scans only ever add events. A loss line the current rules no longer give (the loss, the
    cause or the tiers changed, or a store from a version that charged 10% of the loss) is left
    out while nobody has reviewed it (``current_loss``: the loss events the rules give now);
    one a manager decided on stays, with the decision.
    """
    return [e for e in events if e.kind not in ("loss", "loss_head") or e.event_id in current_loss or conf.get(e.event_id)]


def current_loss_ids(records: Iterable[Record], rules: Rules) -> set[str]:
    """The loss events the current rules give ``records`` (live ones), by id."""
    return {e.event_id for e in loss_events({r["record_id"]: r for r in records}, rules.tiers, rules.heads(),
                                             rules.bases())}


def _basis(e: PenaltyEvent) -> str:
    if e.kind in LOSS_KINDS:
        return f"损失处罚（{LOSS_KINDS[e.kind]}）"
    return f"延误追究：{KIND_ZH.get(e.kind, e.kind)}"


PENALTY_COLUMNS = [Column("event_id", "事件编号", width=26), Column("month", "月份"), Column("basis", "依据", width=22),
                   Column("complaint_id", "投诉编号", width=18), Column("person", "被处罚人"),
                   Column("head", "部门负责人"), Column("amount", "金额", "money"), Column("why", "原因", width=50),
                   Column("state", "状态"),
                   Column("confirm", "处罚确认", choices=CONFIRM_CHOICES, manager_owned=True)]


def penalty_row(e: PenaltyEvent, conf: dict[str, str]) -> list[Any]:
    """One line of 处罚 (``PENALTY_COLUMNS``)."""
    decided = conf.get(e.event_id, "")
    return [e.event_id, e.month, _basis(e), e.complaint_id, e.person, e.head, e.amount, e.why,
            PENALTY_STATE_ZH.get(decided or "", "待确认"), decided]


def penalty_frame(rows: list[list[Any]] | Spooled) -> SheetData:
    """处罚 with ``rows`` (a list, or the spool merged/penalty_parts.py laid them into)."""
    return SheetData("处罚", PENALTY_COLUMNS, rows, key_columns=("event_id",),
                     note="处罚确认：确认 / 免除 / 申诉；未确认的为“待确认”，不计入应处罚金额；"
                          "损失处罚同时处罚直接责任人和部门负责人（培训材料：处理流程第7步）")


def _count_block(title: str, counter: Counter[str], anchor: str) -> Block:
    rows = [[k or "（空）", v] for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))]
    charts = [ChartSpec("column", title, 0, (1,), 0, max(len(rows) - 1, 0), anchor)] if rows else []
    return Block(title, [Column("k", "项目"), Column("n", "数量", "int")], rows, charts)


RESOLUTION_BUCKETS = ("≤1天", "1-3天", "3-7天", ">7天", "未解决")


def _bucket(r: Record, now: datetime) -> str | None:
    """The resolution bucket of one complaint (None: 不成立, no received time, or a typo)."""
    if r.get("status") == "不成立" or r.get("validity") == "不成立":
        return None
    got, done = r.get("received_at"), r.get("resolved_at")
    if not isinstance(got, datetime):
        return None
    if not isinstance(done, datetime) or done > now:
        return "未解决"
    days = (done - got).total_seconds() / 86400
    if days < 0:
        return None
    return "≤1天" if days <= 1 else "1-3天" if days <= 3 else "3-7天" if days <= 7 else ">7天"


def _bucket_rows(counts: dict[str, int]) -> list[list[Any]]:
    total = sum(counts.values())
    return [[k, counts.get(k, 0), round(counts.get(k, 0) / total, 3) if total else 0.0] for k in RESOLUTION_BUCKETS]


def resolution_buckets(recs: Iterable[Record], *, now: datetime) -> list[list[Any]]:
    """Time from 受理 to 解决 in the buckets managers read against the 3-day feedback promise.

    Rows: [bucket, count, share]. A complaint counts as 未解决 when it has no resolved time yet
    as of ``now`` (a later one, from a scan with an earlier --now, is not resolved yet); one
    judged 不成立 is closed without a resolution and left out, as is a resolved time before
    the received time (a data error the 校验问题 sheet reports).
    """
    counts: Counter[str] = Counter()
    for r in recs:
        if (b := _bucket(r, now)) is not None:
            counts[b] += 1
    return _bucket_rows(counts)


# The surveys the training material quotes, one per question, named as a manager reads them.
SILENT_SHARE = 0.04          # only 4% of dissatisfied customers complain
SILENT_SOURCE = "华盛顿技术协助研究计划机构：4%的顾客会选择投诉（培训材料《顾客投诉和补救性服务讲义》引用）"
TELL_OTHERS = 11             # a dissatisfied customer tells 11–15 people: the lower bound
TELL_SOURCE = "不满意的客户会把经历告诉11–15人，取下限11（培训材料《顾客投诉和补救性服务讲义》引用）"
RETURN_SOURCE = "美国消费者协会调查统计（培训材料《顾客投诉和补救性服务讲义》引用）"
RETURN_QUICK, RETURN_RESOLVED, RETURN_UNRESOLVED = 0.82, 0.54, 0.19
QUICK = timedelta(days=1)    # "投诉被迅速解决": resolved within a day of receipt


def _resolved_within(r: dict[str, Any], now: datetime) -> timedelta | None:
    got, done = r.get("received_at"), r.get("resolved_at")
    if not isinstance(got, datetime) or not isinstance(done, datetime) or done > now or done < got:
        return None
    return done - got


def _handled(r: Record, now: datetime) -> str | None:
    """How a valid complaint was handled, for the return-rate estimate (None: not counted)."""
    if r.get("category") == HARASSMENT or r.get("validity") == "不成立" or r.get("status") == "不成立":
        return None
    took = _resolved_within(r, now)
    return "unresolved" if took is None else "quick" if took <= QUICK else "resolved"


def _estimate_rows(handled: dict[str, int]) -> list[list[Any]]:
    quick, resolved, unresolved = handled.get("quick", 0), handled.get("resolved", 0), handled.get("unresolved", 0)
    n = quick + resolved + unresolved
    silent = round(n / SILENT_SHARE)
    back = quick * RETURN_QUICK + resolved * RETURN_RESOLVED + unresolved * RETURN_UNRESOLVED
    return [
        ["计入估算的投诉（不含不成立和骚扰来电）", n, "本店数据"],
        ["不满意客户估计数（投诉数 ÷ 4%）", silent, SILENT_SOURCE],
        ["听到负面口碑的人数估计（不满意客户估计数 × 11）", silent * TELL_OTHERS, TELL_SOURCE],
        [f"1天内解决的投诉 {quick} 件 × 82% 会再来", round(quick * RETURN_QUICK, 1), RETURN_SOURCE],
        [f"超过1天解决的投诉 {resolved} 件 × 54% 会再来", round(resolved * RETURN_RESOLVED, 1), RETURN_SOURCE],
        [f"尚未解决的投诉 {unresolved} 件 × 19% 会再来", round(unresolved * RETURN_UNRESOLVED, 1), RETURN_SOURCE],
        ["预计会再来的投诉客户合计", round(back, 1), RETURN_SOURCE],
    ]


def estimates(recs: Iterable[Record], *, now: datetime) -> list[list[Any]]:
    """The summary's estimates: [label, value, source] rows, from valid complaints only.

    Complaints judged 不成立 and harassment calls are left out: neither is a customer who may
    not come back. Each figure comes from one survey; the return rates split the complaints by
    how they were handled, so a complaint resolved after three days never counts at 82%.
    """
    handled: Counter[str] = Counter()
    for r in recs:
        if (h := _handled(r, now)) is not None:
            handled[h] += 1
    return _estimate_rows(handled)


def _reach(r: dict[str, Any]) -> str:
    # the same customer is the same phone (or email) however the clerk wrote the name
    return str(r.get("customer_phone") or r.get("customer_email") or r.get("customer_name") or "").strip()


def _subject(r: Record) -> str:
    return str(r.get("subject") or "").strip()


class Repeats:
    """What was complained about more than once, counted record by record (or shop by shop:
    ``merge``). Its key and label functions are module-level, so a shop's counts can be kept
    between renders (merged/pieces.py)."""

    def __init__(self, key: Callable[[Record], str], label: Callable[[Record], str] | None = None) -> None:
        self._key, self._label = key, label
        self.counts: Counter[str] = Counter()
        # a label only for keys seen twice: one per complaint would grow with the chain
        self._first: dict[str, str] = {}
        self._names: dict[str, str] = {}

    # Kept in a piece, the counts are pickled in sorted, compressed batches and read back only
    # when asked for: a shop's save loads every shop's piece, but the chain's tally needs the
    # counts of the changed shops only (a thousand customers a shop: 70 ms of a save's write, a
    # hundred shops), and those it takes a batch at a time, in key order (``labelled``): a shop
    # of 30,000 complaints held 8 MiB of counts and labels, once more as the rows for the tally
    # (issue 17)
    _PACKED = ("counts", "_first", "_names")
    _BATCH = 4096

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "_packed" not in state:
            for k in self._PACKED:
                del state[k]
            state["_packed"] = [zlib.compress(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL), 1)
                                for batch in self._batches()]
        return state

    def _batches(self) -> Iterator[list[tuple[str, int, str | None]]]:
        """(key, count, label as kept: None for none) of every key, in key order, a batch at a time."""
        first, names = self._first, self._names
        keys = sorted(self.counts)
        for i in range(0, len(keys), self._BATCH):
            yield [(k, self.counts[k], first.get(k, names.get(k))) for k in keys[i:i + self._BATCH]]

    def _packed_batches(self) -> Iterator[list[tuple[str, int, str | None]]]:
        for data in self.__dict__["_packed"]:
            yield pickle.loads(zlib.decompress(data))  # noqa: S301 - packed by __getstate__

    def __getattr__(self, name: str) -> Any:
        # only called for an attribute not set: the counts of a Repeats read back from a piece
        packed = self.__dict__.get("_packed")
        if name not in self._PACKED or packed is None:
            raise AttributeError(name)
        counts: Counter[str] = Counter()
        first: dict[str, str] = {}
        names: dict[str, str] = {}
        for batch in self._packed_batches():
            for k, n, label in batch:
                counts[k] = n
                if label is not None:   # a label is the first record's while the key is seen once
                    (first if n == 1 else names)[k] = label
        del self.__dict__["_packed"]
        self.__dict__.update(counts=counts, _first=first, _names=names)
        return self.__dict__[name]

    def add(self, r: Record) -> None:
        k = self._key(r)
        if not k:
            return
        self.counts[k] += 1
        if self._label is None:
            return
        if self.counts[k] == 1:
            self._first[k] = self._label(r)
        elif self.counts[k] == 2:
            self._names[k] = self._first.pop(k)

    def merge(self, later: Repeats) -> None:
        """Add the counts of records that come after this one's (the next shop's): a key seen
        first here keeps its label from here."""
        for k, n in later.counts.items():
            before = self.counts[k]
            self.counts[k] = before + n
            if self._label is None:
                continue
            label = (self._first.get(k) or self._names.get(k)) if before else \
                (later._first.get(k) or later._names.get(k))
            if label is None:
                continue
            if before + n == 1:
                self._first[k] = label
            else:
                self._first.pop(k, None)
                self._names[k] = label

    def rows(self, top: int | None = 20) -> list[list[Any]]:
        """[what, complaints], most first (``label`` names a key by the first record seen)."""
        rows: list[list[Any]] = [[self._names.get(k, k) if self._label else k, v]
                                 for k, v in self.counts.items() if v > 1]
        rows.sort(key=lambda kv: (-kv[1], str(kv[0])))
        return rows[:top] if top else rows


    def labelled(self) -> Iterator[tuple[str, int, str]]:
        """(key, complaints, label) of every key counted here, in key order; packed counts are
        read a batch at a time and stay packed."""
        batches = self._packed_batches() if "_packed" in self.__dict__ else self._batches()
        for batch in batches:
            for k, n, label in batch:
                yield k, n, (label or k) if self._label else k

    def repeated(self) -> int:
        """How many keys were complained about more than once."""
        return sum(1 for n in self.counts.values() if n > 1)


class ChainCounts(Protocol):
    """Repeat counts over the whole chain, kept outside memory (merged/pieces.py ``ChainTally``):
    ``what`` is "c" (customers) or "s" (what was complained about)."""

    def rows(self, what: str, top: int = 20) -> list[list[Any]]: ...

    def repeated(self, what: str) -> int: ...


def repeats(recs: Iterable[Record], key: Callable[[Record], str], *, top: int | None = 20,
            label: Callable[[Record], str] | None = None) -> list[list[Any]]:
    """[what, complaints] for what was complained about more than once, most first.

    ``label`` names a key for the reader (first record seen), e.g. a customer's name and phone.
    """
    acc = Repeats(key, label)
    for r in recs:
        acc.add(r)
    return acc.rows(top)


def _customer_label(r: dict[str, Any]) -> str:
    name = str(r.get("customer_name") or "").strip()
    reach = str(r.get("customer_phone") or r.get("customer_email") or "").strip()
    return f"{name}（{reach}）" if name and reach else name or reach


CAUSE_COLUMNS = (*ROOT_CAUSES, "未填")


def _cause_rows(acc: dict[str, Counter[str]]) -> list[list[Any]]:
    return [[m, *(acc[m][c] for c in CAUSE_COLUMNS)] for m in sorted(acc)]


def causes_by_month(recs: Iterable[Record]) -> list[list[Any]]:
    """[month, one count per cause…] so a manager sees which causes grow."""
    acc: dict[str, Counter[str]] = defaultdict(Counter)
    for r in recs:
        got = r.get("received_at")
        if isinstance(got, datetime):
            cause = r.get("root_cause")
            acc[f"{got:%Y-%m}"][cause if cause in ROOT_CAUSES else "未填"] += 1
    return _cause_rows(acc)


_BY = ("category", "channel", "shop", "root_cause", "status")
_TEXTS = frozenset({str, type(None)})


def _count_texts(counts: Counter[str], values: list[Any]) -> None:
    """Count ``values`` by their text (``str(v or "")``, in the order first seen)."""
    if _TEXTS.issuperset(map(type, values)):
        # texts (and None) only: counted as they are, then folded into their labels; other
        # values cannot be, as 1, 1.0 and True would count as one
        for value, n in Counter(values).items():
            counts[value or ""] += n
    else:
        counts.update([str(v or "") for v in values])


class Summary:
    """汇总's figures, counted shop by shop as the render walks the store (one pass, a few
    counters in memory, whatever the number of complaints)."""

    def __init__(self, now: datetime, *, chain: ChainCounts | None = None) -> None:
        """``chain``: where the chain's repeat counts are kept when these are the chain's totals
        (a shop's own counts stay here, in memory, and are kept with its piece)."""
        self.now = now
        self.chain = chain
        self.n = self.harassment = self.followed = self.satisfied = self.invalid = 0
        self.hours_sum, self.hours_n = 0.0, 0
        self.states: Counter[tuple[str, str]] = Counter()
        self.by: dict[str, Counter[str]] = {k: Counter() for k in _BY}
        self.months: Counter[str] = Counter()
        self.buckets: Counter[str] = Counter()
        self.handled: Counter[str] = Counter()
        self.customers = Repeats(_reach, _customer_label)
        self.subjects = Repeats(_subject)
        self.causes: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, live: list[Record], states: Mapping[tuple[str, str], int] | None = None) -> None:
        """Count ``live`` complaints (source row still there), in the sheet's order; ``states``:
        their deadlines' (kind, state) counts when the caller has them (``state_counts``)."""
        now = self.now
        self.states.update(state_counts(live, now=now) if states is None else states)
        # a harassment call is logged, not a complaint: counted apart (seed 001 第四篇 五)
        counted = [r for r in live if r.get("category") != HARASSMENT]
        self.harassment += len(live) - len(counted)
        self.n += len(counted)
        # field by field, each over the shop's complaints: a counter counts a list in C
        for k in _BY:
            _count_texts(self.by[k], [r.get(k) for r in counted])
        self.followed += sum(map(isinstance, [r.get("followup_at") for r in counted], repeat(datetime)))
        said = Counter([r.get("satisfaction") for r in counted])
        self.satisfied += said["满意"] + said["非常满意"]
        self.invalid += sum(1 for r in counted if r.get("validity") == "不成立" or r.get("status") == "不成立")
        months, causes, buckets, handled = self.months, self.causes, self.buckets, self.handled
        for r in counted:
            got = r.get("received_at")
            if isinstance(got, datetime):
                month = f"{got.year}-{got.month:02d}"   # as %Y-%m (unpadded year, as glibc), without strftime
                months[month] += 1
                cause = r.get("root_cause")
                causes[month][cause if cause in ROOT_CAUSES else "未填"] += 1
                done = r.get("resolved_at")
                if isinstance(done, datetime):
                    h = (done - got).total_seconds() / 3600
                    if h >= 0:   # resolved before received is a typo (校验问题 lists it), not a fast fix
                        self.hours_sum += h
                        self.hours_n += 1
            if (b := _bucket(r, now)) is not None:
                buckets[b] += 1
            if (how := _handled(r, now)) is not None:
                handled[how] += 1
        for r in counted:
            self.customers.add(r)
            self.subjects.add(r)

    def merge(self, later: Summary) -> None:
        """Add the counts of a later shop (``later`` counted with the same ``now``, or with an
        earlier one nothing in that shop's complaints changed with since)."""
        self.n += later.n
        self.harassment += later.harassment
        self.followed += later.followed
        self.satisfied += later.satisfied
        self.invalid += later.invalid
        self.hours_sum += later.hours_sum
        self.hours_n += later.hours_n
        self.states.update(later.states)
        for k in _BY:
            self.by[k].update(later.by[k])
        self.months.update(later.months)
        self.buckets.update(later.buckets)
        self.handled.update(later.handled)
        if self.chain is None:   # else the chain's counts hold the shop's already
            self.customers.merge(later.customers)
            self.subjects.merge(later.subjects)
        for month, counts in later.causes.items():
            self.causes[month].update(counts)

    def sheet(self, totals: list[dict[str, Any]]) -> SheetData:
        """汇总, with the penalty ``totals`` per person and month (``penalties.totals_rows``)."""
        now, counts = self.now, self.states
        if self.chain is not None:
            repeated, customer_rows = self.chain.repeated("c"), self.chain.rows("c")
            subject_rows = self.chain.rows("s")
        else:
            repeated, customer_rows, subject_rows = self.customers.repeated(), self.customers.rows(), self.subjects.rows()
        kpi = Block("关键指标", [Column("k", "指标", width=30), Column("v", "数值", "float")], [
            ["投诉总数（不含骚扰来电）", self.n], ["其中判定不成立", self.invalid],
            ["平均解决用时（小时）", round(self.hours_sum / self.hours_n, 1) if self.hours_n else 0.0],
            ["已回访数", self.followed], ["满意数（满意/非常满意）", self.satisfied],
            ["重复投诉客户数", repeated],
            ["骚扰来电（单独统计，不计入投诉）", self.harassment]])

        def rate(kind: str) -> float:
            # of the deadlines already passed or met: how many were met in time
            due = sum(counts.get((kind, state), 0) for state in ("done", "done_late", "overdue"))
            return round(counts.get((kind, "done"), 0) / due, 3) if due else 0.0

        # the two promises of the handling rules, shown as 76.0%, not 0.76
        promise = Block("时限达成率", [Column("k", "承诺", width=30), Column("v", "达成率", "percent")], [
            ["2小时内联系占比", rate("contact")], ["3日内反馈占比", rate("feedback")]],
            note="分母：已到期或已完成的时限；骚扰来电和不成立的投诉没有时限")
        ttr = Block("解决用时分布", [Column("k", "用时（受理到解决）", width=30), Column("n", "数量", "int"),
                                    Column("p", "占比", "percent")], _bucket_rows(self.buckets),
                    [ChartSpec("column", "解决用时分布", 0, (1,), 0, len(RESOLUTION_BUCKETS) - 1, "P40")],
                    note="不含判定不成立的投诉和骚扰来电；未解决 = 截至此时还没有解决时间")
        per_person: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for t in totals:
            acc = per_person[t["person"]]
            acc[0] += t["confirmed"]
            acc[1] += t["pending"]
            acc[2] += t["appealed"]
        pen = Block("处罚（按人）", [Column("k", "被处罚人"), Column("v", "已确认（应处罚）", "money", 16),
                                    Column("p", "待确认（未审核）", "money", 16), Column("a", "申诉中", "money")],
                    [[k, *(round(x, 2) for x in v)] for k, v in sorted(per_person.items())],
                    note="只有主管确认的处罚计入应处罚金额；待确认和申诉中的单列，免除的不计")
        if pen.rows:
            pen.charts.append(ChartSpec("bar", "处罚金额（按人）", 0, (1, 2), 0, len(pen.rows) - 1, "H40",
                                        ("已确认", "待确认")))
        est = Block("估算（培训材料引用的调查数字，仅为估计，非本店实测）",
                    [Column("k", "估算", width=40), Column("v", "数值", "float"), Column("s", "来源", width=40)],
                    _estimate_rows(self.handled),
                    note="回头率按处理结果分开计算：1天内解决按82%，超过1天解决按54%，未解决按19%")
        subjects = Block("改进：重复被投诉的对象", [Column("k", "投诉对象"), Column("n", "投诉次数", "int")],
                         subject_rows, note="同一商品、服务或员工被投诉两次及以上（最多列20项）")
        customers = Block("改进：重复投诉的客户", [Column("k", "客户"), Column("n", "投诉次数", "int")],
                          customer_rows, note="同一客户（电话、邮箱或姓名）投诉两次及以上（最多列20位）")
        cause_rows = _cause_rows(self.causes)
        causes = Block("改进：每月投诉原因", [Column("k", "月份"), *(Column(f"c{i}", c, "int", 10)
                                                            for i, c in enumerate(CAUSE_COLUMNS))], cause_rows)
        if cause_rows:
            causes.charts.append(ChartSpec("column", "每月投诉原因", 0, tuple(range(1, len(CAUSE_COLUMNS) + 1)), 0,
                                           len(cause_rows) - 1, "X40", CAUSE_COLUMNS))
        blocks = [kpi, promise, ttr, _count_block("按月份", self.months, "H2"),
                  _count_block("按类别", self.by["category"], "H18"), _count_block("按渠道", self.by["channel"], "P2"),
                  _count_block("按门店", self.by["shop"], "P18"), _count_block("按原因", self.by["root_cause"], "X2"),
                  _count_block("按状态", self.by["status"], "X18"), pen, est, subjects, customers, causes]
        return SheetData("汇总", blocks=blocks, as_table=False, note=f"截至 {now:%Y-%m-%d %H:%M}")


SATISFACTION_RANK = {v: i for i, v in enumerate(SATISFACTION)}
DONE_STATUSES = ("已解决", "已回访", "已关闭")


CASE_COLUMNS = [Column("category", "投诉类别", width=11), Column("satisfaction", "客户满意度", width=11),
                Column("complaint_id", "投诉编号", width=18), Column("shop", "门店", width=8),
                Column("subject", "投诉对象"), Column("description", "投诉内容", width=40),
                Column("request", "客户诉求"), Column("request_fit", "诉求判断"),
                Column("plan", "处理方案", width=36), Column("plan_response", "客户对方案"),
                Column("hours", "解决用时（小时）", "float"), Column("followup_method", "回访方式"),
                Column("root_cause", "原因分类"), Column("compensation", "补偿金额", "money")]
CaseKey = tuple[str, int, float]


def case_of(r: Record, now: datetime) -> tuple[CaseKey, list[Any]] | None:
    """A resolved complaint's place in 案例手册 (category, best outcome, latest first) and its
    row; None for one that is not a case (seed 001 模块五: 客户投诉与抱怨分类整理为案例手册)."""
    if r.get("category") == HARASSMENT or r.get("validity") == "不成立" or r.get("status") == "不成立":
        return None
    took = _resolved_within(r, now)
    if took is None or r.get("status") not in DONE_STATUSES:
        return None
    cat = str(r.get("category") or "其他")
    key = (cat, SATISFACTION_RANK.get(str(r.get("satisfaction")), 99), -r["resolved_at"].timestamp())
    return key, [cat, r.get("satisfaction") or "", r.get("complaint_id") or "", r.get("shop") or "",
                 r.get("subject") or "", r.get("description") or "", r.get("customer_request") or "",
                 r.get("request_fit") or "", r.get("resolution_plan") or "", r.get("plan_response") or "",
                 round(took.total_seconds() / 3600, 1), r.get("followup_method") or "", r.get("root_cause") or "",
                 r.get("compensation_amount")]


def case_book_sheet(rows: list[list[Any]] | Spooled) -> SheetData:
    """案例手册: resolved complaints by category, best outcome first, so a shop learns from its
    own best handling. ``rows`` in that order (``case_of`` gives each one's place)."""
    return SheetData("案例手册", CASE_COLUMNS, rows,
                     note="已解决的投诉，按类别排列、满意度高的在前：看看本店哪种处理方案让客户满意（持续改进）")
