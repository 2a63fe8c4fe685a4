"""The check of a model's wording against the facts: the template itself always passes; contradictions fail."""

from __future__ import annotations

from typing import Any

import pytest
from serve_fixtures import ANOMALOUS, FixtureRun, write_run

from streamguard.assistant.answer import Draft, draft_answer
from streamguard.assistant.check import check_reply
from streamguard.serve.app import SnapshotSource
from streamguard.serve.data import load_snapshot


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_run(tmp_path_factory.mktemp("check") / "out", "20260105T000000Z-eeeeee", users=60)


@pytest.fixture(scope="module")
def source(run: FixtureRun) -> SnapshotSource:
    return SnapshotSource(load_snapshot(run.run_dir))


def draft_for(source: SnapshotSource, user: str) -> Draft:
    draft = draft_answer(f"Is user {user} anomalous?", source=source)
    assert draft.facts is not None
    return draft


def check(source: SnapshotSource, user: str, text: str) -> str | None:
    draft = draft_for(source, user)
    facts: dict[str, Any] = draft.facts or {}
    rejection = check_reply(text.format(score=f"{facts['anomaly_score']:.3f}", **facts), facts,
                            grounding=(draft.answer.answer, f"Is user {user} anomalous?"),
                            known_user=lambda name: source.user(name) is not None)
    return None if rejection is None else rejection.reason


def test_every_template_answer_passes_its_own_check(run, source):
    for user in run.frame["user"]:
        draft = draft_for(source, user)
        assert check(source, user, draft.answer.answer.replace("{", "{{").replace("}", "}}")) is None, user


@pytest.mark.parametrize("text", [
    "{user} looks compromised: its score {score} is well above the {threshold} threshold.",
    "With an anomaly score of {score}, {user} was flagged; {unique_ips} unique IPs and a failed-auth rate of "
    "{failed_auth_rate:.1%} stand out among the {users_in_run} users.",
    "{user} is anomalous (score {score}, about {avg_threat_score:.2f} average threat).",
])
def test_faithful_rewordings_of_a_flagged_user_pass(source, text):
    assert check(source, ANOMALOUS[0], text) is None


@pytest.mark.parametrize("text", [
    "{user} is not anomalous: its score {score} stays under the threshold of {threshold}.",
    "{user} looks normal, with a score of {score}.",
    "Score {score}: nothing unusual about {user}.",
])
def test_faithful_rewordings_of_a_normal_user_pass(source, text):
    assert check(source, "manager", text) is None


@pytest.mark.parametrize("user, text, reason", [
    ("erin", "{user} is anomalous.", "missing_score"),
    ("erin", "{user} scored {score} and isn't anomalous.", "wrong_verdict"),
    ("erin", "{user} scored {score}; there is no sign of anything suspicious.", "wrong_verdict"),
    ("erin", "{user} scored {score}, below the detector's threshold.", "wrong_verdict"),
    ("erin", "{user} seems benign at {score}.", "wrong_verdict"),
    ("manager", "{user} was compromised (score {score}).", "wrong_verdict"),
    ("manager", "{user}'s score {score} exceeds the threshold.", "wrong_verdict"),
    ("erin", "{user} is anomalous with score {score} and 1,234,567 events.", "wrong_figure"),
    ("erin", "{user} is anomalous with score {score}, a failed-auth rate of 97.5%.", "wrong_figure"),
    ("erin", "{user} is anomalous with score {score}, as is svc_backup.", "other_user"),
])
def test_contradictions_are_refused_with_their_reason(source, user, text, reason):
    assert check(source, user, text) == reason


def test_names_are_looked_up_a_bounded_number_of_times(source):
    looked_up: list[str] = []
    draft = draft_for(source, "erin")
    facts: dict[str, Any] = draft.facts or {}
    words = " ".join(f"word{i}" for i in range(500))
    check_reply(f"erin is anomalous with score {facts['anomaly_score']:.3f}. {words}", facts,
                grounding=(draft.answer.answer,), known_user=lambda name: looked_up.append(name) is not None)
    assert 0 < len(looked_up) <= 48

