"""Evaluation against ground truth: the figures on hand-made cases, average precision against scikit-learn, and
the command on a written run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from streamguard.cli import _register, cli
from streamguard.detect.evaluate import average_precision, evaluate_scores
from streamguard.export import TRAINING_DATA
from streamguard.synth.truth import AnomalousUser, GroundTruth


def truth(anomalies: dict[str, str], quiet: tuple[str, ...] = (), spread: bool = False) -> GroundTruth:
    return GroundTruth(
        seed=1, events=100, users=10, anomalous_users=len(anomalies), days=7, invalid_rate=0.0, key="user",
        start_ms=0, end_ms=1, valid_events=100, invalid_events=0,
        anomalies=tuple(AnomalousUser(user=u, behaviour=b, events=10, anomalous_events=5)
                        for u, b in anomalies.items()),
        invalid_counts={}, variant_counts={}, quiet_users=quiet, spread_anomalies=spread,
    )


def scores(rows: list[tuple[str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "anomaly_score", "is_anomaly"])


def test_precision_recall_f1_and_the_lists() -> None:
    frame = scores([("a", 0.99, 1), ("b", 0.98, 1), ("c", 0.97, 1), ("d", 0.5, 0), ("q", 0.1, 0), ("e", 0.2, 0)])
    result = evaluate_scores(frame, truth({"a": "ip_hopping", "b": "malware_process", "d": "ip_hopping",
                                           "gone": "credential_stuffing"}, quiet=("q",)))
    assert (result.flagged, result.positives, result.true_positives) == (3, 3, 2)
    assert result.precision == pytest.approx(2 / 3) and result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.recall_by_behaviour == {"credential_stuffing": None, "ip_hopping": 0.5, "malware_process": 1.0}
    assert [(f.user, f.quiet) for f in result.false_positives] == [("c", False)]
    assert [(m.user, m.behaviour) for m in result.missed] == [("d", "ip_hopping")]
    assert result.absent == ["gone"]
    assert (result.quiet_users, result.quiet_flagged) == (1, [])
    # a, b, then c (a miss), then d: AP = 1/3 * 1 + 1/3 * 1 + 1/3 * 3/4
    assert result.pr_auc == pytest.approx((1 + 1 + 0.75) / 3)


def test_a_flagged_quiet_user_and_a_spread_topic_are_reported() -> None:
    frame = scores([("q", 0.99, 1), ("n", 0.4, 0)])
    result = evaluate_scores(frame, truth({}, quiet=("q",), spread=True))
    assert result.quiet_flagged == ["q"] and result.false_positives[0].quiet
    assert result.precision == 0.0 and result.recall is None and result.f1 is None and result.pr_auc is None
    assert result.spread_anomalies
    nothing = evaluate_scores(scores([("n", 0.4, 0)]), truth({"n": "ip_hopping"}))
    assert nothing.precision is None and nothing.recall == 0.0 and nothing.f1 is None


def test_average_precision_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import average_precision_score  # noqa: PLC0415

    rng = np.random.default_rng(4)
    for _ in range(20):
        values = rng.integers(0, 8, 60) / 8.0
        labels = rng.random(60) < 0.2
        if labels.any():
            assert average_precision(values, labels) == pytest.approx(average_precision_score(labels, values))


def test_the_command_prints_figures_and_json(tmp_path: Path) -> None:
    frame = scores([("a", 0.99, 1), ("b", 0.3, 0), ("c", 0.2, 0)])
    ds.write_dataset(pa.Table.from_pandas(frame.astype({"is_anomaly": "int32"}), preserve_index=False),
                     tmp_path / "run" / TRAINING_DATA, format="parquet",
                     partitioning=ds.partitioning(pa.schema([("is_anomaly", pa.int32())]), flavor="hive"))
    truth_file = tmp_path / "truth.json"
    truth({"a": "ip_hopping", "c": "malware_process"}).write(truth_file)
    _register()
    runner = CliRunner()
    done = runner.invoke(cli, ["evaluate", "--data", str(tmp_path / "run"), "--truth", str(truth_file), "--json"])
    assert done.exit_code == 0, done.output
    figures = json.loads(done.output)
    assert figures["precision"] == 1.0 and figures["recall"] == 0.5
    assert figures["missed"] == [{"user": "c", "behaviour": "malware_process", "anomaly_score": 0.2}]
    text = runner.invoke(cli, ["evaluate", "--data", str(tmp_path / "run"), "--truth", str(truth_file)])
    assert text.exit_code == 0 and "recall 0.500" in text.output and "malware_process" in text.output
