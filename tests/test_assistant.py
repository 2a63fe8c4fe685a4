"""The assistant: finding the user, answering with the run's real figures, and the ``ask`` command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_fixtures import FixtureRun, serving, write_run

from streamguard.assistant import ApiSource, answer_question, resolve_user
from streamguard.assistant.resolve import candidates
from streamguard.errors import StreamguardError
from streamguard.features import FEATURES
from streamguard.serve import create_app
from streamguard.serve.process import free_port

DEFINITIONS = {feature.name: feature.definition for feature in FEATURES}
RISK = {feature.name: feature.risk for feature in FEATURES}
DETECTOR_FEATURES = tuple(feature.name for feature in FEATURES if feature.detector_uses)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_run(tmp_path_factory.mktemp("assistant") / "out", "20260105T000000Z-cccccc")


@pytest.fixture(scope="module")
def api(run: FixtureRun) -> Iterator[str]:
    with serving(create_app(run.output)) as url:
        yield url


def ask(api: str, question: str, **extra: str) -> dict:
    response = httpx.post(api + "/api/assistant/query", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def top_deviations(frame: pd.DataFrame, user: str, count: int = 3) -> list[str]:
    """Computed here independently of the assistant: z against the mean and population std of all users, on the
    features the detector uses only (model features and rare-event counts), signed so that the risky direction is
    positive, positive ones only."""
    features = frame[list(DETECTOR_FEATURES)].astype(float)
    std = features.std(ddof=0)
    sign = pd.Series({name: 1.0 if RISK[name] == "higher" else -1.0 for name in DETECTOR_FEATURES})
    z = (sign * (features - features.mean()) / std.where(std > 0)).loc[frame["user"] == user].iloc[0].dropna()
    z = z[z > 0]
    return z.sort_values(ascending=False).index[:count].tolist()


KNOWN = {"manager": "manager", "erin": "erin", "svc_backup": "svc_backup"}


@pytest.mark.parametrize(("question", "expected"), [
    ("Is user manager anomalous?", "manager"),
    ("is manager anomalous", "manager"),
    ("Why was 'svc_backup' flagged?", "svc_backup"),
    ("What about erin's activity?", "erin"),
    ("Is Erin suspicious?", "erin"),
    ("Tell me about the account svc_backup.", "svc_backup"),
])
def test_resolve_finds_known_users(question, expected):
    resolved = resolve_user(question, lookup=KNOWN.get)
    assert (resolved.name, resolved.row) == (expected, expected)


def test_resolve_reports_the_plainly_named_unknown_user():
    assert resolve_user("Is user zed anomalous?", lookup=KNOWN.get).name == "zed"
    assert resolve_user("is bob2 suspicious?", lookup=KNOWN.get).name == "bob2"
    assert resolve_user("What happened here today?", lookup=KNOWN.get).name is None


def test_an_explicit_user_id_wins_over_the_question():
    resolved = resolve_user("Is user manager anomalous?", lookup=KNOWN.get, user_id="erin")
    assert resolved.name == "erin"
    assert resolve_user("Is user manager anomalous?", lookup=KNOWN.get, user_id="zed").row is None


def test_candidates_skip_common_words():
    strong, weak = candidates("Why was the user 'svc_backup' flagged as anomalous?")
    assert strong == ["svc_backup"]
    assert "why" not in [w.lower() for w in weak] and "anomalous" not in weak


def test_an_anomalous_user_gets_its_real_figures_and_what_sets_it_apart(api, run):
    body = ask(api, "Is user erin anomalous?")
    row = run.row("erin")
    text = body["answer"]
    assert body["user"] == "erin" and body["known_user"] and body["is_anomaly"] is True
    assert body["phrased_by"] == "template"
    assert "is anomalous" in text and "not anomalous" not in text
    assert f"{row['anomaly_score']:.3f}" in text
    assert f"threshold of {run.report.run.detector.threshold:.3f}" in text
    assert f"{row['total_events']:,} events" in text
    assert f"average threat score of {row['avg_threat_score']:.3f}" in text
    assert f"failed-auth rate of {row['failed_auth_rate']:.1%}" in text
    assert f"{row['unique_ips']} unique IPs" in text
    expected = top_deviations(run.frame, "erin")
    assert [d["feature"] for d in body["deviations"]] == expected
    for feature in expected:
        assert feature in text
        assert DEFINITIONS[feature].rstrip(".") in text


def test_a_normal_user_is_clearly_not_anomalous(api, run):
    body = ask(api, "Is user manager anomalous?")
    text = body["answer"]
    assert body["is_anomaly"] is False and body["known_user"] is True
    assert "manager is not anomalous" in text
    assert f"{run.row('manager')['anomaly_score']:.3f}" in text
    assert f"{run.report.run.detector.threshold:.3f}" in text


def test_an_unknown_user_is_said_to_be_unknown(api, run):
    body = ask(api, "Is user zed anomalous?")
    assert body["known_user"] is False and body["user"] == "zed"
    assert "no user 'zed'" in body["answer"]
    assert run.run_id in body["answer"]


def test_a_question_naming_nobody_gets_a_hint(api):
    body = ask(api, "What happened here today?")
    assert body["user"] is None and body["kind"] == "no_user"
    assert "could not tell which user" in body["answer"]


def test_explanations_cite_only_model_features_on_their_risky_side(api, run):
    for user in run.frame["user"]:
        body = ask(api, f"Is user {user} anomalous?")
        assert [d["feature"] for d in body["deviations"]] == top_deviations(run.frame, user)
        for deviation in body["deviations"]:
            assert deviation["feature"] in DETECTOR_FEATURES and deviation["z_score"] > 0
            assert deviation["risk"] == RISK[deviation["feature"]]
        for name in set(DEFINITIONS) - set(DETECTOR_FEATURES):
            assert f"{name} is" not in body["answer"]
        assert "below;" not in body["answer"]  # every model feature here is risky when higher


@pytest.mark.parametrize("question", ["How many users are anomalous?", "how many anomalies are there",
                                      "How many users were flagged?"])
def test_how_many_users_are_anomalous(api, run, question):
    body = ask(api, question)
    anomalous = int(run.frame["is_anomaly"].sum())
    assert body["kind"] == "count" and body["anomalous_users"] == anomalous
    assert body["answer"].startswith(f"{anomalous:,} of the {len(run.frame):,} users of run {run.run_id}")


def _expected_top(run: FixtureRun, count: int) -> list[str]:
    flagged = run.frame[run.frame["is_anomaly"] == 1]
    return flagged.sort_values(["anomaly_score", "user"], ascending=[False, True])["user"].head(count).tolist()


@pytest.mark.parametrize("question", ["Who are the top anomalies?", "List the anomalous users",
                                      "Which users are most suspicious?"])
def test_who_are_the_top_anomalies_through_the_http_source(api, run, question):
    with ApiSource.connect(api) as source:
        answer = answer_question(question, source=source)
    assert answer.kind == "list" and answer.user is None
    expected = _expected_top(run, 10)
    assert [item.user for item in answer.anomalies] == expected
    assert all(item.is_anomaly for item in answer.anomalies)
    for user in expected:
        assert user in answer.answer
    assert answer.answer.index(expected[0]) < answer.answer.index(expected[-1])


def test_top_n_is_honoured(api, run):
    with ApiSource.connect(api) as source:
        answer = answer_question("Who are the top 2 anomalies?", source=source)
    assert [item.user for item in answer.anomalies] == _expected_top(run, 2)
    assert "the 2 most anomalous" in answer.answer


def test_a_list_question_through_the_endpoint_names_the_flagged_users(api, run):
    body = ask(api, "Who are the top anomalies?")
    assert body["kind"] == "list" and body["anomalous_users"] == int(run.frame["is_anomaly"].sum())
    assert str(body["anomalous_users"]) in body["answer"]
    flagged = run.frame[run.frame.is_anomaly == 1].sort_values(["anomaly_score", "user"], ascending=[False, True])
    listed = [item["user"] for item in body["anomalies"]]
    assert listed and listed == flagged["user"].tolist()[: len(listed)]
    assert all(user in body["answer"] for user in listed)


def test_a_plainly_named_unknown_user_in_a_list_question_is_about_that_user(api):
    body = ask(api, "Is user zed among the top anomalies?")
    assert body["kind"] == "unknown_user" and body["user"] == "zed"


def test_user_id_is_validated_like_a_path_user(api):
    response = httpx.post(api + "/api/assistant/query", json={"question": "?", "user_id": "bad\u0007name"})
    assert response.status_code == 422
    assert "user_id: a user name is" in response.json()["message"]


def test_the_http_source_gives_the_same_answer_as_the_endpoint(api):
    question = "Why was 'svc_backup' flagged?"
    with ApiSource.connect(api) as source:
        through_http = answer_question(question, source=source)
    assert through_http.model_dump(mode="json") == ask(api, question)


def test_the_http_source_fails_with_one_line_when_the_api_is_down():
    with ApiSource.connect(f"http://127.0.0.1:{free_port()}") as source, \
            pytest.raises(StreamguardError, match="cannot reach the StreamGuard API"):
        source.stats()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamguard", *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parent.parent, check=False)


def test_ask_prints_the_answer(api, run):
    result = _cli("ask", "Is user manager anomalous?", "--api", api)
    assert result.returncode == 0, result.stderr
    assert "manager is not anomalous" in result.stdout
    assert f"{run.row('manager')['anomaly_score']:.3f}" in result.stdout


def test_ask_exits_non_zero_for_an_unknown_user_after_printing_the_answer(api):
    result = _cli("ask", "Is user zed anomalous?", "--api", api)
    assert result.returncode == 1
    assert "no user 'zed'" in result.stdout


def test_ask_answers_a_list_question(api, run):
    result = _cli("ask", "Who are the top anomalies?", "--api", api)
    assert result.returncode == 0, result.stderr
    assert _expected_top(run, 1)[0] in result.stdout


def test_ask_exits_non_zero_with_one_line_when_the_api_is_unreachable():
    result = _cli("ask", "Is user manager anomalous?", "--api", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the StreamGuard API")
