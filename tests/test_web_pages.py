"""The web view served by the API app, over a published fixture run whose users include awkward ids.

Figures on the pages are checked against the run as written (the frame, the report) and against the API's own
computations (population statistics, the assistant's deviations), never against the page's code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markupsafe import escape
from serve_fixtures import FixtureRun, build_report, feature_frame, serving, user_names

from streamguard.assistant.answer import deviations
from streamguard.export import TRAINING_DATA, RunPublisher
from streamguard.features import FEATURE_COLUMNS
from streamguard.report import REPORT_FILE, report_json
from streamguard.serve import create_app
from streamguard.serve.data import load_snapshot
from streamguard.web.render import SERVED_CSP, Links

RUN_ID = "20260105T000000Z-webweb"
TOKEN = "web-token-123"
# Ids the pipeline accepts and a URL or HTML can trip over: spaces, emoji, '/', '%', markup, quotes, dot segments.
ODD_USERS = ("Zoë 🦊 ops", "svc/deploy", "100% <b>sure</b>", "o'brien \"the\" #1", "..")
ANOMALOUS_ODD = ODD_USERS[:3]


def write_odd_run(output: Path, *, users: int = 40, seed: int = 7) -> FixtureRun:
    """A published run like serve_fixtures.write_run, with the first users renamed to ODD_USERS."""
    plain = user_names(users)
    renames = dict(zip(plain, ODD_USERS, strict=False))
    anomalous = [plain[i] for i in range(len(ANOMALOUS_ODD))] + ["mallory"]
    frame = feature_frame(users, anomalous, seed)
    frame["user"] = frame["user"].map(lambda name: renames.get(name, name))
    report = build_report(frame, RUN_ID)
    publisher = RunPublisher(output)
    staging = publisher.prepare(RUN_ID)
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), staging / TRAINING_DATA,
                        partition_cols=["is_anomaly"])
    (staging / REPORT_FILE).write_text(report_json(report))
    publisher.commit(staging)
    return FixtureRun(output=output, run_dir=staging, report=report, frame=frame)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> FixtureRun:
    return write_odd_run(tmp_path_factory.mktemp("web") / "out")


@pytest.fixture(scope="module")
def client(run: FixtureRun) -> Iterator[httpx.Client]:
    with serving(create_app(run.output)) as url, httpx.Client(base_url=url) as http:
        yield http


def flagged(run: FixtureRun) -> list[dict[str, object]]:
    rows = run.frame[run.frame["is_anomaly"] == 1].to_dict("records")
    return sorted(rows, key=lambda row: (-row["anomaly_score"], row["user"]))


def text_of(html: str) -> str:
    """The page's text, tags dropped and entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_fixture_has_the_odd_users_and_flags_some_of_them(run):
    assert set(ODD_USERS) <= set(run.frame["user"])
    assert {row["user"] for row in flagged(run)} >= set(ANOMALOUS_ODD)


