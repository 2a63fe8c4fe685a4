"""``streamguard report DIR --html FILE``: the web view as one self-contained file, and the pieces it is drawn with."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel
from test_web_pages import ODD_USERS, flagged, text_of, write_odd_run

from streamguard.cli import main
from streamguard.serve.data import load_snapshot
from streamguard.web.render import STANDALONE_CSP, _environment, moment, number, standalone_html, z_text
from streamguard.web.svg import _nice_ceiling, histogram_svg
from streamguard.web.view import event_window, score_histogram


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return write_odd_run(tmp_path_factory.mktemp("web-report") / "out")


def report_file(run, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    target = tmp_path / "report.html"
    main(["report", str(run.output), "--html", str(target), *args])
    return target.read_text(encoding="utf-8"), capsys.readouterr().out


def test_report_html_writes_one_file_and_says_so_in_one_line(run, tmp_path, capsys):
    html, out = report_file(run, tmp_path, capsys)
    report = run.report
    assert out.count("\n") == 1
    assert out.startswith(f"wrote {tmp_path / 'report.html'} (")
    assert (f"run {report.run.run_id}, {report.anomalous_users} of {report.total_users} users anomalous, "
            f"{report.anomalous_users} listed") in out
    assert html.startswith("<!doctype html>")
    assert not list(tmp_path.glob(".*partial"))


def test_the_file_references_nothing_outside_itself(run, tmp_path, capsys):
    html, _ = report_file(run, tmp_path, capsys)
    assert f'<meta http-equiv="Content-Security-Policy" content="{STANDALONE_CSP}">' in unescape(html)
    assert "<style>" in html and "<link rel=\"stylesheet\"" not in html and "<script" not in html
    references = re.findall(r'(?:href|src|action)="([^"]*)"', html)
    assert references
    assert all(ref.startswith(("#", "data:")) for ref in references), references
    assert not re.search(r"url\(", html) and "@import" not in html
    assert "http://" not in html and "https://" not in html


def test_the_file_has_the_front_page_and_a_section_per_listed_anomalous_user(run, tmp_path, capsys):
    html, _ = report_file(run, tmp_path, capsys)
    text = text_of(html)
    assert f"Run {run.report.run.run_id}" in text
    assert f"Records read {run.report.run.records_read:,}" in text
    links = re.findall(r'<a class="user" href="#([^"]+)">([^<]+)</a>', html)
    assert [unescape(name) for _, name in links] == [row["user"] for row in flagged(run)]
    for anchor, name in links:
        section = re.search(rf'<section class="user-detail" id="{anchor}">(.*?)</section>', html, flags=re.S)
        assert section is not None, name
        assert f"{unescape(name)} anomalous" in text_of(section.group(1))
    assert set(ODD_USERS[:3]) <= {unescape(name) for _, name in links}


def test_top_limits_the_listed_users(run, tmp_path, capsys):
    html, out = report_file(run, tmp_path, capsys, "--top", "2")
    assert len(re.findall(r'<section class="user-detail"', html)) == 2
    assert f"and {run.report.anomalous_users - 2} more anomalous users not listed." in text_of(html)
    assert "2 listed" in out


def test_the_run_folder_and_its_link_give_the_same_file(run, tmp_path):
    main(["report", str(run.output), "--html", str(tmp_path / "a.html")])
    main(["report", str(run.run_dir), "--html", str(tmp_path / "b.html")])
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_without_html_it_prints_the_summary(run, capsys):
    main(["report", str(run.output)])
    out = capsys.readouterr().out
    assert f"{run.report.anomalous_users} of {run.report.total_users} users anomalous" in out
    assert "Top anomalies" in out


def test_a_folder_without_a_run_is_a_data_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "--html", str(tmp_path / "x.html")])
    assert exit_info.value.code == 30
    assert "anomaly_report.json" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_an_unwritable_target_is_an_output_error(run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(run.output), "--html", str(tmp_path / "missing-folder" / "x.html")])
    assert exit_info.value.code == 50
    assert "cannot write" in capsys.readouterr().err


def test_the_standalone_file_is_the_same_for_the_same_run(run):
    assert standalone_html(load_snapshot(run.run_dir)) == standalone_html(load_snapshot(run.run_dir))


def test_score_histogram_splits_flagged_users_and_keeps_a_score_of_one():
    scores = np.array([0.0, 0.04, 0.05, 0.5, 0.97, 1.0])
    flags = np.array([0, 0, 0, 0, 1, 1])
    hist = score_histogram(scores, flags, threshold=0.9, bins=20)
    assert len(hist.edges) == 21 and hist.edges[0] == 0.0 and hist.edges[-1] == 1.0
    assert hist.normal[0] == 2 and hist.normal[1] == 1 and hist.normal[10] == 1
    assert hist.flagged[19] == 2 and sum(hist.flagged) == 2
    assert hist.users == 6


def test_histogram_bars_scale_to_the_tallest_bin_and_small_bins_stay_visible():
    hist = score_histogram(np.array([0.1] * 1000 + [0.95]), np.array([0] * 1000 + [1]), threshold=0.9)
    svg = str(histogram_svg(hist, marker=0.95))
    heights = [float(h) for h in re.findall(r'<rect class="bar [a-z]+"[^>]*height="([\d.]+)"', svg)]
    assert heights == [180.0, 1.5]  # plot height 180 for 1,000 users; one user still 1.5 units
    assert "this user 0.950" in svg and "threshold 0.900" in svg
    assert svg.startswith("<svg ") and 'role="img"' in svg


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20),
                                                (101, 200), (999, 1000)])
def test_nice_ceiling(value, ceiling):
    assert _nice_ceiling(value) == ceiling


def test_event_window_shows_a_window_field_when_the_run_has_one():
    class Window(BaseModel):
        min_event_ms: int
        max_event_ms: int

    class WithWindow(BaseModel):
        run_id: str
        event_window: Window | None

    class Without(BaseModel):
        run_id: str

    with_window = WithWindow(run_id="r", event_window=Window(min_event_ms=1767225600000, max_event_ms=1767312000123))
    assert event_window(with_window) == (("min event ms", "2026-01-01T00:00:00.000Z"),
                                         ("max event ms", "2026-01-02T00:00:00.123Z"))
    assert event_window(WithWindow(run_id="r", event_window=None)) == ()
    assert event_window(Without(run_id="r")) == ()


def test_figures_are_written_as_the_pages_promise():
    assert (number(20120), number(2572.6), number(0.0453), number(1.0)) == ("20,120", "2,572.6", "0.045", "1")
    assert (z_text(3.24), z_text(-0.04), z_text(0.04), z_text(None)) == ("+3.2σ", "0.0σ", "0.0σ", "–")
    assert moment("2026-01-05T15:02:53+01:00") == "2026-01-05 14:02:53 UTC"
    assert moment("not a time") == "not a time"
    html = _environment().from_string("{{ 1.0|score }} {{ 0.4991|score }}").render()
    assert html == "1.000 0.499"
