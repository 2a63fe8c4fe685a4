"""A published run on disk, written the way the pipeline writes one, for the API's tests and benchmark.

    run = write_run(tmp_path / "out", "20260105T000000Z-aaaaaa")
    run.output            # the symlink tmp_path/out -> tmp_path/out.runs/<run id>/
    run.frame             # the training data as written (one row per user, is_anomaly included)

Features are drawn so that the anomalous users (``ANOMALOUS``) stand out on failed auths, threat, IPs and
bursts, and hang together (``ip_diversity_score == unique_ips / total_events``, type counts add up to
``total_events``). The run folder is prepared and published with the pipeline's own :class:`RunPublisher`; the
training data is hive-partitioned by ``is_anomaly`` and the report is built from the report models and
validated by ``report_json``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp

from streamguard.events.parse import QUARANTINE_REASONS
from streamguard.export import QUARANTINE, TRAINING_DATA, RunPublisher
from streamguard.features import EVENT_TYPES, FEATURE_COLUMNS
from streamguard.report import REPORT_FILE, AnomalyReport, report_json
from streamguard.serve.process import free_port

NAMED = ("admin", "manager", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
         "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter", "svc_backup", "svc_deploy")
ANOMALOUS = ("erin", "mallory", "svc_backup")
THRESHOLD = 0.6
DAYS = 7
TOPIC = "security-events"


@dataclass(frozen=True)
class FixtureRun:
    output: Path
    run_dir: Path
    report: AnomalyReport
    frame: pd.DataFrame

    @property
    def run_id(self) -> str:
        return self.report.run.run_id

    def row(self, user: str) -> dict[str, object]:
        """The user's row as written, without ``user``, each value of its column's type."""
        record = self.frame[self.frame["user"] == user].to_dict("records")[0]
        return {key: value for key, value in record.items() if key != "user"}


def user_names(count: int) -> list[str]:
    return list(NAMED[:count]) + [f"user_{i:04d}" for i in range(len(NAMED) + 1, count + 1)]


def feature_frame(users: int = 40, anomalous: Sequence[str] = ANOMALOUS, seed: int = 7,
                  extra_users: Sequence[str] = ()) -> pd.DataFrame:
    """One row per user: ``user``, every feature, ``anomaly_score`` and ``is_anomaly``; ``extra_users`` are
    added after the ``users`` generated names."""
    rng = np.random.default_rng(seed)
    names = user_names(users) + list(extra_users)
    bad = np.array([name in anomalous for name in names])
    n = len(names)

    def pick(normal: tuple[float, float], odd: tuple[float, float]) -> np.ndarray:
        return np.where(bad, rng.uniform(*odd, n), rng.uniform(*normal, n))

    total = rng.poisson(400 * rng.lognormal(0, 0.5, n)) + 20
    shares = rng.dirichlet(np.ones(len(EVENT_TYPES)) * 4, n)
    type_counts = np.array([rng.multinomial(t, s) for t, s in zip(total, shares, strict=True)])
    unique_ips = np.where(bad, rng.integers(15, 40, n), rng.integers(1, 4, n))
    avg_threat = pick((0.05, 0.2), (0.4, 0.7))
    avg_gap = DAYS * 86_400 / total
    columns: dict[str, object] = {
        "user": names,
        "total_events": total,
        "unique_ips": unique_ips,
        "unique_event_types": (type_counts > 0).sum(axis=1),
        "unique_locations": np.where(bad, rng.integers(5, 12, n), rng.integers(1, 3, n)),
        "avg_threat_score": avg_threat,
        "max_threat_score": np.minimum(1.0, avg_threat + rng.uniform(0.1, 0.3, n)),
        "failed_auth_rate": pick((0.0, 0.08), (0.4, 0.8)),
        "unusual_hour_rate": pick((0.0, 0.1), (0.3, 0.6)),
        "weekend_rate": rng.uniform(0.1, 0.3, n),
        "ip_diversity_score": unique_ips / total,
        "events_per_day": total / DAYS,
        **{f"{kind}_count": type_counts[:, i] for i, kind in enumerate(EVENT_TYPES)},
        "hourly_activity_std": rng.uniform(5, 30, n),
        "rare_ip_ratio": pick((0.0, 0.3), (0.5, 0.9)),
        "avg_inter_event_s": avg_gap,
        "std_inter_event_s": avg_gap * rng.uniform(0.8, 1.5, n),
        "min_inter_event_s": rng.uniform(0.0, 2.0, n),
        "burst_events": np.where(bad, rng.poisson(60, n), rng.poisson(3, n)),
        "blocked_rate": pick((0.0, 0.05), (0.1, 0.4)),
        "total_bytes_sent": type_counts[:, EVENT_TYPES.index("network_connection")]
        * rng.integers(1_000, 100_000, n),
        "unsigned_process_rate": pick((0.0, 0.05), (0.2, 0.6)),
        "max_events_in_hour": np.ceil(total / (DAYS * 10)).astype(np.int64) + rng.poisson(4, n),
        "night_large_file_events": np.where(bad, rng.poisson(4, n), 0),
        "high_attempt_failed_logins": np.where(bad, rng.poisson(2, n), 0),
        "elevated_unsigned_executions": np.where(bad, rng.poisson(1, n), rng.poisson(0.01, n)),
        # No draw from rng: the figures above stay what they were.
        "unsigned_threat_outlier_executions": np.where(bad, 2, 0),
        "single_use_public_address_events": np.where(bad, 3, 0),
    }
    frame = pd.DataFrame(columns)
    frame["third_location_events"] = np.where(frame["unique_locations"] > 2, frame["unique_locations"] - 2, 0)
    for name in FEATURE_COLUMNS:
        if frame[name].dtype.kind in "iu":
            frame[name] = frame[name].astype("int64")
    frame["anomaly_score"] = pick((0.05, 0.5), (0.65, 0.98))
    frame["is_anomaly"] = (frame["anomaly_score"] > THRESHOLD).astype("int64")
    return frame[["user", *FEATURE_COLUMNS, "anomaly_score", "is_anomaly"]]


def build_report(frame: pd.DataFrame, run_id: str, *, generated_at: datetime | None = None,
                 invalid: int = 37, top_n: int = 10) -> AnomalyReport:
    """A report with the numbers of ``frame`` and realistic run metadata."""
    valid = int(frame["total_events"].sum())
    read = valid + invalid
    by_partition = [read // 3 + (1 if i < read % 3 else 0) for i in range(3)]
    anomalous = int(frame["is_anomaly"].sum())
    top = frame.sort_values(["anomaly_score", "user"], ascending=[False, True]).head(top_n)
    quarantined_by_reason = dict.fromkeys(QUARANTINE_REASONS, 0)
    quarantined_by_reason["invalid_json"] = invalid - invalid // 3
    quarantined_by_reason["missing_required"] = invalid // 3
    moment = generated_at or datetime.now(UTC)
    return AnomalyReport.model_validate({
        "total_users": len(frame),
        "anomalous_users": anomalous,
        "anomaly_rate": round(anomalous / len(frame), 6),
        "top_anomalies": [
            {key: row[key] for key in ("user", "anomaly_score", "total_events", "avg_threat_score",
                                       "unique_ips", "failed_auth_rate")}
            for row in top.to_dict("records")
        ],
        "run": {
            "run_id": run_id, "engine": "embedded", "topic": TOPIC, "bootstrap": "127.0.0.1:9092",
            "read_strategy": "bounded",
            "plan": {
                "topic": TOPIC, "strategy": "bounded", "isolation_level": "read_committed",
                "start": "earliest", "end": None, "max_events": read, "planned_records": read,
                "partitions": [{"partition": i, "low": 0, "high": count, "from": 0, "until": count}
                               for i, count in enumerate(by_partition)],
            },
            "records_scanned": read, "records_read": read, "records_valid": valid, "records_quarantined": invalid,
            "quarantined_by_reason": quarantined_by_reason,
            "stage_seconds": {"engine_init": 0.012, "plan": 0.104, "kafka_read": 3.377, "parse": 1.958,
                              "features": 2.641, "detection": 1.207, "export": 1.533, "total": 15.79},
            "versions": {"package": "0.1.0", "python": "3.11.9", "duckdb": "2.0.1", "kafka_client": "2.6.1",
                         "librdkafka": "2.6.1"},
            "detector": {
                "algorithm": "isolation_forest",
                "params": {"n_estimators": 200, "contamination": 0.05, "random_state": 42},
                "feature_columns": list(FEATURE_COLUMNS), "rows_fitted": len(frame), "sampled": False,
                "threshold": THRESHOLD, "raw_threshold": 0.5512, "raw_min": 0.3321, "raw_max": 0.7001,
                "anomalies_in_fit": anomalous,
            },
            "config": {"topic": TOPIC, "bootstrap": "127.0.0.1:9092", "max_events": read, "top_n": top_n},
            "outputs": {"training_data": TRAINING_DATA, "quarantine": QUARANTINE, "report": REPORT_FILE},
            "generated_at": moment.isoformat(timespec="seconds"),
        },
    })


def write_run(output: Path, run_id: str, *, users: int = 40, anomalous: Sequence[str] = ANOMALOUS,
              seed: int = 7, generated_at: datetime | None = None, extra_users: Sequence[str] = ()) -> FixtureRun:
    """Write one run beside ``output`` and publish it (``output`` becomes a symlink to it)."""
    frame = feature_frame(users, anomalous, seed, extra_users)
    report = build_report(frame, run_id, generated_at=generated_at)
    publisher = RunPublisher(output)
    staging = publisher.prepare(run_id)
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), staging / TRAINING_DATA,
                        partition_cols=["is_anomaly"])
    (staging / TRAINING_DATA / "_SUCCESS").touch()  # as Spark leaves it; readers must skip it
    quarantined = pa.table({"topic": [TOPIC], "partition": [0], "offset": [17], "kafka_timestamp": [0],
                            "value": [b"{not json"], "value_text": ["{not json"], "reason": ["invalid_json"]})
    pq.write_table(quarantined, _mkdir(staging / QUARANTINE) / "part-0.parquet")
    (staging / REPORT_FILE).write_text(report_json(report))
    publisher.commit(staging)
    return FixtureRun(output=Path(output), run_dir=staging, report=report, frame=frame)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as ``{(sample name, sorted label pairs): value}``."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@contextmanager
def serving(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port; yields its base URL, stops it on exit.

    A real HTTP server rather than Starlette's TestClient, whose httpx flavour is deprecated (a warning, so an
    error here) and which is no longer an ``httpx.Client`` once ``httpx2`` is installed.
    """
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=free_port(host), lifespan="off", ws="none",
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the test server stopped before it started; see the log above")
            time.sleep(0.01)
        yield f"http://{host}:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
