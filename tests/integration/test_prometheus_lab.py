"""The lab's real Prometheus (Debian's package, started by lab.sh) and the analysis against it.

Prometheus is shared with everyone using the lab: these tests never stop or reconfigure it. The
fail-closed case points an analysis at a closed port instead.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from support.http_server import closed_port_url

from patchpipe.fleet import load_fleet
from patchpipe.verify.analysis import analyze, analyze_image
from patchpipe.verify.prometheus import PrometheusClient, PrometheusNoData, PrometheusQueryError

PROMETHEUS = "http://127.0.0.1:9090"
STAGING = "demo-web-staging"


@pytest.fixture(scope="module")
def prometheus(lab) -> Iterator[PrometheusClient]:
    try:
        ready = requests.get(f"{PROMETHEUS}/-/ready", timeout=5).status_code
    except requests.RequestException as exc:
        ready = type(exc).__name__
    if ready != 200:
        pytest.fail(f"the lab's Prometheus does not answer {PROMETHEUS}/-/ready ({ready}): run `make lab-up`",
                    pytrace=False)
    with PrometheusClient(PROMETHEUS) as client:
        yield client


@pytest.fixture(scope="module")
def fleet(lab):
    return load_fleet(lab.fleet_file)


@contextmanager
def traffic(url: str, per_second: float = 20) -> Iterator[list[int]]:
    """Requests to ``url`` at about ``per_second`` from a background thread; yields their statuses."""
    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        with requests.Session() as session:
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    statuses.append(session.get(url, timeout=5).status_code)
                except requests.RequestException:
                    statuses.append(0)
                next_at += 1 / per_second
                stop.wait(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=run, name="traffic", daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=10)


def build_id_of(url: str) -> str:
    return requests.get(f"{url}/version", timeout=5).json()["build_id"]


# --- the lab's Prometheus ------------------------------------------------------------------------


def test_prometheus_scrapes_every_lab_service_with_the_fleet_labels(lab, prometheus, fleet) -> None:
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", params={"state": "active"}, timeout=5).json()
    scraped = {t["labels"]["service"]: t for t in targets["data"]["activeTargets"]}
    assert set(scraped) == set(lab.services)
    for service in lab.services.values():
        target = scraped[service.name]
        assert target["scrapeUrl"] == f"{service.url}/metrics"
        assert (target["labels"]["image"], target["labels"]["environment"]) == (service.fleet_image, service.env)
        assert target["scrapeInterval"] == "2s"
        assert target["health"] == "up", target.get("lastError")
        # The fleet manifest deploys the same service at the same URL, so queries select the right series.
        deployed = fleet.image(service.fleet_image).deploy[service.env]
        assert (deployed.swarm_service, deployed.url) == (service.name, service.url)
        assert prometheus.query(f'up{{service="{service.name}"}}', name="up") == 1


def test_lab_status_reports_prometheus(lab, prometheus) -> None:
    result = subprocess.run(["bash", str(lab.script), "status"], capture_output=True, text=True, timeout=120)
    line = next((line for line in result.stdout.splitlines() if line.startswith("prometheus 127.0.0.1:9090:")), "")
    assert line.startswith("prometheus 127.0.0.1:9090: ready (pid "), result.stdout
    assert line.endswith(f", {len(lab.services)}/{len(lab.services)} services scraped")


def test_the_real_prometheus_rejects_a_broken_query_with_its_reason(prometheus) -> None:
    with pytest.raises(PrometheusQueryError, match=r"Prometheus rejected the query for m: bad_data: .*parse error"):
        prometheus.query("sum(rate(http_requests_total[30s]", name="m")
    with pytest.raises(PrometheusNoData, match="no data for m .*is nobody scraped"):
        prometheus.query('up{service="nobody"}', name="m", service="nobody")


# --- the default metrics and the analysis on staging ---------------------------------------------


def test_the_default_queries_return_numbers_after_traffic(lab, prometheus, fleet) -> None:
    service = lab.services[STAGING]
    settings = fleet.analysis_for("demo-web")
    with traffic(f"{service.url}/") as statuses:
        time.sleep(15)
    assert len(statuses) >= 200 and statuses.count(200) == len(statuses), set(statuses)
    time.sleep(3)  # a scrape (every 2 s) after the last request
    values = {}
    for metric in settings.active_metrics:
        query = metric.render(service=STAGING, image="demo-web", environment="staging", interval=settings.query_range)
        values[metric.name] = prometheus.query(query, name=metric.name, service=STAGING)
    assert 99 <= values["request-success-rate"] <= 100
    assert 0 < values["request-duration"] <= 500
    served = prometheus.query(f'sum(increase(http_requests_total{{service="{STAGING}", path="/"}}[30s]))')
    assert served >= 150  # our traffic is what the queries saw


def test_an_analysis_of_staging_passes(lab, prometheus, fleet) -> None:
    service = lab.services[STAGING]
    with traffic(f"{service.url}/"):
        result = analyze_image(fleet, "demo-web", "staging", build_id_of(service.url))
    assert result.passed, result.reason
    assert (result.iterations_run, result.failed_iterations) == (6, 0)
    assert 29 <= result.seconds < 60
    series = result.series()
    assert list(series) == ["healthz", "home", "version", "request-success-rate", "request-duration"]
    assert all(99 <= value <= 100 for _, value, _ in series["request-success-rate"])
    assert all(0 < value <= 500 for _, value, _ in series["request-duration"])
    assert result.reason.startswith(f"analysis of staging ({service.url}) passed: 6 iterations over ")


def test_an_analysis_with_prometheus_unreachable_fails_closed(lab, fleet) -> None:
    service = lab.services[STAGING]
    url = closed_port_url()
    settings = fleet.analysis_for("demo-web").model_copy(
        update={"prometheus_url": url, "interval_seconds": 1, "iterations": 3})
    result = analyze(service.url, "staging", fleet.image("demo-web").smoke, settings, service=STAGING,
                     image="demo-web", version_path="/version", build_id=build_id_of(service.url))
    assert (result.passed, result.iterations_run, result.failed_iterations) == (False, 2, 2)
    assert result.failing is not None and result.failing.check == "request-success-rate"
    assert f"Prometheus at {url} is unreachable" in result.reason
    assert "the analysis fails closed" in result.reason and result.reason.endswith("roll back")
    # The service itself was fine: only what could not be measured failed.
    assert all(obs.passed for obs in result.observations if obs.kind != "metric")


def test_an_analysis_of_a_service_prometheus_does_not_scrape_fails_closed(lab, fleet) -> None:
    service = lab.services[STAGING]
    settings = fleet.analysis_for("demo-web").model_copy(update={"interval_seconds": 1, "iterations": 2})
    result = analyze(service.url, "staging", fleet.image("demo-web").smoke, settings, service="not-scraped",
                     image="demo-web")
    assert not result.passed and result.failing is not None
    assert result.failing.detail.startswith("no data for request-success-rate (query sum(rate(http_requests_total"
                                            '{service="not-scraped"')
    assert "is not-scraped scraped, and did it serve requests? The analysis fails closed." in result.failing.detail
