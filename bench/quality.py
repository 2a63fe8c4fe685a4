"""Detection quality on seeded populations: precision, recall, F1, PR-AUC against the seeder's ground truth.

    python -m bench.quality                          # slices of 10k and 100k events (about 4 minutes here)
    python -m bench.quality --slices 10000 100000 1000000
    python -m bench.quality --json                   # also print the record

Each population is seeded once into its own topic on ``STREAMGUARD_KAFKA_BOOTSTRAP``'s cluster when that is set,
else on a local broker whose data persists in ``$STREAMGUARD_STATE_DIR/quality-kafka`` (state dir
``./.streamguard`` by default; a topic holding the expected records is reused), then each slice (the first N
records, ``--max-events N``) runs through the real pipeline on the embedded engine with default settings, and
``streamguard.detect.evaluate`` compares the flags with the ground truth. The populations (bench/QUALITY.md):

=========  ======  =========  =====  ==========================================================
name       users   anomalous  quiet  what it tests
=========  ======  =========  =====  ==========================================================
u50        50      2 (4%)     0      a small team
u1k        1,000   20 (2%)    0      a department
u10k       10,000  100 (1%)   0      a company (at 100k events: 10 events per user)
quiet      1,000   30 (3%)    100    users safer than everyone on every risk feature: never flag
spread     1,000   (50)       0      50 users' anomalous behaviours spread evenly over everyone
=========  ======  =========  =====  ==========================================================

Besides the detector as it runs (``now``), every slice is also judged under two other rules computed from the
same run's training data, to show why the detector is built as it is: ``share_10pct`` (the same calibrated
scores, flagging a fixed 10% as ``--contamination 0.1`` does) and ``before`` (the detector before issue 10:
Isolation Forest on the two-sided standardised features, 10% contamination). Two more rules use the ground
truth, which no detector has, to say where a shortfall lies: ``now_best`` (the detector's own ranking cut at
the threshold with the highest recall at precision >= 0.8: is it the threshold or the ranking?) and
``oracle_best`` (gradient-boosted trees trained on the ground truth over the whole feature table, scored out of
fold, cut the same way: the information the features carry; populations with 10 or more injected users).

One JSON record per run is appended to ``bench/history/quality.jsonl`` (format 1: ``recorded_at``, ``commit``,
``machine``, ``versions``, ``results``: one entry per population, slice and rule) and the history chart
(``bench/history/ratios.png``, whose last panel draws these runs) is redrawn. A benchmark, not a test: it
prints figures and checks the goals (recall >= 0.9 at precision >= 0.8 on every seeded population at 100k; no
quiet user flagged), exiting 1 when a goal is missed only with ``--check``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from rich.console import Console
from rich.table import Table

from bench.machine import commit_info, machine_info
from streamguard._proc import state_dir
from streamguard.config import RunConfig
from streamguard.detect.evaluate import evaluate_scores, read_scores
from streamguard.errors import BrokerUnreachable
from streamguard.export import TRAINING_DATA
from streamguard.kafka.admin import partition_count, topic_exists, watermarks
from streamguard.kafka.bootstrap import find_bootstrap
from streamguard.kafka.broker import BrokerProvider, ExternalBroker
from streamguard.kafka.local_broker import LocalBroker
from streamguard.pipeline import run_pipeline
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import GroundTruth, load_truth

log = logging.getLogger("bench.quality")

HISTORY = Path(__file__).parent / "history" / "quality.jsonl"
DATA_STATE, TRUTH_STATE = "quality-kafka", "quality-truth"  # parts of the state dir (streamguard._proc.state_dir)
FORMAT = 1
PARTITIONS = 4
SEED = 42
# Part of every topic's name: raised whenever the seeder's output for a population changes, so that a topic seeded
# by an older seeder (reused when it holds the expected record count) is never measured again. r2 (2026-12-07): a
# quiet user's night and weekend events go to normal users by weight, not all to one.
TOPIC_REVISION = "r2"
GOAL_SLICE = 100_000
GOAL_RECALL = 0.9
GOAL_PRECISION = 0.8
SHARE = 0.10
# The supervised bound needs enough injected users for each of its folds to hold some.
ORACLE_FOLDS = 5
ORACLE_MIN_POSITIVES = 10


@dataclass(frozen=True)
class Population:
    name: str
    users: int
    anomalous: int
    quiet: int = 0
    spread: bool = False

    def topic(self, events: int, seed: int = SEED) -> str:
        return f"quality-{self.name}-{events}-s{seed}-{TOPIC_REVISION}"


POPULATIONS = (
    Population("u50", 50, 2),
    Population("u1k", 1_000, 20),
    Population("u10k", 10_000, 100),
    Population("quiet", 1_000, 30, quiet=100),
    Population("spread", 1_000, 50, spread=True),
)


def _broker() -> BrokerProvider:
    """The cluster ``STREAMGUARD_KAFKA_BOOTSTRAP`` names, else a local broker whose topics persist in the state dir."""
    given = find_bootstrap(running_broker=None)
    if given is not None:
        return ExternalBroker(given.address)
    data_dir = state_dir(DATA_STATE)
    data_dir.mkdir(parents=True, exist_ok=True)
    return LocalBroker(data_dir=data_dir)


def ensure_population(bootstrap: str, population: Population, events: int, seed: int = SEED) -> GroundTruth:
    """Seed the population's topic unless it already holds ``events`` records; return its ground truth."""
    topic = population.topic(events, seed)
    truth_path = state_dir(TRUTH_STATE) / f"{topic}.json"
    if topic_exists(bootstrap, topic) and truth_path.exists():
        sizes = _sizes_once_ready(bootstrap, topic)
        if sum(sizes) == events:
            return load_truth(truth_path)
        raise SystemExit(f"topic {topic} holds {sum(sizes):,} records, not {events:,}: delete {state_dir(DATA_STATE)}")
    log.info("seeding %s", topic)
    seed_topic(bootstrap, topic, events=events, partitions=PARTITIONS, seed=seed, users=population.users,
               anomalous_users=population.anomalous, quiet_users=population.quiet,
               spread_anomalies=population.spread, truth_path=truth_path, progress=False)
    return load_truth(truth_path)


