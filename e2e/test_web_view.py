"""The web view in a real browser: Debian's chromium, headless, driven by Selenium through Debian's chromedriver.

A topic is seeded (plus a few events of users with awkward ids), the pipeline runs on it with the default engine,
``streamguard serve`` serves the result, and the browser opens the pages: no console errors, the anomalous users
the run flagged, a user page for an odd id, and a screenshot saved as a test artifact. The same for the file
``streamguard report --html`` writes, opened from disk.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``make system-deps``; ``STREAMGUARD_CHROMIUM`` and
``STREAMGUARD_CHROMEDRIVER`` name others). Without them the tests skip, and fail when ``CI=true``. Screenshots
go to pytest's temporary folder (the path is printed); ``STREAMGUARD_WEB_SCREENSHOT=docs/web-view.png`` also
copies the front page's there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from e2e.conftest import unique_topic
from streamguard.config import RunConfig
from streamguard.export import TRAINING_DATA
from streamguard.pipeline import run_pipeline
from streamguard.serve.process import ApiServer
from streamguard.synth.generator import generate_messages
from streamguard.synth.seed import seed_topic
from streamguard.synth.truth import GroundTruth, load_truth
from streamguard.web.render import Links

EVENTS = 20_000
INVALID_RATE = 0.01  # so the page has a quarantine to show
PARTITIONS = 3
# Ids the pipeline accepts that a URL trips over: spaces and emoji in a path segment, and a '/'.
ODD_USERS = ("Zoë 🦊 night shift", "svc/deploy eu-west")
ODD_EVENTS_EACH = 60
CHROMIUM = Path(os.environ.get("STREAMGUARD_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("STREAMGUARD_CHROMEDRIVER", "/usr/bin/chromedriver"))
PAGE_TIMEOUT_S = 30


def _require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    message = (f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver with "
               "'make system-deps'")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _browser_installed() -> None:
    """Skip (or fail on CI) before a broker is started for nothing: session scope and autouse run it first."""
    _require_browser()


@dataclass(frozen=True)
class Run:
    output: Path
    flagged: list[str]  # most anomalous first, as the training data has them
    quarantined: int
    truth: GroundTruth


def _odd_records(seed: int) -> list[tuple[int, bytes, int | None]]:
    """Valid events of ODD_USERS: generated events, renamed and given fresh ids."""
    records = []
    messages = generate_messages(ODD_EVENTS_EACH * len(ODD_USERS), seed=seed, users=5, anomalous_users=0,
                                 workers=0)
    for i, (_key, value, timestamp_ms) in enumerate(messages):
        event = json.loads(value)
        event["user"] = ODD_USERS[i % len(ODD_USERS)]
        event["event_id"] = f"evt_{uuid.uuid4().hex}"
        records.append((i % PARTITIONS, json.dumps(event, ensure_ascii=False).encode(), timestamp_ms))
    return records


@pytest.fixture(scope="module")
def run(bootstrap: str, produce: Callable[..., None], tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("web-view")
    topic = unique_topic("web-view")
    seeded = seed_topic(bootstrap, topic, events=EVENTS, partitions=PARTITIONS, seed=7, users=40,
                        anomalous_users=4, invalid_rate=INVALID_RATE, truth_path=base / "truth.json",
                        progress=False)
    odd = _odd_records(seed=11)
    produce(topic, odd, PARTITIONS)
    result = run_pipeline(RunConfig(topic=topic, bootstrap=bootstrap, output=base / "out",
                                    max_events=EVENTS + len(odd)), progress=False)
    rows = ds.dataset(result.run_dir / TRAINING_DATA, format="parquet", partitioning="hive").to_table().to_pylist()
    assert set(ODD_USERS) <= {row["user"] for row in rows}
    flagged = [row["user"] for row in sorted((row for row in rows if row["is_anomaly"] == 1),
                                             key=lambda row: (-row["anomaly_score"], row["user"]))]
    return Run(output=base / "out", flagged=flagged, quarantined=result.report.run.records_quarantined,
               truth=load_truth(seeded.truth_path))


@pytest.fixture(scope="module")
def api(run: Run) -> Iterator[str]:
    with ApiServer(run.output).start() as server:
        yield server.url


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-view-artifacts")


@pytest.fixture(scope="module")
def browser(artifacts: Path) -> Iterator[Any]:
    from selenium import webdriver  # noqa: PLC0415 - only this test needs it
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--hide-scrollbars", f"--user-data-dir={artifacts / 'profile'}",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(artifacts / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, url: str) -> list[dict[str, Any]]:
    """Load ``url`` and return what the page wrote to the console while loading (errors and warnings)."""
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(url)
    return console_problems(browser)


def console_problems(browser: Any) -> list[dict[str, Any]]:
    """Errors and warnings on the console since the last look (failed loads and CSP refusals among them)."""
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def text(browser: Any, css: str) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return browser.find_element(By.CSS_SELECTOR, css).text


def full_page_screenshot(browser: Any, path: Path) -> Path:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(900, int(height)))
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(1280, 900)
    return path


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, path


def test_the_front_page_shows_the_runs_anomalous_users_without_console_errors(api, run, browser, artifacts):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    console = open_page(browser, api + "/")
    assert console == []
    assert "Run " in browser.title
    listed = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "table.anomalies a.user")]
    assert listed == run.flagged
    injected = set(run.truth.anomalous_user_names)
    assert injected & set(listed), f"none of the injected anomalous users {sorted(injected)} is listed"
    # The stylesheet arrived and applied (a blocked or missing one leaves the header without its band).
    masthead = browser.find_element(By.CSS_SELECTOR, ".masthead")
    assert masthead.value_of_css_property("background-color") == "rgba(244, 246, 249, 1)"
    histogram = browser.find_element(By.CSS_SELECTOR, "svg.histogram")
    assert histogram.size["width"] > 300 and histogram.size["height"] > 100
    assert browser.find_elements(By.CSS_SELECTOR, "svg.histogram rect.bar.flagged")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.histogram line.threshold")
    stages = browser.find_elements(By.CSS_SELECTOR, "svg.bars rect.bar.stage")
    assert len(stages) == 7 and all(bar.size["width"] >= 1 for bar in stages)
    quarantined = browser.find_element(By.CSS_SELECTOR, "table.quarantine tfoot td.num").text
    assert int(quarantined.replace(",", "")) == run.quarantined > 0
    shot = full_page_screenshot(browser, artifacts / "web-view.png")
    assert_png(shot)
    print(f"screenshot: {shot}")
    if os.environ.get("STREAMGUARD_WEB_SCREENSHOT"):  # e.g. docs/web-view.png, to refresh the committed one
        shutil.copyfile(shot, os.environ["STREAMGUARD_WEB_SCREENSHOT"])


def test_a_listed_user_opens_from_its_link(api, run, browser):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    open_page(browser, api + "/")
    browser.find_element(By.CSS_SELECTOR, "table.anomalies a.user").click()
    assert text(browser, "h1.user-heading").startswith(run.flagged[0])
    assert "anomalous" in text(browser, ".badge")
    assert console_problems(browser) == []


@pytest.mark.parametrize("user", ODD_USERS)
def test_the_page_of_a_user_with_an_odd_id_opens_by_link_and_by_the_look_up_form(api, browser, artifacts, user):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    link = Links.served().user(user)
    assert link is not None
    assert open_page(browser, api + link) == []
    assert text(browser, "h1.user-heading").startswith(user)
    assert browser.find_elements(By.CSS_SELECTOR, "table.features tbody tr")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.histogram line.marker")

    open_page(browser, api + "/")
    field = browser.find_element(By.ID, "lookup-name")
    field.send_keys(user)
    field.submit()
    assert text(browser, "h1.user-heading").startswith(user)
    assert console_problems(browser) == []
    assert_png(full_page_screenshot(browser, artifacts / f"web-view-user-{ODD_USERS.index(user)}.png"))


def test_the_report_file_opens_from_disk_without_console_errors(run, browser, artifacts):
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    target = artifacts / "report.html"
    done = subprocess.run([sys.executable, "-m", "streamguard", "report", str(run.output), "--html", str(target)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert open_page(browser, target.as_uri()) == []
    listed = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "table.anomalies a.user")]
    assert listed == run.flagged
    masthead = browser.find_element(By.CSS_SELECTOR, ".masthead")
    assert masthead.value_of_css_property("background-color") == "rgba(244, 246, 249, 1)"
    first = browser.find_element(By.CSS_SELECTOR, "table.anomalies a.user")
    first.click()
    assert browser.current_url.endswith(first.get_attribute("href").rsplit("#", 1)[-1])
    assert_png(full_page_screenshot(browser, artifacts / "report.png"))
