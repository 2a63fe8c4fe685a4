"""The embedded engine: every stage in this process, no JVM — the default on one machine.

librdkafka reads the plan's exact ranges into Arrow batches; ``classify_batch`` parses them (in worker processes
when the slice is large); DuckDB runs the feature query (multi-threaded, spilling to disk past its memory limit);
scikit-learn scores in-process; pyarrow writes the Parquet. It holds the planned records, their parsed events and
the per-user table, nothing more.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from streamguard.contracts.columns import EVENT_COLUMNS, FLAG_COLUMN, QUARANTINE_COLUMNS, USER_COLUMN
from streamguard.detect import FittedDetector, fit_sample_sql
from streamguard.engines.base import Engine, ParseCounts, ReadCounts, ScoreSummary, stage_error, top_entries
from streamguard.errors import DataError, OutputError, StreamguardError
from streamguard.events.parse import CLASSIFIED_SCHEMA, classify_batch
from streamguard.events.vocabulary import unknown_words_sql, unknown_words_summary
from streamguard.export import QUARANTINE, TRAINING_DATA
from streamguard.features import feature_sql
from streamguard.kafka.consume import BoundedRead
from streamguard.kafka.plan import ReadPlan
from streamguard.kafka.properties import KafkaProperties

log = logging.getLogger(__name__)
T = TypeVar("T")

# Below this many records one process parses faster than starting workers would.
PARALLEL_PARSE_MIN_RECORDS = 200_000
MAX_QUEUED_BATCHES_PER_WORKER = 2
# Spark SQL functions the shared queries use that DuckDB spells differently.
_DUCKDB_MACROS = ("CREATE MACRO sha2(value, bits) AS sha256(value)",)
# The columns the feature query reads.
_FEATURE_INPUTS = frozenset({"user", "event_id", "timestamp", "event_type", "source_ip", "geo_location",
                             "threat_score", "status", "bytes_sent", "is_signed", "attempts_count",
                             "file_size_bytes", "user_privileges"})


class EmbeddedEngine(Engine):
    """One run's data in this process (Arrow tables and a DuckDB connection)."""

    name = "embedded"

    def __init__(self, *, bootstrap: str, kafka_properties: KafkaProperties | Mapping[str, str] | None = None,
                 workers: int | None = None) -> None:
        self._bootstrap = bootstrap
        self._kafka_properties = KafkaProperties.of(kafka_properties)
        self._workers = workers or os.cpu_count() or 1
        self._raw: list[pa.RecordBatch] = []
        self._reading: BoundedRead | None = None
        self._parsing: list[Future[pa.RecordBatch]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._classified: pa.Table | None = None
        self._features: pa.Table | None = None
        self._scored: pd.DataFrame | None = None
        self._db: duckdb.DuckDBPyConnection | None = None
        self._spill = tempfile.TemporaryDirectory(prefix="streamguard-duckdb-")

    def start(self) -> None:
        self._db = connect(threads=self._workers, spill_dir=self._spill.name)

    def read(self, plan: ReadPlan) -> ReadCounts:
        reader = self._reading = BoundedRead(self._bootstrap, plan, properties=self._kafka_properties)
        if self._workers < 2 or plan.planned_records < PARALLEL_PARSE_MIN_RECORDS:
            self._raw = list(reader)
            return ReadCounts(records_fetched=reader.records_fetched,
                              records_read=sum(batch.num_rows for batch in self._raw), accounting=reader.accounting)
        # A large slice: worker processes parse each batch while the next one is fetched, so the parse stage mostly
        # waits for the last batches. The parse CPU time therefore shows up partly in this stage's seconds.
        self._pool = _started_pool(self._workers)
        records = 0
        for batch in reader:
            records += batch.num_rows
            self._parsing.append(self._pool.submit(classify_batch, batch))
            # Back-pressure: a raw batch waiting for a worker is held in memory (as a pickled copy too), so the read
            # waits while more than two batches per worker are queued; librdkafka keeps fetching meanwhile.
            pending = [future for future in self._parsing if not future.done()]
            if len(pending) > MAX_QUEUED_BATCHES_PER_WORKER * self._workers:
                wait(pending[: len(pending) - MAX_QUEUED_BATCHES_PER_WORKER * self._workers])
        return ReadCounts(records_fetched=reader.records_fetched, records_read=records, accounting=reader.accounting)

    def parse(self) -> ParseCounts:
        self._reading = None
        raw, self._raw = self._raw, []
        parsing, self._parsing = self._parsing, []
        batches = [classify_batch(batch) for batch in raw] + [future.result() for future in parsing]
        self._shutdown_pool()
        self._classified = pa.Table.from_batches(batches, schema=CLASSIFIED_SCHEMA)
        counts = self._classified.group_by("reason").aggregate([("offset", "count")]).to_pylist()
        by_reason = {row["reason"]: row["offset_count"] for row in counts}
        words = query(self._connection(), unknown_words_sql("classified"), classified=self._classified)
        return ParseCounts(valid=by_reason.pop(None, 0), by_reason=by_reason, **_time_window(self._classified),
                           unknown_detail_words=unknown_words_summary(words.to_pylist()))

    def features(self) -> int:
        self._features = embedded_features(self._valid_events(), self._connection())
        return self._features.num_rows

    def fit_sample(self, columns: tuple[str, ...], max_rows: int) -> pd.DataFrame:
        features = self._require(self._features)
        return query(self._connection(), fit_sample_sql("features", columns, max_rows), features=features).to_pandas()

    def score(self, detector: FittedDetector, top_n: int) -> ScoreSummary:
        self._scored = detector.score_pandas(self._require(self._features).to_pandas())
        anomalous = int(self._scored[FLAG_COLUMN].sum())
        return ScoreSummary(anomalous=anomalous, top=top_entries(self._scored, top_n))

    def export(self, staging: Path) -> None:
        scored = pa.Table.from_pandas(self._require(self._scored), preserve_index=False)
        ds.write_dataset(
            scored, staging / TRAINING_DATA, format="parquet",
            partitioning=ds.partitioning(pa.schema([(FLAG_COLUMN, pa.int32())]), flavor="hive"),
            basename_template="part-{i}.parquet",
        )
        classified = self._require(self._classified)
        quarantined = classified.filter(pc.is_valid(classified["reason"])).select(list(QUARANTINE_COLUMNS))
        (staging / QUARANTINE).mkdir()
        pq.write_table(quarantined, staging / QUARANTINE / "part-0.parquet")

    def versions(self) -> dict[str, str]:
        return {"duckdb": duckdb.__version__}

    def progress(self) -> str | None:
        reading = self._reading
        return f"{reading.records_fetched:,} records fetched" if reading is not None else None

    @contextmanager
    def errors(self, stage: str) -> Iterator[None]:
        try:
            yield
        except StreamguardError:
            raise
        except (duckdb.Error, pa.ArrowException) as exc:
            raise stage_error(stage)(f"{stage} failed: {exc}") from exc
        except OSError as exc:
            if stage != "export":
                raise
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._shutdown_pool()
        if self._db is not None:
            self._db.close()
            self._db = None
        self._raw, self._classified, self._features, self._scored = [], None, None, None
        self._spill.cleanup()

    def _valid_events(self) -> pa.Table:
        classified = self._require(self._classified)
        return classified.filter(pc.is_null(classified["reason"])).select(
            [name for name in EVENT_COLUMNS if name in classified.column_names]
        )

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            for future in self._parsing:
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            raise StreamguardError("the embedded engine was not started")
        return self._db

    @staticmethod
    def _require(value: T | None) -> T:
        if value is None:
            raise StreamguardError("an embedded engine stage ran before the stage it needs")
        return value


def connect(*, threads: int | None = None, spill_dir: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection ready for the shared queries (Spark SQL's ``sha2`` defined as a macro)."""
    config: dict[str, str | int] = {"threads": threads or os.cpu_count() or 1}
    if spill_dir is not None:
        config["temp_directory"] = spill_dir
    db = duckdb.connect(config=config)
    for macro in _DUCKDB_MACROS:
        db.execute(macro)
    return db


def query(db: duckdb.DuckDBPyConnection, sql: str, **relations: pa.Table) -> pa.Table:
    """Run ``sql`` with each Arrow table of ``relations`` visible under its keyword name."""
    for name, table in relations.items():
        db.register(name, table)
    try:
        return db.sql(sql).to_arrow_table()
    finally:
        for name in relations:
            db.unregister(name)


def embedded_features(events: pa.Table, db: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """The feature table of parsed ``events`` (``EVENT_COLUMNS``), sorted by user: the embedded features stage."""
    missing = [name for name in EVENT_COLUMNS if name not in events.column_names and name in _FEATURE_INPUTS]
    if missing:
        raise DataError(f"events lack the column(s) {', '.join(missing)} needed to build features")
    own = db is None
    db = db or connect()
    try:
        return query(db, feature_sql("events"), events=events).sort_by(USER_COLUMN)
    finally:
        if own:
            db.close()


def _started_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers are all running before it is returned.

    Ctrl-C is held back while they start: a worker still being spawned when the parent tears the pool down dies
    with a multiprocessing traceback on the terminal. The signal arrives as soon as the workers are up.
    """
    held: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum)) if in_main_thread else None
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(), initializer=_ignore_interrupts)
        for ready in [pool.submit(_ready) for _ in range(workers)]:
            ready.result()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    if held:
        pool.shutdown(wait=True, cancel_futures=True)
        raise KeyboardInterrupt
    return pool


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the parent decides and shuts the workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> bool:
    return True


def _time_window(classified: pa.Table) -> dict[str, int | None]:
    """Min and max event timestamp of the valid events and Kafka timestamp of every record, in ms."""
    valid = pc.is_null(classified["reason"])
    event = pc.min_max(pc.filter(classified["timestamp"], valid))
    kafka = pc.min_max(pc.cast(classified["kafka_timestamp"], pa.int64()))
    return {
        "event_time_min_ms": event["min"].as_py(), "event_time_max_ms": event["max"].as_py(),
        "kafka_time_min_ms": _us_to_ms(kafka["min"].as_py()), "kafka_time_max_ms": _us_to_ms(kafka["max"].as_py()),
    }


def _us_to_ms(microseconds: int | None) -> int | None:
    return None if microseconds is None else microseconds // 1000


def _worker_context() -> BaseContext:
    # forkserver: this process has librdkafka and DuckDB threads, which a plain fork would copy half-alive.
    context = get_context("forkserver")
    context.set_forkserver_preload(["streamguard.events.parse"])
    return context
