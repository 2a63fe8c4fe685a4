"""The read planner: exact, bounded per-partition offset ranges from broker metadata, without scanning records.

A plan is a set of ``[from, until)`` offset ranges, one per partition that has something to read:

    >>> plan = plan_read(bootstrap, "security-events", start="earliest", max_events=1_000)
    >>> plan.planned_records          # exactly min(1000, offsets available)
    1000
    >>> recent = plan_read(bootstrap, "security-events", last=1_000)   # the most recent 1,000

Offset semantics follow Spark's Kafka source: ``until`` is exclusive, ``-2`` means earliest and ``-1`` latest in
an offsets JSON, and a JSON start must name every partition. Upper bounds come from the latest offsets snapshotted
at planning time (the last stable offset under ``read_committed``), never beyond, so a topic still being written
gives a consistent read and Spark never waits for offsets that do not exist yet.

``max_events`` N spreads N over the partitions in equal shares; a partition holding less than its share gives the
rest to the others, so exactly ``min(N, available)`` offsets are planned however uneven the partitions are.
``last`` N does the same backwards from the end offsets. Where
offsets hold no record (transaction markers, aborted or compacted-away records), the readers top up from where
each partition stopped until N records or the end offsets (``streamguard.kafka.accounting``).

Planning costs one admin client, one metadata request and one ListOffsets round (earliest, latest and any start or
end time, all partitions, all in flight together), so its cost hardly grows with the partition count
(``python -m bench.plan_scale`` measures it at 4, 64 and 1,000 partitions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from streamguard.errors import InvalidOffsetSpec, NothingToRead
from streamguard.kafka.admin import TopicOffsets, Watermarks, isolation_level_of
from streamguard.kafka.properties import KafkaProperties

READ_STRATEGIES = ("bounded", "full-scan")
EARLIEST, LATEST = -2, -1
# Kafka offsets are signed 64-bit; a larger number cannot even be sent to the broker.
MAX_OFFSET = 2**63 - 1
# The last millisecond ISO-8601 and Python can write (9999-12-31T23:59:59.999Z). Kafka would take later ones, but
# a later "ms" value is almost surely micro- or nanoseconds, and Spark's timestamps overflow long before 2**63 ms.
MAX_TIMESTAMP_MS = 253_402_300_799_999

StartKind = Literal["earliest", "latest", "offsets", "timestamp"]


@dataclass(frozen=True, slots=True)
class StartSpec:
    """Where a read starts: ``earliest``, ``latest``, explicit per-partition offsets, or a timestamp (ms)."""

    kind: StartKind
    offsets: Mapping[int, int] = field(default_factory=dict)
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``[start, until)`` of one partition."""

    partition: int
    start: int
    until: int

    @property
    def count(self) -> int:
        return self.until - self.start


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What one read covers; ``ranges`` holds only partitions with at least one offset to read."""

    topic: str
    strategy: str
    isolation_level: str
    start: str
    end: str | None
    max_events: int | None
    watermarks: tuple[Watermarks, ...]
    ranges: tuple[PartitionRange, ...]
    start_timestamp_ms: int | None = None
    end_timestamp_ms: int | None = None
    start_offsets: Mapping[int, int] = field(default_factory=dict)
    """The resolved start offset of every partition, also those with nothing to read."""
    end_offsets: Mapping[int, int] = field(default_factory=dict)
    """The resolved end offset of every partition (exclusive): its latest offset at planning time (the last stable
    offset under ``read_committed``) or, with ``end``, its offset for that time. A read never goes past it."""
    last: int | None = None
    """Read the most recent ``last`` records before the end offsets (``max_events`` is then None)."""

    @property
    def limit(self) -> int | None:
        """The number of records asked for (``max_events`` or ``last``); None reads every record in range."""
        return self.max_events if self.max_events is not None else self.last

    @property
    def ends(self) -> dict[int, int]:
        """The end offset of every partition (``end_offsets``, else its high watermark)."""
        return {w.partition: self.end_offsets.get(w.partition, w.high) for w in self.watermarks}

    @property
    def planned_records(self) -> int:
        """Offsets planned; records read can be fewer where offsets hold transaction markers, aborted records or
        were compacted away; the readers then top up from where each partition stopped (``kafka.accounting``)."""
        return sum(r.count for r in self.ranges)

    @property
    def available_records(self) -> int:
        return sum(w.size for w in self.watermarks)

    def require_records(self) -> None:
        """Raise NothingToRead when the plan covers no offset."""
        if not self.ranges:
            raise NothingToRead(self.nothing_to_read())

    def nothing_to_read(self) -> str:
        """Why this plan covers no record, for the error a caller raises."""
        if self.available_records == 0:
            return f"topic {self.topic!r} holds no records"
        bounds = f"start={self.start!r}" + (f" and end={self.end!r}" if self.end else "")
        return f"nothing to read in {self.topic!r} with {bounds}; its {self.available_records:,} records lie outside"

    def to_dict(self) -> dict[str, Any]:
        """The plan as the report's ``run.plan`` holds it (``last`` only when set)."""
        return {
            "topic": self.topic,
            "strategy": self.strategy,
            "isolation_level": self.isolation_level,
            "start": self.start,
            "end": self.end,
            "max_events": self.max_events,
            **({"last": self.last} if self.last is not None else {}),
            "planned_records": self.planned_records,
            "partitions": [
                {"partition": w.partition, "low": w.low, "high": w.high,
                 "from": by_partition.start if (by_partition := self._range(w.partition)) else None,
                 "until": by_partition.until if by_partition else None}
                for w in self.watermarks
            ],
        }

    def _range(self, partition: int) -> PartitionRange | None:
        return next((r for r in self.ranges if r.partition == partition), None)


