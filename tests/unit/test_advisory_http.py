"""FeedClient against a real local HTTP server: conditional GET, retries, backoff, Retry-After, errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from patchpipe.advisories.http import FeedClient, FetchError, RetryPolicy, Validators, parse_retry_after, redact
from support.http_server import LocalHTTPServer, closed_port_url, serve_directory

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
KEV = "cisa-kev/known_exploited_vulnerabilities.json"
QUICK = RetryPolicy(attempts=3, backoff=0.05, max_wait=2.0)


@pytest.fixture
def server():
    with serve_directory(DATA, etag=True) as server:
        yield server


@pytest.fixture
def client(tmp_path: Path):
    with FeedClient(retry=QUICK, timeout=(2.0, 5.0), download_dir=tmp_path) as client:
        yield client


def test_the_body_is_saved_to_a_file_that_lives_as_long_as_the_block(server, client, tmp_path: Path) -> None:
    with client.download(server.url(KEV)) as download:
        assert download.path.read_bytes() == (DATA / KEV).read_bytes()
        assert download.size == (DATA / KEV).stat().st_size
        assert download.validators.etag and download.path.parent == tmp_path
        assert not download.not_modified
    assert not download.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_unchanged_feed_costs_one_304_with_the_stored_etag(server, client) -> None:
    with client.download(server.url(KEV)) as first:
        etag = first.validators.etag
    server.reset()

    with client.download(server.url(KEV), Validators(etag=etag)) as second:
        assert second.not_modified and second.path is None
        assert second.validators.etag == etag

    [request] = server.requests
    assert request.headers["If-None-Match"] == etag


def test_if_modified_since_gets_a_304_from_a_server_without_etags(client) -> None:
    with serve_directory(DATA, last_modified=True) as server:
        with client.download(server.url(KEV)) as first:
            assert first.validators.etag is None
            last_modified = first.validators.last_modified
        with client.download(server.url(KEV), Validators(last_modified=last_modified)) as second:
            assert second.not_modified
        assert server.requests[-1].headers["If-Modified-Since"] == last_modified


def test_a_changed_feed_is_downloaded_again(tmp_path: Path, client) -> None:
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "feed.json").write_text('{"v": 1}')
    with LocalHTTPServer(root, etag=True) as server:
        with client.download(server.url("feed.json")) as first:
            etag = first.validators.etag
        (root / "feed.json").write_text('{"v": 2}')
        with client.download(server.url("feed.json"), Validators(etag=etag)) as second:
            assert second.path.read_text() == '{"v": 2}'
            assert second.validators.etag != etag


def test_429_then_200_waits_as_long_as_retry_after_says(server, client) -> None:
    server.respond_with(KEV, 429, times=1, headers={"Retry-After": "1"})

    started = time.monotonic()
    with client.download(server.url(KEV)) as download:
        waited = time.monotonic() - started
        assert download.size == (DATA / KEV).stat().st_size

    assert server.requested_paths() == [KEV, KEV]
    assert 1.0 <= waited < 1.9  # Retry-After, not the 0.05 s backoff


def test_retry_after_as_an_http_date_is_honoured(server, client) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=2)
    server.respond_with(KEV, 503, times=1, headers={"Retry-After": format_datetime(when, usegmt=True)})

    started = time.monotonic()
    with client.download(server.url(KEV)):
        waited = time.monotonic() - started

    assert len(server.requests) == 2
    assert 0.5 < waited < 2.9  # the date has whole seconds: between 1 and 2 s from now


def test_a_long_retry_after_is_capped(server, tmp_path: Path) -> None:
    server.respond_with(KEV, 429, times=1, headers={"Retry-After": "3600"})

    started = time.monotonic()
    with FeedClient(retry=RetryPolicy(attempts=2, backoff=0.05, max_wait=0.3), download_dir=tmp_path) as client:
        with client.download(server.url(KEV)) as download:
            assert not download.not_modified

    assert 0.3 <= time.monotonic() - started < 2.0


def test_500_every_time_gives_up_after_the_attempts_with_growing_waits(server, tmp_path: Path) -> None:
    server.respond_with(KEV, 500)
    policy = RetryPolicy(attempts=3, backoff=0.2, max_wait=5.0)

    started = time.monotonic()
    with FeedClient(retry=policy, download_dir=tmp_path) as client, pytest.raises(FetchError) as error:
        with client.download(server.url(KEV)):
            pass

    assert time.monotonic() - started >= 0.2 + 0.4
    assert len(server.requests) == 3
    assert str(error.value) == f"{server.url(KEV)}: HTTP 500 Internal Server Error (gave up after 3 attempts)"
    assert list(tmp_path.iterdir()) == []


def test_a_404_is_not_retried_and_names_the_url(server, client) -> None:
    with pytest.raises(FetchError) as error, client.download(server.url("kev/missing.json")):
        pass

    assert str(error.value) == f"{server.url('kev/missing.json')}: HTTP 404 Not Found"
    assert len(server.requests) == 1


def test_a_body_cut_off_mid_download_is_retried_then_reported(server, client) -> None:
    server.truncate(KEV, 1000, declare_full_length=True)

    with pytest.raises(FetchError, match="the body broke off") as error, client.download(server.url(KEV)):
        pass

    assert server.url(KEV) in str(error.value)
    assert len(server.requests) == QUICK.attempts


def test_an_unreachable_server_is_reported_with_its_url(client) -> None:
    url = f"{closed_port_url()}/kev.json"

    with pytest.raises(FetchError) as error, client.download(url):
        pass

    assert str(error.value).startswith(f"{url}: ConnectionError")
    assert str(error.value).endswith("(gave up after 3 attempts)")


def test_a_304_to_an_unconditional_request_is_an_error(server, client) -> None:
    server.respond_with(KEV, 304)

    with pytest.raises(FetchError, match="not conditional"), client.download(server.url(KEV)):
        pass


def test_a_password_in_the_url_never_reaches_a_message(server, client) -> None:
    url = server.url("kev/missing.json").replace("http://", "http://mirror:s3cret@")

    with pytest.raises(FetchError) as error, client.download(url):
        pass

    assert "s3cret" not in str(error.value)
    assert "mirror:***@127.0.0.1" in str(error.value)
    assert server.requests[0].headers["Authorization"].startswith("Basic ")  # the credentials were still sent


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 0 ", 0.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 60.0), ("Wed, 21 Oct 2026 07:26:00 GMT", 0.0),
     ("soon", None), ("", None), (None, None), ("-3", None)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 27, tzinfo=timezone.utc)
    assert parse_retry_after(header, now=now) == seconds


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, backoff=1.5, max_wait=10.0)
    assert [policy.wait(n, None) for n in range(1, 6)] == [1.5, 3.0, 6.0, 10.0, 10.0]
    assert policy.wait(1, 4.0) == 4.0 and policy.wait(1, 99.0) == 10.0


def test_redact_keeps_everything_but_the_password() -> None:
    assert redact("https://u:p@mirror.example:8443/osv/all.zip?x=1") == "https://u:***@mirror.example:8443/osv/all.zip?x=1"
    assert redact("https://mirror.example/osv/all.zip") == "https://mirror.example/osv/all.zip"
