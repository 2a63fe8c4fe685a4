"""Exactly N records where offsets hold no record, and the account of what a read covered.

Transaction control markers, records of aborted transactions (invisible under ``read_committed``) and records
removed by compaction occupy offsets, so a plan of N offsets can return fewer than N records. ``TopUp`` drives a
read in rounds: the planned ranges first; then, while fewer than N records came back, each partition's range is
extended from where it stopped toward its end (the plan's snapshotted end offset: the last stable offset under
``read_committed``), the shortfall water-filled over the partitions as the planner does (``allocate``). A plan
for the last N (``last``) extends backwards toward the start offset instead. An extension round reads a little
more than it needs when offsets were sparse so far (fewer rounds); what it fetched beyond N is trimmed by offset,
so the ranges stay contiguous and the read holds exactly min(N, records visible) records.

    >>> topup = TopUp(plan)
    >>> ranges = topup.first_ranges()
    >>> while ranges:
    ...     stats = read(ranges)                    # {partition: RangeStats} of what Kafka returned
    ...     ranks = topup.record(ranges, stats)     # non-empty when the round fetched more than it needs
    ...     if ranks:
    ...         keep = topup.trim({p: offset_of_rank(p, k) for p, k in ranks.items()})  # ranges to keep
    ...     ranges = topup.next_ranges()
    >>> accounting = topup.accounting()             # checked: raises ReadError on a mismatch

What is counted, per partition and in total (``ReadAccounting.to_dict()``):

- ``offsets_spanned`` = ``until - from`` of the final range;
- ``records_fetched``: records Kafka returned with offsets in ``[from, until)``;
- ``offsets_skipped`` = ``offsets_spanned - records_fetched``: offsets holding no record visible at the isolation
  level (control markers, aborted records under ``read_committed``, records compacted away);
- ``records_read``: records that went on to parsing, = ``records_fetched - records_dropped``, where
  ``records_dropped`` are records outside a pure ``--start``/``--end`` time range (offsets-for-times stragglers)
  or past the first N of a ``full-scan`` read;
- ``records_trimmed`` (total only): records an extension round fetched past the final ranges and discarded.

The check before anything is published: per partition, the offsets returned are distinct (where the reader can
tell) and lie in ``[from, until)``, and ``records_fetched <= offsets_spanned``; in total, a read of N records
(``--max-events``/``--last``, bounded) holds exactly N records, or fewer only when every partition reached its end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamguard.errors import ReadError
from streamguard.kafka.plan import PartitionRange, ReadPlan, allocate

Direction = Literal["forward", "backward"]
# A round reads this much more than the offsets it expects to need, scaled by the partition's record density.
_MARGIN = 1.1
# Rounds are few (offsets per record are estimated, and an extension that comes back short doubles); this bound
# only turns a planner bug into an error instead of a loop.
MAX_ROUNDS = 200


@dataclass(frozen=True, slots=True)
class RangeStats:
    """What one read of one partition's range returned: rows, distinct offsets, lowest and highest offset."""

    partition: int
    records: int
    distinct_offsets: int | None = None
    """None where the reader does not count them (Spark's source returns each offset once)."""
    min_offset: int | None = None
    max_offset: int | None = None
    kept: int | None = None
    """Records kept after a pure time-range filter (None: all of them)."""


@dataclass(frozen=True, slots=True)
class PartitionAccount:
    partition: int
    from_offset: int
    until: int
    planned_from: int
    planned_until: int
    records_fetched: int
    records_read: int
    at_end: bool

    @property
    def offsets_spanned(self) -> int:
        return self.until - self.from_offset

    @property
    def offsets_skipped(self) -> int:
        return self.offsets_spanned - self.records_fetched

    @property
    def records_dropped(self) -> int:
        return self.records_fetched - self.records_read

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition, "from": self.from_offset, "until": self.until,
            "planned_from": self.planned_from, "planned_until": self.planned_until,
            "offsets_spanned": self.offsets_spanned, "records_fetched": self.records_fetched,
            "offsets_skipped": self.offsets_skipped, "records_dropped": self.records_dropped,
            "records_read": self.records_read, "at_end": self.at_end,
        }


@dataclass(frozen=True, slots=True)
class ReadAccounting:
    """What a read covered, per partition (those with a non-empty range) and in total. See the module docstring."""

    mode: str
    """``first`` (``--max-events``), ``last`` (``--last``) or ``all`` (no record limit)."""
    limit: int | None
    isolation_level: str
    rounds: int
    records_trimmed: int
    exhausted: bool
    """Every partition reached the end (for ``last``: the start) the plan allows."""
    partitions: tuple[PartitionAccount, ...] = field(default_factory=tuple)

    @property
    def offsets_spanned(self) -> int:
        return sum(p.offsets_spanned for p in self.partitions)

    @property
    def records_fetched(self) -> int:
        return sum(p.records_fetched for p in self.partitions)

    @property
    def offsets_skipped(self) -> int:
        return sum(p.offsets_skipped for p in self.partitions)

    @property
    def records_dropped(self) -> int:
        return sum(p.records_dropped for p in self.partitions)

    @property
    def records_read(self) -> int:
        return sum(p.records_read for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "limit": self.limit, "isolation_level": self.isolation_level,
            "rounds": self.rounds, "offsets_spanned": self.offsets_spanned, "records_fetched": self.records_fetched,
            "offsets_skipped": self.offsets_skipped, "records_dropped": self.records_dropped,
            "records_read": self.records_read, "records_trimmed": self.records_trimmed,
            "exhausted": self.exhausted, "partitions": [p.to_dict() for p in self.partitions],
        }