def parse_timestamp(text: str | int) -> int:
    """Milliseconds since the epoch from an integer (ms) or ISO-8601 text (a naive time is taken as UTC)."""
    if isinstance(text, int):
        milliseconds = text
    else:
        try:
            milliseconds = int(text.strip())
        except ValueError:
            milliseconds = _iso_milliseconds(text)
    if milliseconds < 0:  # ListOffsets reads -1, -2 and -3 as latest, earliest and max-timestamp
        raise InvalidOffsetSpec(f"timestamp {text!r} is before 1970")
    if milliseconds > MAX_TIMESTAMP_MS:
        raise InvalidOffsetSpec(f"timestamp {text!r} is after 9999-12-31: milliseconds since the epoch are at most "
                                f"{MAX_TIMESTAMP_MS} (micro- or nanoseconds given?)")
    return milliseconds


def _iso_milliseconds(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidOffsetSpec(f"{text!r} is neither milliseconds since the epoch nor an ISO-8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_start(text: str, topic: str) -> StartSpec:
    """Parse ``earliest`` | ``latest`` | offsets JSON (``{"0": 12}`` or ``{"<topic>": {"0": 12}}``) | timestamp."""
    stripped = text.strip()
    if stripped in ("earliest", "latest"):
        return StartSpec(stripped)  # type: ignore[arg-type]
    if stripped.startswith("{"):
        return StartSpec("offsets", offsets=_parse_offsets_json(stripped, topic))
    return StartSpec("timestamp", timestamp_ms=parse_timestamp(stripped))


def _parse_offsets_json(text: str, topic: str) -> dict[int, int]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOffsetSpec(f"start offsets are not valid JSON: {exc.msg}") from exc
    if isinstance(raw, dict) and topic in raw and isinstance(raw[topic], dict):
        raw = raw[topic]
    if not isinstance(raw, dict) or not raw:
        raise InvalidOffsetSpec('start offsets JSON must map partitions to offsets, e.g. {"0": 12, "1": -2}')
    if not all(type(offset) is int for offset in raw.values()):
        raise InvalidOffsetSpec(f"start offsets JSON has a non-integer offset: {text}")
    if not all(EARLIEST <= offset <= MAX_OFFSET for offset in raw.values()):
        raise InvalidOffsetSpec(f"start offsets JSON has an offset outside -2 .. {MAX_OFFSET}: {text}")
    try:
        return {int(p): offset for p, offset in raw.items()}
    except ValueError as exc:
        raise InvalidOffsetSpec(f"start offsets JSON has a non-integer partition: {text}") from exc


def allocate(available: Mapping[int, int], max_events: int) -> dict[int, int]:
    """Split ``max_events`` over partitions in equal shares, re-spreading what small partitions cannot take.

    Returns records to take per partition: each at most its availability, summing to min(max_events, total), and
    no two partitions that could take more differ by more than one record. Partitions are filled smallest first,
    each taking its equal share of what is left, so the result is deterministic.
    """
    if max_events < 0:
        raise InvalidOffsetSpec(f"max_events must be >= 0, not {max_events}")
    take = dict.fromkeys(available, 0)
    remaining = min(max_events, sum(max(0, a) for a in available.values()))
    smallest_first = sorted((p for p, a in available.items() if a > 0), key=lambda p: (available[p], p))
    for index, partition in enumerate(smallest_first):
        take[partition] = min(available[partition], remaining // (len(smallest_first) - index))
        remaining -= take[partition]
    return take


def build_last_ranges(starts: Mapping[int, int], ends: Mapping[int, int], last: int) -> tuple[PartitionRange, ...]:
    """Ranges ``[max(start, end - share), end)``: the most recent ``last`` offsets, water-filled back from the ends."""
    take = allocate({p: max(0, ends[p] - starts[p]) for p in starts}, last)
    return tuple(PartitionRange(p, ends[p] - take[p], ends[p]) for p in sorted(starts) if take[p] > 0)


def build_ranges(
    starts: Mapping[int, int], ends: Mapping[int, int], max_events: int | None
) -> tuple[PartitionRange, ...]:
    """Ranges ``[start, min(end, start + share))`` for partitions with something to read, by partition number."""
    available = {p: max(0, ends[p] - starts[p]) for p in starts}
    take = available if max_events is None else allocate(available, max_events)
    return tuple(
        PartitionRange(p, starts[p], starts[p] + take[p]) for p in sorted(starts) if take[p] > 0
    )


def resolve_starts(spec: StartSpec, marks: list[Watermarks], time_offsets: Mapping[int, int] | None) -> dict[int, int]:
    """Concrete start offset per partition, checked against the watermarks."""
    if spec.kind == "earliest":
        return {w.partition: w.low for w in marks}
    if spec.kind == "latest":
        return {w.partition: w.high for w in marks}
    if spec.kind == "timestamp":
        if time_offsets is None:
            raise InvalidOffsetSpec("a timestamp start needs offsets-for-times answers")
        return {w.partition: w.high if time_offsets[w.partition] < 0 else time_offsets[w.partition] for w in marks}
    named = set(spec.offsets)
    partitions = {w.partition for w in marks}
    if named != partitions:
        raise InvalidOffsetSpec(
            f"start offsets must name every partition {sorted(partitions)} (use -2 for earliest, -1 for latest); "
            f"got {sorted(named)}"
        )
    starts = {}
    for w in marks:
        offset = spec.offsets[w.partition]
        offset = w.low if offset == EARLIEST else w.high if offset == LATEST else offset
        if not w.low <= offset <= w.high:
            raise InvalidOffsetSpec(
                f"start offset {offset} of partition {w.partition} lies outside [{w.low}, {w.high}]"
            )
        starts[w.partition] = offset
    return starts


def plan_read(
    bootstrap: str,
    topic: str,
    *,
    start: str = "earliest",
    max_events: int | None = None,
    end: str | None = None,
    isolation_level: str = "read_committed",
    strategy: str = "bounded",
    properties: KafkaProperties | Mapping[str, str] | None = None,
    last: int | None = None,
) -> ReadPlan:
    """Plan a read of ``topic`` from broker metadata (partition count, watermarks, offsets for times).

    ``max_events`` N reads the first min(N, available) records from ``start``; ``last`` N the most recent ones
    before the end offsets (the latest, or ``end``), water-filled back from them, never before ``start``.
    ``properties`` are Kafka client properties (SASL, SSL, ...; ``kafka.properties``) for the admin client."""
    if strategy not in READ_STRATEGIES:
        raise InvalidOffsetSpec(f"read strategy must be one of {READ_STRATEGIES}, not {strategy!r}")
    isolation_level_of(isolation_level)  # checked before any broker request
    if max_events is not None and max_events < 1:
        raise InvalidOffsetSpec(f"--max-events must be at least 1, not {max_events}")
    if last is not None:
        if last < 1:
            raise InvalidOffsetSpec(f"--last must be at least 1, not {last}")
        if max_events is not None:
            raise InvalidOffsetSpec("--last and --max-events exclude each other: one reads the newest records, "
                                    "the other the oldest from --start")
        if strategy != "bounded":
            raise InvalidOffsetSpec("--last needs the bounded read strategy")
    spec = parse_start(start, topic)
    end_ms = parse_timestamp(end) if end is not None else None
    if end_ms is not None and spec.timestamp_ms is not None and end_ms <= spec.timestamp_ms:
        raise InvalidOffsetSpec(f"end {end!r} is not after start {start!r}")

    times_ms = [ms for ms in (spec.timestamp_ms, end_ms) if ms is not None]
    offsets = TopicOffsets(bootstrap, topic, properties=properties)
    snapshot = offsets.snapshot(isolation_level=isolation_level, timestamps_ms=times_ms)
    marks = snapshot.watermarks
    start_times = snapshot.for_times[spec.timestamp_ms] if spec.timestamp_ms is not None else None
    starts = resolve_starts(spec, marks, start_times)
    ends = {w.partition: w.high for w in marks}
    if end_ms is not None:
        end_times = snapshot.for_times[end_ms]
        ends = {p: high if end_times[p] < 0 else max(starts[p], end_times[p]) for p, high in ends.items()}
    return ReadPlan(
        topic=topic, strategy=strategy, isolation_level=isolation_level, start=start, end=end,
        max_events=max_events, watermarks=tuple(marks),
        ranges=build_ranges(starts, ends, max_events) if last is None else build_last_ranges(starts, ends, last),
        start_timestamp_ms=spec.timestamp_ms, end_timestamp_ms=end_ms, start_offsets=starts, end_offsets=ends,
        last=last,
    )