def _sizes_once_ready(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[int]:
    # A restarted broker answers metadata before its partitions have leaders again (UNKNOWN_LEADER_EPOCH).
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return [w.size for w in watermarks(bootstrap, topic, partition_count(bootstrap, topic))]
        except BrokerUnreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def before_flags(training: pd.DataFrame) -> pd.Series:
    """Flags (by user) of the detector before issue 10: two-sided StandardScaler + Isolation Forest, 10%
    contamination, fitted in user order as it was."""
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    from streamguard.contracts.features import MODEL_FEATURE_COLUMNS  # noqa: PLC0415

    ordered = training.sort_values("user", kind="stable")
    values = StandardScaler().fit_transform(ordered.loc[:, list(MODEL_FEATURE_COLUMNS)].to_numpy(np.float64))
    model = IsolationForest(n_estimators=200, contamination=SHARE, random_state=42).fit(values)
    return pd.Series(model.predict(values) == -1, index=ordered["user"].to_numpy())


def best_operating_point(score: np.ndarray, positive: np.ndarray,
                         min_precision: float = GOAL_PRECISION) -> np.ndarray:
    """Flags at the score threshold with the highest recall whose precision is at least ``min_precision``.

    Chosen *with* the ground truth, so no detector can set it: it says how far a ranking could go with the
    best possible threshold. Users with equal scores are flagged together; of thresholds with equal recall the
    highest wins; no threshold reaching ``min_precision`` (or no positive) flags no one.
    """
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        return np.zeros(len(score), dtype=bool)
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(positive[order])[last_of_tie]
    seen = np.arange(1, len(ranked) + 1)[last_of_tie]
    reaching = tp / seen >= min_precision
    if not reaching.any():
        return np.zeros(len(score), dtype=bool)
    best = int(np.argmax(np.where(reaching, tp, -1)))
    return score >= ranked[last_of_tie][best]


def oracle_scores(training: pd.DataFrame, positive: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities of a classifier *trained on the ground truth* over the whole feature table.

    Gradient-boosted trees, each user scored by the model of the folds that did not hold it: how well the
    per-user features separate the injected users when the labels are known. No unsupervised detector on the
    same table can be expected to beat it, so it measures the information the features carry.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415
    from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: PLC0415

    from streamguard.contracts.features import FEATURE_COLUMNS  # noqa: PLC0415

    values = training.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float64)
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, class_weight="balanced",
                                           early_stopping=False, random_state=0)
    folds = StratifiedKFold(ORACLE_FOLDS, shuffle=True, random_state=0)
    return cross_val_predict(model, values, positive, cv=folds, method="predict_proba")[:, 1]


