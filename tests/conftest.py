"""Shared fixtures: one local Spark session for the whole run, a builder of parsed-event tables, and the feature
stage of each engine.

    def test_something(make_events, compute_features):
        events = make_events([{"user": "alice", "timestamp": 1_700_000_000_000}])
        features = compute_features(events)        # runs once per engine: "embedded", then "spark"

    def test_both(spark, make_events, features_of):     # one named engine at a time
        events = make_events([{"user": "bob", "timestamp": 0}])
        embedded, on_spark = features_of("embedded", events), features_of("spark", events, spark=spark)

``make_events`` returns a pyarrow Table with exactly ``EVENT_COLUMNS``, typed as the parser's
``CLASSIFIED_SCHEMA`` types them; it fills every field a row leaves out with a neutral default (see
``EVENT_DEFAULTS``) and numbers the Kafka offsets and event ids, so a test states only what it is about.
The Spark session starts only when a test asks for it (directly or through the ``spark`` engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import settings

from streamguard.contracts.columns import EVENT_COLUMNS, USER_COLUMN
from streamguard.events.parse import CLASSIFIED_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENGINES: tuple[str, ...] = ("embedded", "spark")

EVENT_DEFAULTS: Mapping[str, Any] = {
    "kafka_partition": 0,
    "event_type": "file_access",
    "user": "alice",
    "source_ip": "10.0.0.1",
    "destination_ip": "10.0.0.254",
    "threat_score": 0.1,
    "status": "success",
}

# The parser names the Kafka coordinates partition/offset; the events relation calls them kafka_*.
_KAFKA_TYPES = {"kafka_partition": pa.int32(), "kafka_offset": pa.int64()}
EVENTS_SCHEMA = pa.schema(
    [(name, _KAFKA_TYPES.get(name) or CLASSIFIED_SCHEMA.field(name).type) for name in EVENT_COLUMNS]
)
"""The parsed events as the feature stage reads them, derived from the contracts and the parser's schema."""

EventsBuilder = Callable[[Sequence[Mapping[str, Any]]], pa.Table]
FeatureStage = Callable[..., pd.DataFrame]

# No per-example deadline: on a loaded 2-core machine (CI, or a benchmark beside the tests) a slow example is not a
# wrong one, and hypothesis' default 200 ms deadline turned that into flaky failures.
settings.register_profile("streamguard", deadline=None, print_blob=True)
settings.load_profile("streamguard")


def _events_table(rows: Sequence[Mapping[str, Any]], *, first_offset: int = 0) -> pa.Table:
    """A parsed-events table from partial rows; ``timestamp`` (ms since the epoch, UTC) is required."""
    records = []
    for offset, row in enumerate(rows, start=first_offset):
        unknown = set(row) - set(EVENT_COLUMNS)
        if unknown:
            raise KeyError(f"not an events column: {sorted(unknown)}")
        if "timestamp" not in row:
            raise KeyError("every event row needs a timestamp")
        records.append({**EVENT_DEFAULTS, "kafka_offset": offset, "event_id": f"evt_{offset:032x}", **row})
    return pa.Table.from_pylist(records, schema=EVENTS_SCHEMA)


def _features_of(engine: str, events: pa.Table, *, spark: SparkSession | None = None,
                partitions: int | None = None) -> pd.DataFrame:
    """The feature table ``engine`` computes from ``events``, as pandas sorted by user (index 0..n-1).

    ``partitions`` splits the input: into Arrow batches of about that many pieces for the embedded engine, into
    Spark partitions (a shuffle) for Spark.
    """
    if engine == "embedded":
        from streamguard.engines.embedded import embedded_features  # noqa: PLC0415

        if partitions:
            events = pa.Table.from_batches(
                events.to_batches(max_chunksize=max(1, -(-events.num_rows // partitions))), events.schema
            )
        table = embedded_features(events)
        frame = table.to_pandas()
    elif engine == "spark":
        from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

        from streamguard.engines.spark import spark_features  # noqa: PLC0415

        if spark is None:
            raise ValueError("the spark engine needs the spark session")
        frame_in = spark.createDataFrame(events)  # from Arrow: Spark takes the table's own types
        if frame_in.schema != from_arrow_schema(events.schema):
            raise TypeError(f"Spark typed the events as {frame_in.schema.simpleString()}")
        if partitions:
            frame_in = frame_in.repartition(partitions)
        frame = spark_features(frame_in).toPandas()
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return frame.sort_values(USER_COLUMN, kind="stable", ignore_index=True)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from streamguard.spark import spark_session  # noqa: PLC0415

    session = spark_session(master="local[2]", with_kafka=False, shuffle_partitions=2)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def make_events() -> EventsBuilder:
    """Build a parsed-events Arrow table from partial rows (offsets keep counting across calls)."""
    next_offset = 0

    def build(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        nonlocal next_offset
        table = _events_table(rows, first_offset=next_offset)
        next_offset += len(rows)
        return table

    return build


@pytest.fixture(scope="session")
def features_of() -> FeatureStage:
    """``features_of(engine, events, *, spark=None, partitions=None)``: one named engine's features stage."""
    return _features_of


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine's name in turn; Spark's session is started only for the ``spark`` runs."""
    return str(request.param)


@pytest.fixture(scope="module")
def compute_features(request: pytest.FixtureRequest, engine: str) -> FeatureStage:
    """The features stage of ``engine``: ``compute_features(events, partitions=None) -> pandas`` sorted by user."""
    session = request.getfixturevalue("spark") if engine == "spark" else None

    def compute(events: pa.Table, *, partitions: int | None = None) -> pd.DataFrame:
        return _features_of(engine, events, spark=session, partitions=partitions)

    return compute