@dataclass(slots=True)
class _Span:
    """One partition's range so far, ``[start, until)``, growing toward ``ceiling`` (forward) or ``floor``."""

    partition: int
    start: int
    until: int
    floor: int
    ceiling: int
    planned: PartitionRange
    fetched: int = 0
    read: int = 0
    last_extension: int = 0
    last_need: int = 0
    short: bool = False

    @property
    def spanned(self) -> int:
        return self.until - self.start


class TopUp:
    """The rounds of one read of ``plan`` and their account; see the module docstring for the protocol."""

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan
        self.direction: Direction = "backward" if plan.last is not None else "forward"
        self.limit = plan.limit if plan.strategy == "bounded" else None
        self.rounds = 0
        self.trimmed = 0
        self._cut: dict[int, tuple[PartitionRange, int]] = {}
        self._ranks: dict[int, int] = {}
        self._spans: dict[int, _Span] = {}
        ranges = {r.partition: r for r in read_ranges(plan)}
        ends = plan.ends
        for w in plan.watermarks:
            p = w.partition
            floor = plan.start_offsets.get(p, w.low)
            ceiling = max(floor, ends.get(p, w.high))
            anchor = ceiling if self.direction == "backward" else floor
            planned = ranges.get(p, PartitionRange(p, anchor, anchor))
            edge = planned.until if self.direction == "backward" else planned.start
            self._spans[p] = _Span(p, edge, edge, floor, ceiling, planned)

    def first_ranges(self) -> tuple[PartitionRange, ...]:
        """The plan's own ranges (for ``full-scan``: every partition from its start to its latest offset)."""
        return tuple(s.planned for s in self._spans.values() if s.planned.count > 0)

    def record(self, ranges: tuple[PartitionRange, ...], stats: Mapping[int, RangeStats]) -> dict[int, int]:
        """Take in what one round returned. Returns ``{partition: rank}`` when the round fetched more records than
        the read needs: then call ``trim`` with the offset of the record of that rank (1 = lowest offset) in each
        of those partitions, and keep only the records inside the ranges it returns.
        """
        if self._ranks:
            raise ReadError("a read round was recorded before the previous one was trimmed")
        self.rounds += 1
        if self.rounds > MAX_ROUNDS:
            raise ReadError(f"the read of {self.plan.topic!r} did not reach its records in {MAX_ROUNDS} rounds")
        asked = {r.partition: r for r in ranges}
        stray = [p for p, st in stats.items() if p not in asked and st.records]
        if stray:
            raise ReadError(f"read accounting mismatch: records from partitions {sorted(stray)} that were not asked")
        got: dict[int, int] = {}
        for p, r in asked.items():
            st = stats.get(p, RangeStats(partition=p, records=0))
            _check_round(r, st, self.plan.topic)
            got[p] = st.records
        shortfall = self._shortfall()
        if self.rounds == 1 or shortfall is None or sum(got.values()) <= shortfall:
            for p, r in asked.items():
                st = stats.get(p)
                self._extend(p, r, got[p], got[p] if st is None or st.kept is None else st.kept)
            return {}
        keep = allocate(got, shortfall)
        for p, r in asked.items():
            if keep[p] == got[p]:
                self._extend(p, r, got[p], got[p])
                continue
            # forward: the first dropped record bounds the range; backward: the last dropped record does
            self._ranks[p] = keep[p] + 1 if self.direction == "forward" else got[p] - keep[p]
            self._cut[p] = (r, keep[p])
            self.trimmed += got[p] - keep[p]
        return dict(self._ranks)

    def trim(self, offsets_at_rank: Mapping[int, int]) -> tuple[PartitionRange, ...]:
        """Given the offset at each rank ``record`` asked for, the ranges to keep of the partitions it named
        (their records outside these ranges are dropped)."""
        kept: list[PartitionRange] = []
        for p, (r, count) in self._cut.items():
            offset = offsets_at_rank[p]
            if not r.start <= offset < r.until:
                raise ReadError(f"read accounting mismatch: offset {offset} outside [{r.start}, {r.until}) "
                                f"of partition {p}")
            cut = (PartitionRange(p, r.start, offset) if self.direction == "forward"
                   else PartitionRange(p, offset + 1, r.until))
            self._extend(p, cut, count, count)
            kept.append(cut)
        self._cut, self._ranks = {}, {}
        return tuple(kept)

    def next_ranges(self) -> tuple[PartitionRange, ...]:
        """The extension ranges of the next round; empty when the read is complete (N records, or at the ends)."""
        if self._ranks:
            raise ReadError("the previous read round has ranks to trim first")
        shortfall = self._shortfall()
        if not shortfall:
            return ()
        room = {p: self._room(s) for p, s in self._spans.items()}
        need = allocate(room, shortfall)
        density = self._density()
        extensions = []
        for p, s in self._spans.items():
            s.last_need = need[p]
            if need[p] == 0:
                continue
            offsets_per_record = s.spanned / s.fetched if s.fetched else 1 / density
            span = math.ceil(need[p] * offsets_per_record * (_MARGIN if offsets_per_record > 1 else 1))
            if s.short:
                span = max(span, 2 * s.last_extension)
            span = min(room[p], max(need[p], span))
            s.last_extension = span
            extensions.append(PartitionRange(p, s.until, s.until + span) if self.direction == "forward"
                              else PartitionRange(p, s.start - span, s.start))
        return tuple(sorted(extensions, key=lambda r: r.partition))

    def accounting(self) -> ReadAccounting:
        """The account of the read, checked: raises ReadError when it does not add up."""
        if self._ranks or self._shortfall():
            raise ReadError(f"read accounting mismatch: the read of {self.plan.topic!r} stopped before its end")
        partitions = tuple(
            PartitionAccount(
                partition=s.partition, from_offset=s.start, until=s.until, planned_from=s.planned.start,
                planned_until=s.planned.until, records_fetched=s.fetched, records_read=s.read,
                at_end=self._room(s) == 0,
            )
            for s in sorted(self._spans.values(), key=lambda s: s.partition)
            if s.spanned > 0
        )
        mode = "all" if self.plan.limit is None else "last" if self.plan.last is not None else "first"
        exhausted = all(self._room(s) == 0 for s in self._spans.values())
        account = ReadAccounting(mode=mode, limit=self.plan.limit, isolation_level=self.plan.isolation_level,
                                 rounds=self.rounds, records_trimmed=self.trimmed, exhausted=exhausted,
                                 partitions=partitions)
        for p in partitions:
            if not 0 <= p.records_read <= p.records_fetched <= p.offsets_spanned:
                raise ReadError(
                    f"read accounting mismatch in partition {p.partition}: {p.records_read} read, "
                    f"{p.records_fetched} fetched, {p.offsets_spanned} offsets spanned"
                )
        if self.plan.limit is not None:
            bounded = self.plan.strategy == "bounded"
            expected = self.plan.limit if bounded else min(self.plan.limit, account.records_fetched)
            if account.records_read > expected or account.records_read < expected and not (bounded and exhausted):
                raise ReadError(
                    f"read accounting mismatch: {account.records_read:,} records read where {expected:,} were "
                    f"expected ({'every' if exhausted else 'not every'} partition reached its end)"
                )
        return account

    def _extend(self, p: int, r: PartitionRange, fetched: int, kept: int) -> None:
        s = self._spans[p]
        if self.rounds > 1:
            s.short = fetched < s.last_need
        s.start, s.until = min(s.start, r.start), max(s.until, r.until)
        s.fetched += fetched
        s.read += kept

    def _room(self, s: _Span) -> int:
        return s.ceiling - s.until if self.direction == "forward" else s.start - s.floor

    def _shortfall(self) -> int | None:
        """Records still to read (None: the read has no record limit to top up to; 0: done or at the ends)."""
        if self.limit is None:
            return None
        if not any(self._room(s) for s in self._spans.values()):
            return 0
        return max(0, self.limit - sum(s.fetched for s in self._spans.values()))

    def _density(self) -> float:
        spanned = sum(s.spanned for s in self._spans.values())
        fetched = sum(s.fetched for s in self._spans.values())
        return fetched / spanned if fetched and spanned else 0.5