def injected_events(truth: GroundTruth) -> dict[str, int]:
    """How many injected users have 0, 1, 2 and 3 or more anomalous events in the whole topic: a user with none
    cannot be found by any detector, one with a single event barely."""
    counts = {"0": 0, "1": 0, "2": 0, "3+": 0}
    for anomaly in truth.anomalies:
        counts[str(anomaly.anomalous_events) if anomaly.anomalous_events < 3 else "3+"] += 1
    return counts


def _figures(rule: str, scores: pd.DataFrame, truth: GroundTruth) -> dict[str, Any]:
    result = evaluate_scores(scores, truth)
    return {
        "rule": rule, "users": result.users, "flagged": result.flagged, "positives": result.positives,
        "true_positives": result.true_positives, "precision": result.precision, "recall": result.recall,
        "f1": result.f1, "pr_auc": result.pr_auc, "false_positives": len(result.false_positives),
        "quiet_users": result.quiet_users, "quiet_flagged": len(result.quiet_flagged),
        "recall_by_behaviour": result.recall_by_behaviour,
    }


def measure(bootstrap: str, population: Population, truth: GroundTruth, topic: str, events: int,
            work: Path) -> list[dict[str, Any]]:
    """Run the pipeline on the first ``events`` records of ``topic``; the figures of each rule."""
    output = work / f"{topic}-{events}"
    started = time.perf_counter()
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, max_events=events, output=output,
                                    engine="embedded"), progress=False)
    seconds = round(time.perf_counter() - started, 2)
    scores, _ = read_scores(output)
    training = ds.dataset(output / TRAINING_DATA, format="parquet", partitioning="hive").to_table().to_pandas()
    share = scores.assign(is_anomaly=(scores["anomaly_score"] > 1.0 - SHARE).astype(np.int64))
    before = scores.assign(is_anomaly=before_flags(training).reindex(scores["user"]).to_numpy().astype(np.int64))
    positive = scores["user"].isin({a.user for a in truth.anomalies}).to_numpy()
    rules = [("now", scores), ("share_10pct", share), ("before", before),
             ("now_best", scores.assign(is_anomaly=best_operating_point(scores["anomaly_score"].to_numpy(),
                                                                        positive).astype(np.int64)))]
    if positive.sum() >= ORACLE_MIN_POSITIVES:
        ordered = training.sort_values("user", kind="stable", ignore_index=True)
        labels = ordered["user"].isin({a.user for a in truth.anomalies}).to_numpy()
        oracle = pd.Series(oracle_scores(ordered, labels), index=ordered["user"]).reindex(scores["user"]).to_numpy()
        rules.append(("oracle_best", scores.assign(anomaly_score=oracle, is_anomaly=best_operating_point(
            oracle, positive).astype(np.int64))))
    detector = result.report.run.detector
    common = {"population": population.name, "seed": truth.seed, "population_users": population.users,
              "anomalous_users": population.anomalous, "quiet_users_seeded": population.quiet,
              "spread": population.spread, "topic_events": truth.events, "slice": events,
              "pipeline_seconds": seconds, "detection_seconds": result.report.run.stage_seconds.detection,
              "threshold": detector.threshold,
              "injected_events": injected_events(truth) if events == truth.events else None}
    return [{**common, **_figures(rule, frame, truth)}
            for rule, frame in rules]