def test_index_shows_the_run(client, run):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == SERVED_CSP
    text = text_of(response.text)
    report, meta = run.report, run.report.run
    assert f"Run {RUN_ID}" in text
    when = datetime.fromisoformat(meta.generated_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"When {when}" in text
    assert f"Engine {meta.engine}" in text
    assert f"Records read {meta.records_read:,}" in text
    assert f"Valid {meta.records_valid:,}" in text
    assert f"Quarantined {meta.records_quarantined:,}" in text
    assert f"Users {report.total_users:,}" in text
    assert f"Anomalous {report.anomalous_users:,} ({report.anomaly_rate:.1%})" in text
    assert f"Detector {meta.detector.algorithm}, threshold {meta.detector.threshold:.3f}" in text


def test_index_lists_every_anomalous_user_in_score_order_with_links_that_open_their_page(client, run):
    html = client.get("/").text
    links = re.findall(r'<a class="user" href="([^"]+)">([^<]+)</a>', html)
    expected = flagged(run)
    assert [unescape(name) for _, name in links] == [row["user"] for row in expected]
    for (href, name), row in zip(links, expected, strict=True):
        assert f"{row['anomaly_score']:.3f}" in html
        page = client.get(unescape(href))
        assert page.status_code == 200, name
        assert f"Anomaly score {row['anomaly_score']:.3f}" in text_of(page.text)


def test_index_names_each_anomalous_users_top_deviations_as_the_assistant_computes_them(client, run):
    snapshot = load_snapshot(run.run_dir)
    rows = re.findall(r"<tr><td class=\"num muted\">\d+</td>(.*?)</tr>", client.get("/").text, flags=re.S)
    assert len(rows) == run.report.anomalous_users
    for row_html, row in zip(rows, flagged(run), strict=True):
        expected = deviations(snapshot.row(str(row["user"])), snapshot.population)
        assert expected, row["user"]
        shown = re.findall(r"<code>([a-z_]+)</code>", row_html)
        assert shown == [d.feature for d in expected]
        for d in expected:
            assert f"{d.z_score:+.1f}σ" in row_html


def test_the_histogram_counts_every_user_by_score_and_flag_and_marks_the_threshold(client, run):
    html = client.get("/").text
    bars = re.findall(r'<rect class="bar (normal|flagged)"[^>]*><title>score ([\d.]+)–([\d.]+): ([\d,]+) users '
                      r"\(([\d,]+) flagged\)</title>", html)
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for _kind, low, high, users, flagged_users in bars:
        seen[(low, high)] = (int(users.replace(",", "")), int(flagged_users.replace(",", "")))
    edges = np.linspace(0, 1, 21)
    scores, flags = run.frame["anomaly_score"].to_numpy(), run.frame["is_anomaly"].to_numpy()
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (scores >= low) & ((scores < high) if high < 1 else (scores <= high))
        expected = (int(inside.sum()), int((inside & (flags == 1)).sum()))
        assert seen.get((f"{low:.2f}", f"{high:.2f}"), (0, 0)) == expected, (low, high)
    assert sum(users for users, _ in seen.values()) == len(run.frame)
    threshold = run.report.run.detector.threshold
    assert f"threshold {threshold:.3f}</text>" in html
    x = re.search(r'<line class="threshold" x1="([\d.]+)"', html)
    assert x is not None and float(x.group(1)) == pytest.approx(44 + (640 - 44 - 12) * threshold, abs=0.1)


def test_index_shows_seconds_per_stage_and_quarantine_per_reason(client, run):
    html = client.get("/").text
    text = text_of(html)
    stages = run.report.run.stage_seconds.model_dump()
    for stage, seconds in stages.items():
        if stage != "total":
            assert f"<title>{stage}: {seconds:,.2f} s</title>" in html
    assert f"total {stages['total']:,.2f} s" in text
    for reason, count in run.report.run.quarantined_by_reason.items():
        assert f"{reason} {count:,}" in text
    assert f"total {run.report.run.records_quarantined:,}" in text


def test_limit_lists_fewer_and_says_how_many_more(client, run):
    html = client.get("/", params={"limit": 1}).text
    assert len(re.findall(r'<a class="user"', html)) == 1
    assert f"and {run.report.anomalous_users - 1:,} more anomalous users not listed" in text_of(html)
    assert client.get("/", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize("user", ODD_USERS)
def test_every_odd_id_has_a_page_at_its_link(client, run, user):
    href = Links.served().user(user)
    assert href is not None
    response = client.get(href)
    assert response.status_code == 200, href
    html = response.text
    row = run.frame[run.frame["user"] == user].iloc[0]
    assert f"<h1 class=\"user-heading\">{escape(user)} " in html
    text = text_of(html)
    assert f"Anomaly score {row['anomaly_score']:.3f}" in text
    rank = int((run.frame["anomaly_score"] > row["anomaly_score"]).sum()) + 1
    assert f"rank {rank} of {len(run.frame)} users" in text
    assert ("anomalous" if row["is_anomaly"] == 1 else "not anomalous") in text
    for name in FEATURE_COLUMNS:
        assert f">{name}</code>" in html
    assert f"this user {row['anomaly_score']:.3f}" in html


def test_ids_are_percent_encoded_whole_in_links_and_escaped_in_text(client):
    assert Links.served().user("Zoë 🦊 ops") == "/users/Zo%C3%AB%20%F0%9F%A6%8A%20ops"
    assert Links.served().user("svc/deploy") == "/users?name=svc%2Fdeploy"
    assert Links.served("/sg/").user("..") == "/sg/users?name=.."
    html = client.get("/").text
    assert "<b>sure</b>" not in html and "100% &lt;b&gt;sure&lt;/b&gt;" in html
    assert "o&#39;brien &#34;the&#34; #1" in client.get(Links.served().user(ODD_USERS[3]) or "").text


def test_an_unknown_user_is_a_404_page_and_no_name_is_the_look_up_form(client):
    missing = client.get("/users/nobody%20here")
    assert missing.status_code == 404
    assert "There is no user nobody here in the training data" in text_of(missing.text)
    form = client.get("/users")
    assert form.status_code == 200 and 'name="name"' in form.text


def test_pages_load_only_their_own_stylesheet_and_icon(client):
    for path in ("/", "/users/mallory", "/users"):
        html = client.get(path).text
        references = re.findall(r'(?:href|src|action)="([^"]*)"', html)
        assert references, path
        assert all(ref.startswith(("/", "#")) for ref in references), (path, references)
        assert "<script" not in html
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset


def test_head_answers_like_get(client):
    for path in ("/", "/users/mallory", "/static/style.css"):
        head, get = client.head(path), client.get(path)
        assert (head.status_code, head.content) == (get.status_code, b""), path


def test_with_a_token_pages_need_it_and_static_files_do_not(run):
    with serving(create_app(run.output, token=TOKEN)) as url, httpx.Client(base_url=url) as http:
        assert http.get("/").status_code == 401
        assert http.get("/users/mallory").status_code == 401
        assert http.get("/users", params={"name": "mallory"}).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/", headers=auth).status_code == 200
        assert http.get("/users/mallory", headers=auth).status_code == 200
        assert http.get("/users/mallory", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/static/style.css").status_code == 200


def test_without_a_run_the_pages_say_why_with_503(tmp_path):
    with serving(create_app(tmp_path / "nothing-yet")) as url:
        for path in ("/", "/users/mallory"):
            response = httpx.get(url + path)
            assert response.status_code == 503
            assert "No training data loaded" in response.text and "no run has been published" in response.text


def test_the_page_shows_the_run_published_after_it(tmp_path):
    from serve_fixtures import write_run

    output = tmp_path / "out"
    with serving(create_app(output, reload_interval=0)) as url:
        assert httpx.get(url + "/").status_code == 503
        write_run(output, "20260106T000000Z-second")
        assert "20260106T000000Z-second" in httpx.get(url + "/").text


def test_an_id_of_200_characters_has_a_page(tmp_path):
    long_id = "x" * 200
    run = write_odd_run(tmp_path / "out")
    frame = run.frame.copy()
    frame.loc[frame["user"] == "mallory", "user"] = long_id
    output = tmp_path / "long"
    publisher = RunPublisher(output)
    staging = publisher.prepare(RUN_ID)
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), staging / TRAINING_DATA,
                        partition_cols=["is_anomaly"])
    (staging / REPORT_FILE).write_text(report_json(build_report(frame, RUN_ID)))
    publisher.commit(staging)
    with serving(create_app(output)) as url:
        assert httpx.get(url + "/").status_code == 200
        assert httpx.get(url + f"/users/{long_id}").status_code == 200