def _check_round(r: PartitionRange, stats: RangeStats, topic: str) -> None:
    where = f"partition {r.partition} of {topic!r}, offsets [{r.start}, {r.until})"
    if stats.records > r.count:
        raise ReadError(f"read accounting mismatch: {stats.records} records from {r.count} offsets in {where}")
    if stats.distinct_offsets is not None and stats.distinct_offsets != stats.records:
        raise ReadError(f"read accounting mismatch: {stats.records} records but {stats.distinct_offsets} distinct "
                        f"offsets in {where}")
    if stats.records and (stats.min_offset is None or stats.max_offset is None
                          or stats.min_offset < r.start or stats.max_offset >= r.until):
        raise ReadError(f"read accounting mismatch: offsets {stats.min_offset}..{stats.max_offset} outside {where}")
    if stats.kept is not None and not 0 <= stats.kept <= stats.records:
        raise ReadError(f"read accounting mismatch: {stats.kept} kept of {stats.records} records in {where}")


def read_ranges(plan: ReadPlan) -> tuple[PartitionRange, ...]:
    """What a reader reads first: the plan's ranges, or for ``full-scan`` every partition from its start to latest."""
    if plan.strategy != "full-scan":
        return plan.ranges
    starts = plan.start_offsets
    return tuple(
        PartitionRange(partition=w.partition, start=starts.get(w.partition, w.low), until=w.high)
        for w in plan.watermarks
        if w.high > starts.get(w.partition, w.low)
    )
