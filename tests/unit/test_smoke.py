"""Smoke checks and the /version check against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from support.http_server import LocalHTTPServer, closed_port_url, serve_directory

from patchpipe.fleet import SmokeCheck
from patchpipe.verify.smoke import check_version, run_check

BUILD_ID = "1.0-patch.20261124.1"
FAST = 0.01  # retry delay: the tests exercise retries, not patience


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LocalHTTPServer]:
    """A stand-in service: /healthz says ok, / serves a page, /version reports BUILD_ID."""
    (tmp_path / "healthz").write_text("ok\n")
    (tmp_path / "index").write_text("<h1>demo-web</h1>\n")
    (tmp_path / "version").write_text(json.dumps({"build_id": BUILD_ID, "version": "1.0"}))
    with serve_directory(tmp_path) as server:
        yield server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def check(path: str = "/healthz", *, name: str = "healthz", retries: int = 0, **fields) -> SmokeCheck:
    return SmokeCheck(name=name, path=path, retries=retries, **fields)


# --- run_check ---------------------------------------------------------------------------------


def test_a_check_passes_on_the_expected_status_and_body(service: LocalHTTPServer, session) -> None:
    result = run_check(session, service.base_url, check(body_pattern="^ok"), retry_delay=FAST)
    assert (result.name, result.url, result.passed, result.detail, result.attempts) == (
        "healthz", service.url("healthz"), True, "ok", 1)


def test_a_trailing_slash_on_the_base_url_is_not_doubled(service: LocalHTTPServer, session) -> None:
    result = run_check(session, service.base_url + "/", check(), retry_delay=FAST)
    assert result.passed and result.url == service.url("healthz")
    assert service.requested_paths() == ["healthz"]


def test_a_wrong_status_fails_the_check_and_says_what_came_back(service: LocalHTTPServer, session) -> None:
    service.respond_with("healthz", 500)
    result = run_check(session, service.base_url, check(), retry_delay=FAST)
    assert (result.passed, result.detail) == (False, "status 500, expected 200")


def test_an_expected_non_200_status_passes(service: LocalHTTPServer, session) -> None:
    result = run_check(session, service.base_url, check("/admin", name="admin-hidden", expect_status=404),
                       retry_delay=FAST)
    assert result.passed


def test_a_body_that_does_not_match_fails_the_check(service: LocalHTTPServer, session) -> None:
    result = run_check(session, service.base_url, check("/index", name="home", body_pattern="^ok"), retry_delay=FAST)
    assert (result.passed, result.detail) == (False, "body does not match '^ok'")


def test_the_body_pattern_is_searched_not_anchored(service: LocalHTTPServer, session) -> None:
    result = run_check(session, service.base_url, check("/index", name="home", body_pattern="demo-web"),
                       retry_delay=FAST)
    assert result.passed


def test_no_answer_fails_the_check_with_the_connection_error(session) -> None:
    result = run_check(session, closed_port_url(), check(), retry_delay=FAST)
    assert not result.passed
    assert result.detail.startswith("no answer: ConnectionError")


def test_a_failing_check_is_tried_once_more_per_retry(service: LocalHTTPServer, session) -> None:
    service.respond_with("healthz", 503)
    result = run_check(session, service.base_url, check(retries=2), retry_delay=FAST)
    assert (result.passed, result.attempts) == (False, 3)
    assert service.requested_paths() == ["healthz"] * 3


def test_a_check_that_recovers_within_its_retries_passes(service: LocalHTTPServer, session) -> None:
    service.respond_with("healthz", 503, times=2)  # still warming up, then healthy
    result = run_check(session, service.base_url, check(retries=3, body_pattern="^ok"), retry_delay=FAST)
    assert (result.passed, result.attempts, result.detail) == (True, 3, "ok")
    assert len(service.requests) == 3


def test_retries_wait_the_retry_delay_between_attempts(service: LocalHTTPServer, session) -> None:
    service.respond_with("healthz", 503)
    result = run_check(session, service.base_url, check(retries=2), retry_delay=0.1)
    assert result.seconds >= 0.2  # two waits; none after the last attempt
    assert result.seconds < 2


def test_a_check_that_answers_too_slowly_fails_with_a_timeout(session) -> None:
    with slow_server(delay=1.0) as url:
        started = time.monotonic()
        result = run_check(session, url, check(timeout_seconds=0.2), retry_delay=FAST)
    assert not result.passed
    assert result.detail.startswith("no answer: ReadTimeout")
    assert time.monotonic() - started < 1.0


def test_a_check_result_serialises_to_a_plain_dict(service: LocalHTTPServer, session) -> None:
    data = run_check(session, service.base_url, check(), retry_delay=FAST).to_dict()
    assert json.loads(json.dumps(data))["name"] == "healthz"
    assert set(data) == {"name", "url", "passed", "detail", "attempts", "seconds"}


# --- check_version -----------------------------------------------------------------------------


def test_the_version_check_passes_when_the_service_reports_the_build(service: LocalHTTPServer, session) -> None:
    result = check_version(session, service.base_url, "/version", BUILD_ID, retries=0, retry_delay=FAST)
    assert (result.name, result.passed, result.detail) == ("version", True, f"reports {BUILD_ID}")


def test_another_build_id_fails_the_version_check(service: LocalHTTPServer, session) -> None:
    result = check_version(session, service.base_url, "/version", "1.0-patch.20261124.2", retries=1,
                           retry_delay=FAST)
    assert (result.passed, result.attempts) == (False, 2)
    assert result.detail == f"reports build {BUILD_ID!r}, expected '1.0-patch.20261124.2'"


def test_a_version_without_a_build_id_fails(tmp_path: Path, session) -> None:
    (tmp_path / "version").write_text(json.dumps({"version": "1.0"}))
    with serve_directory(tmp_path) as server:
        result = check_version(session, server.base_url, "/version", BUILD_ID, retries=0, retry_delay=FAST)
    assert result.detail == f"reports build None, expected {BUILD_ID!r}"


@pytest.mark.parametrize("body", ["ok\n", "[1, 2]", ""])
def test_a_version_answer_that_is_not_a_json_object_fails(tmp_path: Path, session, body: str) -> None:
    (tmp_path / "version").write_text(body)
    with serve_directory(tmp_path) as server:
        result = check_version(session, server.base_url, "/version", BUILD_ID, retries=0, retry_delay=FAST)
    assert not result.passed
    assert result.detail.startswith("no JSON build_id: ")


def test_an_unreachable_version_endpoint_fails(session) -> None:
    result = check_version(session, closed_port_url(), "/version", BUILD_ID, retries=0, retry_delay=FAST)
    assert not result.passed and result.detail.startswith("no JSON build_id: ")


def test_the_version_check_waits_for_the_new_build_to_answer(service: LocalHTTPServer, session) -> None:
    service.respond_with("version", 503, times=2)
    result = check_version(session, service.base_url, "/version", BUILD_ID, retries=3, retry_delay=FAST)
    assert (result.passed, result.attempts) == (True, 3)


# --- a server that answers too slowly ----------------------------------------------------------


class _Slow(BaseHTTPRequestHandler):
    delay = 1.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            pass  # the client gave up waiting, as the test intends

    def log_message(self, format: str, *args: object) -> None:
        pass


class slow_server:
    def __init__(self, delay: float):
        handler = type("Slow", (_Slow,), {"delay": delay})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