def goals(results: list[dict[str, Any]]) -> list[str]:
    """The goals missed, one sentence each."""
    missed = []
    for r in results:
        if r["rule"] != "now":
            continue
        if r["quiet_flagged"]:
            missed.append(f"{r['population']} at {r['slice']:,}: {r['quiet_flagged']} quiet user(s) flagged")
        # The goal is set on topics of GOAL_SLICE events read whole. The same slice of a 1M-event topic is its first
        # 17 hours, in which 24 of u10k's 100 injected users have no anomalous event yet (the seeder's draws): a
        # recall the data cannot reach, so it is reported, not checked.
        if r["slice"] == GOAL_SLICE and r["topic_events"] == GOAL_SLICE and not r["spread"] and (
                (r["recall"] or 0) < GOAL_RECALL or (r["precision"] or 0) < GOAL_PRECISION):
            missed.append(f"{r['population']} at {r['slice']:,}: recall {r['recall']}, precision {r['precision']}")
    return missed


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--populations", nargs="+", default=[p.name for p in POPULATIONS],
                        choices=[p.name for p in POPULATIONS])
    parser.add_argument("--no-record", action="store_true", help="Do not append to bench/history/quality.jsonl.")
    parser.add_argument("--json", action="store_true", help="Print the record as JSON too.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a goal is missed.")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"The seeder's seed (default {SEED}): another seed draws other users, attackers and "
                             "events, to see that a figure is not one draw's luck.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("streamguard",):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    events = max(args.slices)
    populations = [p for p in POPULATIONS if p.name in args.populations]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    commit = commit_info()
    results: list[dict[str, Any]] = []
    with _broker() as broker, tempfile.TemporaryDirectory(prefix="sg-quality-") as tmp:
        for population in populations:
            truth = ensure_population(broker.bootstrap, population, events, args.seed)
            for size in sorted(args.slices):
                log.info("%s: slice %s", population.name, f"{size:,}")
                results.extend(measure(broker.bootstrap, population, truth, population.topic(events, args.seed),
                                       size, Path(tmp)))
    import sklearn  # noqa: PLC0415

    record = {"format": FORMAT, "recorded_at": started_at, "commit": commit, "machine": machine_info(),
              "versions": {"python": platform.python_version(), "scikit_learn": sklearn.__version__},
              "command": "python -m bench.quality " + " ".join(argv if argv is not None else sys.argv[1:]),
              "results": results}
    table = Table("population", "slice", "users", "rule", "flagged", "TP/pos", "precision", "recall", "F1",
                  "PR-AUC", "quiet flagged", title="Detection quality (embedded engine, default settings)")
    for r in results:
        table.add_row(r["population"], f"{r['slice']:,}", f"{r['users']:,}", r["rule"], str(r["flagged"]),
                      f"{r['true_positives']}/{r['positives']}", _fmt(r["precision"]), _fmt(r["recall"]),
                      _fmt(r["f1"]), _fmt(r["pr_auc"]), f"{r['quiet_flagged']}/{r['quiet_users']}")
    console = Console(width=160)
    console.print(table)
    missed = goals(results)
    console.print("goals met" if not missed else "goals missed: " + "; ".join(missed))
    if not args.no_record:
        HISTORY.parent.mkdir(parents=True, exist_ok=True)
        with HISTORY.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        console.print(f"recorded in {HISTORY}")
        from bench import history  # noqa: PLC0415
        from bench.chart import render  # noqa: PLC0415 - matplotlib only when drawing

        console.print(f"chart: {render(history.load(), history.CHART_FILE)}")
    if args.json:
        print(json.dumps(record, indent=1))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
