"""The post-deploy analysis loop, the Prometheus client and the smoke checks' latency bound.

A fake clock makes the loop instant. A tiny local HTTP server plays the Prometheus HTTP API with
real response shapes (recorded from Debian's prometheus 2.42); another serves the deployed service
(/healthz, /, /version) through tests/support/http_server.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from support.http_server import LocalHTTPServer, closed_port_url, serve_directory

from patchpipe.errors import PatchpipeError
from patchpipe.fleet import Analysis, MetricCheck, SmokeCheck, parse_fleet
from patchpipe.fleet.models import DEFAULT_METRICS, promql_duration
from patchpipe.verify.analysis import AnalysisFailed, analyze, analyze_image, service_name, traffic_paths
from patchpipe.verify.prometheus import (
    PrometheusClient,
    PrometheusNoData,
    PrometheusQueryError,
    PrometheusUnreachable,
)
from patchpipe.verify.smoke import run_check
from patchpipe.verify.traffic import Traffic

BUILD_ID = "1.0-patch.20261124.1"
SERVICE = "demo-web-staging"
SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
TS = 1732850000.123


# --- a fake clock --------------------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return TS + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- a fake Prometheus: the real API's response shapes --------------------------------------------


def vector(value: str) -> tuple[int, dict]:
    return 200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [TS, value]}]}}


def scalar(value: str) -> tuple[int, dict]:
    return 200, {"status": "success", "data": {"resultType": "scalar", "result": [TS, value]}}


EMPTY = (200, {"status": "success", "data": {"resultType": "vector", "result": []}})
PARSE_ERROR = (400, {"status": "error", "errorType": "bad_data",
                     "error": 'invalid parameter "query": 1:16: parse error: unclosed left parenthesis'})
TWO_SERIES = (200, {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"service": "a"}, "value": [TS, "1"]}, {"metric": {"service": "b"}, "value": [TS, "1"]}]}})
MATRIX = (200, {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {}, "values": [[TS, "1"], [TS + 2, "1"]]}]}})


class FakePrometheus:
    """Answers GET /api/v1/query. ``script(key, *answers)``: queries containing ``key`` get the answers
    in turn, the last one repeated. Unscripted queries get a healthy value."""

    DEFAULTS = {"http_requests_total": vector("99.9"), "histogram_quantile": vector("42.5")}

    def __init__(self) -> None:
        self.scripts: dict[str, list[tuple[int, dict]]] = {}
        self.queries: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def script(self, key: str, *answers: tuple[int, dict]) -> None:
        self.scripts[key] = list(answers)

    def answer(self, query: str) -> tuple[int, dict]:
        for key, answers in self.scripts.items():
            if key in query:
                return answers.pop(0) if len(answers) > 1 else answers[0]
        for key, answer in self.DEFAULTS.items():
            if key in query:
                return answer
        return EMPTY

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/api/v1/query":
                    status, body = 404, None
                else:
                    query = parse_qs(parts.query)["query"][0]
                    fake.queries.append(query)
                    status, body = fake.answer(query)
                payload = json.dumps(body).encode() if body is not None else b"404 page not found\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if body is not None else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus() as fake:
        yield fake


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LocalHTTPServer]:
    """The deployed service: /healthz says ok, / serves a page, /version reports BUILD_ID."""
    (tmp_path / "healthz").write_text("ok\n")
    (tmp_path / "index").write_text("<h1>demo-web</h1>\n")
    (tmp_path / "version").write_text(json.dumps({"app": "demo-web", "build_id": BUILD_ID}))
    with serve_directory(tmp_path) as server:
        yield server


CHECKS = [SmokeCheck(name="healthz", path="/healthz", body_pattern="^ok"), SmokeCheck(name="home", path="/index")]


def run(service: LocalHTTPServer, prometheus: FakePrometheus | str, settings: Analysis | None = None, *,
        checks: list[SmokeCheck] = CHECKS, clock: FakeClock | None = None, build_id: str | None = BUILD_ID):
    url = prometheus if isinstance(prometheus, str) else prometheus.url
    # No background traffic: these tests count the analysis' own requests (test_traffic_* below sends some).
    settings = (settings or Analysis()).model_copy(update={"prometheus_url": url, "traffic_per_second": 0})
    return analyze(service.base_url, "staging", checks, settings, service=SERVICE, image="demo-web",
                   version_path="/version", build_id=build_id, clock=clock or FakeClock())


# --- the loop ------------------------------------------------------------------------------------


def test_a_healthy_deploy_passes_after_every_iteration(service, prometheus) -> None:
    clock = FakeClock()
    result = run(service, prometheus, clock=clock)

    assert (result.passed, result.iterations_run, result.failed_iterations, result.failing) == (True, 6, 0, None)
    assert clock.sleeps == [5] * 6  # the first check an interval after the start: a 30 s window
    assert result.seconds == 30
    assert result.reason == (
        f"analysis of staging ({service.base_url}) passed: 6 iterations over 30 s, 0 failed (failure_threshold 2); "
        "last request-success-rate 99.9 (>= 99), request-duration 42.5 (<= 500)")
    assert result.series()[SUCCESS_RATE] == [(i, 99.9, True) for i in range(1, 7)]
    assert [check for check, _ in result.series().items()] == ["healthz", "home", "version", SUCCESS_RATE, DURATION]
    assert result.series()["version"][0] == (1, BUILD_ID, True)
    assert [obs.at_seconds for obs in result.observations if obs.check == "healthz"] == [5, 10, 15, 20, 25, 30]
    assert service.requested_paths().count("healthz") == 6  # one attempt per check per iteration
    assert result.started_at == "2024-11-29T03:30:00+00:00"


def test_queries_get_the_service_environment_and_range_filled_in(service, prometheus) -> None:
    run(service, prometheus, Analysis(iterations=1, failure_threshold=1))
    assert prometheus.queries == [
        'sum(rate(http_requests_total{service="demo-web-staging", environment="staging", path!~"/metrics|/healthz", '
        'code!~"5.."}[30s])) / sum(rate(http_requests_total{service="demo-web-staging", environment="staging", '
        'path!~"/metrics|/healthz"}[30s])) * 100',
        'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="demo-web-staging", '
        'environment="staging"}[30s]))) * 1000',
    ]


def test_failed_iterations_reaching_the_threshold_stop_the_analysis(service, prometheus) -> None:
    prometheus.script("http_requests_total", vector("100"), vector("95.2"), vector("100"), vector("97"), vector("100"))
    clock = FakeClock()
    result = run(service, prometheus, clock=clock)

    assert (result.passed, result.iterations_run, result.failed_iterations) == (False, 4, 2)
    assert len(clock.sleeps) == 4  # stopped early: iterations 5 and 6 never ran
    failing = result.failing
    assert failing is not None
    assert (failing.check, failing.value, failing.bound, failing.iteration) == (SUCCESS_RATE, 97.0, ">= 99", 4)
    assert result.reason == (
        f"analysis of staging ({service.base_url}) failed at iteration 4/6: request-success-rate = 97, bound >= 99: "
        "97 < min 99; 2 failed iteration(s) reached failure_threshold 2: roll back")
    assert [(i, ok) for i, _, ok in result.series()[SUCCESS_RATE]] == [(1, True), (2, False), (3, True), (4, False)]
    with pytest.raises(AnalysisFailed, match="failed at iteration 4/6") as raised:
        result.raise_for_failure()
    assert raised.value.result is result and isinstance(raised.value, PatchpipeError)


def test_fewer_failed_iterations_than_the_threshold_pass(service, prometheus) -> None:
    prometheus.script("histogram_quantile", vector("42"), vector("730"), vector("42"))
    result = run(service, prometheus)
    assert (result.passed, result.failed_iterations, result.iterations_run) == (True, 1, 6)
    assert result.series()[DURATION][1] == (2, 730.0, False)
    assert result.raise_for_failure() is result


def test_a_threshold_of_one_fails_on_the_first_failed_iteration(service, prometheus) -> None:
    prometheus.script("histogram_quantile", vector("501"))
    result = run(service, prometheus, Analysis(failure_threshold=1))
    assert (result.passed, result.iterations_run) == (False, 1)
    assert "request-duration = 501, bound <= 500: 501 > max 500" in result.reason


def test_a_failing_smoke_check_fails_the_iteration(service, prometheus) -> None:
    service.respond_with("healthz", 503)
    result = run(service, prometheus)
    assert (result.passed, result.iterations_run) == (False, 2)
    assert result.failing is not None
    assert (result.failing.check, result.failing.kind, result.failing.detail) == ("healthz", "smoke", "status 503, expected 200")
    assert "healthz = " in result.reason and "bound status 200, body ~ '^ok': status 503, expected 200" in result.reason


def test_several_failing_checks_are_all_named(service, prometheus) -> None:
    service.respond_with("index", 500)
    prometheus.script("http_requests_total", vector("50"))
    result = run(service, prometheus, Analysis(failure_threshold=1))
    assert result.failing is not None and result.failing.check == "home"
    assert result.reason.endswith("(also failing: request-success-rate); 1 failed iteration(s) reached "
                                  "failure_threshold 1: roll back")


def test_a_service_that_does_not_answer_has_no_value(prometheus) -> None:
    with serve_directory(Path(__file__).parent) as stopped:
        pass  # started and stopped: its port is closed now
    result = analyze(stopped.base_url, "staging", CHECKS[:1], Analysis(prometheus_url=prometheus.url, failure_threshold=1,
                                                                       traffic_per_second=0),
                     service=SERVICE, image="demo-web", clock=FakeClock())
    assert result.failing is not None
    assert (result.failing.check, result.failing.value) == ("healthz", None)
    assert result.failing.detail.startswith("no answer: ConnectionError")


def test_the_running_build_must_be_the_expected_one(service, prometheus) -> None:
    result = run(service, prometheus, build_id="1.0-patch.20261124.2")
    assert result.failing is not None
    assert (result.failing.check, result.failing.value, result.failing.bound) == (
        "version", None, "build_id == 1.0-patch.20261124.2")
    assert result.failing.detail == f"reports build {BUILD_ID!r}, expected '1.0-patch.20261124.2'"


def test_without_a_build_id_there_is_no_version_check(service, prometheus) -> None:
    result = run(service, prometheus, build_id=None)
    assert "version" not in result.series() and "version" not in service.requested_paths()


def test_a_smoke_latency_bound_is_judged(service, prometheus) -> None:
    slow = [SmokeCheck(name="healthz", path="/healthz", max_latency_ms=0.001)]
    result = run(service, prometheus, Analysis(failure_threshold=1), checks=slow)
    assert result.failing is not None
    assert result.failing.bound == "status 200, <= 0.001 ms"
    assert result.failing.detail.startswith("took ") and result.failing.detail.endswith(" ms, more than max_latency_ms 0.001")
    assert isinstance(result.failing.value, float) and result.failing.value > 0.001

    fast = [SmokeCheck(name="healthz", path="/healthz", max_latency_ms=5000)]
    assert run(service, prometheus, checks=fast).passed


# --- failing closed ------------------------------------------------------------------------------


def test_prometheus_unreachable_fails_closed(service) -> None:
    url = closed_port_url()
    result = run(service, url)
    assert (result.passed, result.iterations_run) == (False, 2)
    assert result.failing is not None and (result.failing.check, result.failing.value) == (SUCCESS_RATE, None)
    assert f"Prometheus at {url} is unreachable: ConnectionError" in result.reason
    assert "the analysis fails closed" in result.reason
    # Every metric is reported, the smoke checks still ran and passed.
    last = [obs for obs in result.observations if obs.iteration == 2]
    assert [(obs.check, obs.passed) for obs in last] == [
        ("healthz", True), ("home", True), ("version", True), (SUCCESS_RATE, False), (DURATION, False)]


@pytest.mark.parametrize(("answer", "why"), [
    (EMPTY, "the query matched no series"),
    (vector("NaN"), "the value is NaN (e.g. 0/0: no requests in the range)"),
    (scalar("NaN"), "the value is NaN (e.g. 0/0: no requests in the range)"),
])
def test_no_data_fails_closed(service, prometheus, answer, why) -> None:
    prometheus.script("http_requests_total", answer)
    result = run(service, prometheus)
    assert not result.passed and result.failing is not None
    assert result.failing.detail == (
        f"no data for request-success-rate (query {prometheus.queries[-2]}): {why}; "
        f"is {SERVICE} scraped, and did it serve requests? The analysis fails closed.")


def test_a_rejected_query_fails_closed(service, prometheus) -> None:
    prometheus.script("histogram_quantile", PARSE_ERROR)
    result = run(service, prometheus)
    assert result.failing is not None and result.failing.check == DURATION
    assert result.failing.detail.startswith(
        'Prometheus rejected the query for request-duration: bad_data: invalid parameter "query": 1:16: parse error: '
        "unclosed left parenthesis (HTTP 400, query histogram_quantile(0.99")


def test_without_metrics_no_prometheus_is_needed(service) -> None:
    off = Analysis(metrics=[MetricCheck(name=m.name, enabled=False) for m in DEFAULT_METRICS])
    result = run(service, closed_port_url(), off)
    assert result.passed
    assert list(result.series()) == ["healthz", "home", "version"]


# --- settings ------------------------------------------------------------------------------------


def test_an_image_metric_overrides_the_default_of_its_name(service, prometheus) -> None:
    prometheus.script("histogram_quantile", vector("700"))
    relaxed = Analysis(metrics=[MetricCheck(name=DURATION, max=1000)])
    assert run(service, prometheus, relaxed).passed
    assert not run(service, prometheus).passed


def test_a_custom_metric_runs_with_its_own_bounds_and_placeholders(service, prometheus) -> None:
    prometheus.script("app_build_info", vector("1"))
    custom = Analysis(iterations=2, failure_threshold=1, interval_seconds=2.5, metrics=[MetricCheck(
        name="one-build", query='count(app_build_info{job="{service}", image="{image}"}) + 0*vector({ interval })',
        min=1, max=1)])
    result = run(service, prometheus, custom)
    assert result.passed and result.series()["one-build"] == [(1, 1.0, True), (2, 1.0, True)]
    assert 'count(app_build_info{job="demo-web-staging", image="demo-web"}) + 0*vector(30s)' in prometheus.queries


def test_the_query_range_is_the_interval_but_at_least_30_s() -> None:
    assert Analysis().query_range == "30s"
    assert Analysis(interval_seconds=60).query_range == "60s"
    assert Analysis(interval_seconds=60, query_range_seconds=2.5).query_range == "2500ms"
    assert [promql_duration(s) for s in (30, 30.0, 0.0001, 90.5)] == ["30s", "30s", "1ms", "90500ms"]


def test_placeholder_values_are_escaped_for_promql_strings() -> None:
    metric = MetricCheck(name="m", query='up{service="{service}"}', min=1)
    assert metric.render(service='a"b\\c', image="i", environment="e", interval="30s") == r'up{service="a\"b\\c"}'


def test_resolved_settings_fill_in_the_prometheus_url(monkeypatch) -> None:
    monkeypatch.delenv("PATCHPIPE_PROMETHEUS_URL", raising=False)
    assert Analysis().resolved().prometheus_url == "http://127.0.0.1:9090"
    assert Analysis().resolved({"PATCHPIPE_PROMETHEUS_URL": "http://prom:9090"}).prometheus_url == "http://prom:9090"
    own = Analysis(prometheus_url="http://mine:9090")
    assert own.resolved({"PATCHPIPE_PROMETHEUS_URL": "http://prom:9090"}).prometheus_url == "http://mine:9090"
    resolved = own.resolved()
    assert resolved.resolved() == resolved  # idempotent
    with pytest.raises(PatchpipeError, match="metrics.nope.query: field required: no inherited metric named 'nope'"):
        Analysis(metrics=[MetricCheck(name="nope", min=1)]).resolved()


def test_analyze_image_takes_everything_from_the_manifest(service, prometheus) -> None:
    fleet = parse_fleet(yaml.safe_dump({
        "version": 1,
        "defaults": {"analysis": {"interval_seconds": 1, "iterations": 3, "prometheus_url": prometheus.url}},
        "images": [{
            "name": "web", "kind": "patch", "image": "127.0.0.1:5000/demo/web:1.0", "owners": ["o@example.org"],
            "deploy": {"staging": {"swarm_service": "web-staging", "url": service.base_url},
                       "production": {"swarm_service": "web-production", "url": "http://127.0.0.1:1"}},
            "smoke": [{"name": "healthz", "path": "/healthz"}], "version_path": "/version",
            "analysis": {"metrics": [{"name": DURATION, "max": 100}]},
        }],
    }))
    clock = FakeClock()
    result = analyze_image(fleet, "web", "staging", BUILD_ID, clock=clock)
    assert result.passed and clock.sleeps == [1, 1, 1]
    assert list(result.series()) == ["healthz", "version", SUCCESS_RATE, DURATION]
    assert result.series()[DURATION][0] == (1, 42.5, True)
    assert 'service="web-staging", environment="staging"' in prometheus.queries[0]
    assert service_name(fleet.image("web").deploy["production"]) == "web-production"


def test_a_result_serialises_to_plain_json(service, prometheus) -> None:
    prometheus.script("http_requests_total", vector("1"))
    data = json.loads(json.dumps(run(service, prometheus).to_dict()))
    assert data["passed"] is False and data["failing"]["check"] == SUCCESS_RATE
    assert data["observations"][0] == {
        "check": "healthz", "kind": "smoke", "iteration": 1, "at_seconds": 5, "passed": True,
        "value": data["observations"][0]["value"], "bound": "status 200, body ~ '^ok'", "detail": "ok"}
    assert set(data) >= {"environment", "target_url", "reason", "iterations", "iterations_run", "failed_iterations",
                         "failure_threshold", "interval_seconds", "started_at", "seconds"}


def test_a_slow_iteration_does_not_make_the_next_ones_run_back_to_back(service, prometheus) -> None:
    class SlowChecks(FakeClock):
        def monotonic(self) -> float:
            self.now += 2  # every look at the clock costs 2 s: checks slower than the interval
            return self.now

    clock = SlowChecks()
    result = run(service, prometheus, Analysis(interval_seconds=1, iterations=3), clock=clock)
    assert result.passed and clock.sleeps == []  # never waits, never tries to catch up


# --- the Prometheus client -----------------------------------------------------------------------


def test_the_client_reads_a_one_series_vector_and_a_scalar(prometheus) -> None:
    prometheus.script("a", vector("0.995"))
    prometheus.script("b", scalar("3"))
    prometheus.script("c", vector("+Inf"))
    with PrometheusClient(prometheus.url + "/") as client:
        assert (client.query("a"), client.query("b"), client.query("c")) == (0.995, 3.0, float("inf"))


@pytest.mark.parametrize(("answer", "error", "message"), [
    (TWO_SERIES, PrometheusQueryError, "the query for m returned 2 series, not one number (e.g. [{'service': 'a'}, "
                                       "{'service': 'b'}]); aggregate it, e.g. with sum(...) (query q)"),
    (MATRIX, PrometheusQueryError, "the query for m returned a matrix result, not one number; use an instant vector "
                                   "or scalar expression (query q)"),
    ((422, {"status": "error", "errorType": "execution", "error": "query timed out"}), PrometheusQueryError,
     "Prometheus rejected the query for m: execution: query timed out (HTTP 422, query q)"),
    (EMPTY, PrometheusNoData, "no data for m (query q): the query matched no series; is the target scraped? "
                              "The analysis fails closed."),
    (vector("x"), PrometheusQueryError, "the answer for m has no readable sample: [1732850000.123, 'x'] (query q)"),
])
def test_the_client_explains_every_answer_that_is_not_one_number(prometheus, answer, error, message) -> None:
    prometheus.script("q", answer)
    with PrometheusClient(prometheus.url) as client, pytest.raises(error) as raised:
        client.query("q", name="m")
    assert str(raised.value) == message


def test_a_url_that_is_not_prometheus_is_named(service) -> None:
    with PrometheusClient(service.base_url) as client, pytest.raises(PrometheusQueryError) as raised:
        client.query("up", name="m")
    assert str(raised.value) == (f"{service.base_url}/api/v1/query answered HTTP 404 without a Prometheus API "
                                 f"response (is {service.base_url} a Prometheus?) for m (query up)")


def test_an_unreachable_prometheus_is_named_with_its_url() -> None:
    url = closed_port_url()
    with PrometheusClient(url) as client, pytest.raises(PrometheusUnreachable) as raised:
        client.query("up", name="request-success-rate")
    assert str(raised.value).startswith(f"Prometheus at {url} is unreachable: ConnectionError: ")
    assert str(raised.value).endswith("request-success-rate cannot be measured, so the analysis fails closed")


# --- the smoke checks' latency bound ---------------------------------------------------------------


def test_run_check_fails_an_answer_slower_than_max_latency_ms(service) -> None:
    with requests.Session() as session:
        slow = run_check(session, service.base_url, SmokeCheck(name="h", path="/healthz", retries=0,
                                                               max_latency_ms=0.001), retry_delay=0)
        fast = run_check(session, service.base_url, SmokeCheck(name="h", path="/healthz", retries=0,
                                                               max_latency_ms=10_000), retry_delay=0)
    assert not slow.passed and slow.detail.endswith(" ms, more than max_latency_ms 0.001")
    assert fast.passed and fast.detail == "ok"


def test_a_wrong_status_is_reported_before_the_latency(service) -> None:
    service.respond_with("healthz", 500)
    with requests.Session() as session:
        result = run_check(session, service.base_url, SmokeCheck(name="h", path="/healthz", retries=0,
                                                                 max_latency_ms=0.001), retry_delay=0)
    assert result.detail == "status 500, expected 200"


def test_max_latency_ms_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        SmokeCheck(name="h", path="/healthz", max_latency_ms=0)


def test_analyze_image_names_an_unknown_environment() -> None:
    fleet = parse_fleet((Path(__file__).resolve().parents[2] / "include" / "fleet.yaml").read_text())
    with pytest.raises(PatchpipeError, match="no environment 'prod' to analyse; use one of staging, production"):
        analyze_image(fleet, "demo-web", "prod", None)


# --- traffic during the analysis -------------------------------------------------------------------


def test_traffic_reaches_the_smoke_paths_while_the_analysis_runs(service) -> None:
    with Traffic(service.base_url, ["/index", "/healthz"], per_second=50) as traffic:
        deadline = time.monotonic() + 10
        while traffic.sent < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    sent = traffic.sent
    time.sleep(0.2)
    assert sent >= 10 and traffic.sent == sent  # it stopped with the block
    assert {"index", "healthz"} <= set(service.requested_paths())


def test_traffic_also_reaches_the_version_path_so_a_health_check_alone_still_gives_data() -> None:
    health = SmokeCheck(name="healthz", path="/healthz")
    teapot = SmokeCheck(name="teapot", path="/brew", expect_status=418)
    assert traffic_paths([health, teapot], "/version") == ["/healthz", "/version"]
    assert traffic_paths([health], None) == ["/healthz"]


def test_no_traffic_when_turned_off(service) -> None:
    with Traffic(service.base_url, ["/index"], per_second=0) as traffic:
        time.sleep(0.2)
    assert traffic.sent == 0 and service.requested_paths() == []
