"""The advisory sync, every real feed served by a local HTTP server, and the ``patchpipe advisories`` CLI.

The mirror holds the real files from shared/data/advisories, laid out as the real servers do (OSV
records zipped into ``<Ecosystem>/all.zip`` unchanged, the EPSS sample gzipped as the daily file
is). Odd cases the real files do not have (a record without a package name, broken JSON) are
hand-written here or come from tests/fixtures/advisories (hand-written too, see its README).
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from patchpipe.advisories.http import RetryPolicy
from patchpipe.advisories.settings import Feed, SyncSettings, alpine_secdb_feed, osv_feed
from patchpipe.advisories.store import advisory, affected_packages, feed_state, source_states
from patchpipe.advisories.sync import FAILED, UNCHANGED, UPDATED, AdvisoriesTooOldError, import_files, sync
from patchpipe.cli import main
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError
from support.http_server import LocalHTTPServer

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories"
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)

OSV_DEBIAN = "osv/Debian/all.zip"
OSV_ALPINE = "osv/Alpine/all.zip"
TRACKER = "tracker/data/json"
SECDB = "secdb/v3.20/main.json"
KEV = "kev/known_exploited_vulnerabilities.json"
EPSS = "epss/epss_scores-current.csv.gz"
PATHS = {"osv-debian": OSV_DEBIAN, "osv-alpine": OSV_ALPINE, "debian-tracker": TRACKER,
         "alpine-secdb-v3.20-main": SECDB, "kev": KEV, "epss": EPSS}
COUNTS = {"osv-debian": 9, "osv-alpine": 1, "debian-tracker": 7, "alpine-secdb-v3.20-main": 75, "kev": 0, "epss": 0}


def write_zip(path: Path, files: list[Path], extra: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, file.name)
        for name, text in (extra or {}).items():
            archive.writestr(name, text)


def build_mirror(root: Path) -> Path:
    write_zip(root / OSV_DEBIAN, sorted((DATA / "osv-debian").glob("*.json")))
    write_zip(root / OSV_ALPINE, sorted((DATA / "osv-alpine").glob("*.json")))
    for source, target in (("debian-security-tracker/debian.json", TRACKER), ("alpine-secdb/v3.20-main.json", SECDB),
                           ("cisa-kev/known_exploited_vulnerabilities.json", KEV)):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / source, root / target)
    (root / EPSS).parent.mkdir(parents=True)
    (root / EPSS).write_bytes(gzip.compress((DATA / "epss" / "epss_scores-current.sample.csv").read_bytes()))
    return root


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return build_mirror(tmp_path / "mirror")


@pytest.fixture
def server(mirror: Path):
    with LocalHTTPServer(mirror, etag=True) as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def feeds_on(server: LocalHTTPServer) -> tuple[Feed, ...]:
    return (
        osv_feed("Debian", server.url("osv")),
        osv_feed("Alpine", server.url("osv")),
        Feed("debian-tracker", "debian_tracker", server.url(TRACKER)),
        alpine_secdb_feed("v3.20", "main", server.url("secdb")),
        Feed("kev", "kev", server.url(KEV)),
        Feed("epss", "epss", server.url(EPSS)),
    )


def settings_for(server: LocalHTTPServer, tmp_path: Path, **overrides) -> SyncSettings:
    return SyncSettings(feeds=feeds_on(server), retry=RetryPolicy(attempts=3, backoff=0.05, max_wait=2.0),
                        timeout=(2.0, 10.0), download_dir=tmp_path, **overrides)


def outcomes(report) -> dict[str, str]:
    return {result.feed: result.outcome for result in report.results}


# --- the sync over HTTP ---------------------------------------------------------------------------


def test_the_first_sync_stores_every_real_feed(engine, server, tmp_path: Path) -> None:
    report = sync(engine, settings=settings_for(server, tmp_path), now=Clock())

    assert outcomes(report) == dict.fromkeys(PATHS, UPDATED)
    assert report.warnings == ()
    states = {state.name: state for state in source_states(engine)}
    assert {name: state.advisories for name, state in states.items()} == COUNTS
    assert (states["kev"].kev, states["epss"].epss) == (1404, 536)
    assert all(state.last_success == T0 and state.etag and state.skipped == 0 for state in states.values())
    [musl] = affected_packages(engine, "alpine", "v3.20", ["musl"])
    assert (musl.advisory_id, musl.feed, musl.fixed_version) == ("ALPINE-CVE-2025-26519", "osv-alpine", "1.2.5-r1")
    assert advisory(engine, "CVE-2024-8176").epss[0].score == 0.01326
    assert list(tmp_path.glob("patchpipe-feed-*")) == []


def test_the_report_says_what_changed_in_a_json_asset_extra(engine, server, tmp_path: Path) -> None:
    report = sync(engine, settings=settings_for(server, tmp_path), now=Clock())

    extra = json.loads(json.dumps(report.asset_extra(max_ids=3)))

    assert extra["synced_at"] == T0.isoformat() and extra["stale"] == []
    assert extra["feeds"]["osv-debian"]["new"] == ["DLA-3008-1", "DLA-3012-1", "DLA-3022-1"]
    assert extra["feeds"]["osv-debian"]["new_count"] == 9
    assert extra["feeds"]["kev"]["new_kev_count"] == 1404 and len(extra["feeds"]["kev"]["new_kev"]) == 3
    assert extra["feeds"]["epss"]["records"] == {"advisories": 0, "kev": 0, "epss": 536, "skipped": 0}


def test_the_second_sync_costs_one_304_per_feed_and_parses_nothing(engine, server, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    sync(engine, settings=settings, now=Clock())
    etags = {state.name: state.etag for state in source_states(engine)}
    server.reset()

    report = sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=1)))

    assert outcomes(report) == dict.fromkeys(PATHS, UNCHANGED)
    assert sorted(server.requested_paths()) == sorted(PATHS.values())
    assert {r.path: r.headers["If-None-Match"] for r in server.requests} == {PATHS[n]: e for n, e in etags.items()}
    for state in source_states(engine):
        # An empty 304 body that reached a parser would have failed the feed; the data is the first sync's.
        assert (state.last_success, state.last_changed) == (T0 + timedelta(hours=1), T0)
        assert state.advisories == COUNTS[state.name]


def test_a_server_with_only_last_modified_gets_conditional_requests_too(engine, mirror: Path, tmp_path: Path) -> None:
    with LocalHTTPServer(mirror, last_modified=True) as server:
        settings = settings_for(server, tmp_path)
        sync(engine, ["kev", "osv-debian"], settings, now=Clock())
        server.reset()

        report = sync(engine, ["kev", "osv-debian"], settings, now=Clock(T0 + timedelta(hours=1)))

        assert outcomes(report) == {"kev": UNCHANGED, "osv-debian": UNCHANGED}
        assert all("If-Modified-Since" in request.headers for request in server.requests)


def test_429_then_200_is_retried_after_the_wait_the_server_asks_for(engine, server, tmp_path: Path) -> None:
    server.respond_with(KEV, 429, times=1, headers={"Retry-After": "1"})

    report = sync(engine, ["kev"], settings_for(server, tmp_path), now=Clock())

    assert outcomes(report) == {"kev": UPDATED}
    assert server.requested_paths() == [KEV, KEV]
    assert feed_state(engine, "kev").kev == 1404


def test_a_feed_failing_every_time_keeps_its_data_and_the_others_sync(engine, server, tmp_path: Path, caplog) -> None:
    settings = settings_for(server, tmp_path)
    sync(engine, settings=settings, now=Clock())
    (Path(server.root) / KEV).write_text(json.dumps(_catalog_without_first_entry()))
    server.respond_with(OSV_DEBIAN, 500)
    server.requests.clear()

    with caplog.at_level(logging.WARNING, logger="patchpipe.advisories"):
        report = sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=30)))

    assert outcomes(report) == {**dict.fromkeys(PATHS, UNCHANGED), "osv-debian": FAILED, "kev": UPDATED}
    [stale] = report.stale
    assert (stale.feed, stale.age, stale.stale) == ("osv-debian", timedelta(hours=30), True)
    assert stale.error == f"{server.url(OSV_DEBIAN)}: HTTP 500 Internal Server Error (gave up after 3 attempts)"
    assert report.warnings == (f"osv-debian: sync failed, keeping data 30.0 h old: {stale.error}",)
    assert f"advisory sync: {report.warnings[0]}" in caplog.messages
    assert server.requested_paths().count(OSV_DEBIAN) == 3
    state = feed_state(engine, "osv-debian")
    assert (state.stale, state.last_success, state.last_attempt, state.advisories) == (
        True, T0, T0 + timedelta(hours=30), 9)
    assert [m.advisory_id for m in affected_packages(engine, "debian", "wheezy", ["nginx"])] == ["DSA-3029-1"]
    assert report.asset_extra()["stale"] == ["osv-debian"]


def _catalog_without_first_entry() -> dict:
    catalog = json.loads((DATA / "cisa-kev" / "known_exploited_vulnerabilities.json").read_text())
    catalog["vulnerabilities"] = catalog["vulnerabilities"][1:]
    catalog["count"] -= 1
    return catalog


def test_new_kev_entries_and_updated_advisories_are_reported(engine, server, mirror: Path, tmp_path: Path) -> None:
    (mirror / KEV).write_text(json.dumps(_catalog_without_first_entry()))
    settings = settings_for(server, tmp_path)
    sync(engine, settings=settings, now=Clock())
    shutil.copyfile(DATA / "cisa-kev" / "known_exploited_vulnerabilities.json", mirror / KEV)
    dsa = json.loads((DATA / "osv-debian" / "DSA-3029-1.json").read_text())
    dsa["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.2.1-2.2+wheezy4"
    others = [p for p in sorted((DATA / "osv-debian").glob("*.json")) if p.name != "DSA-3029-1.json"]
    write_zip(mirror / OSV_DEBIAN, others[1:], {"DSA-3029-1.json": json.dumps(dsa)})

    report = sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=1)))

    changes = {result.feed: result.changes for result in report.results if result.changes is not None}
    assert set(changes) == {"osv-debian", "kev"}
    assert (changes["osv-debian"].updated_ids, changes["osv-debian"].removed_ids) == (("DSA-3029-1",), ("DLA-3008-1",))
    assert changes["kev"].new_kev == ("CVE-2025-48384",)
    assert affected_packages(engine, "debian", "wheezy", ["nginx"])[0].fixed_version == "1.2.1-2.2+wheezy4"


def test_a_truncated_zip_changes_nothing(engine, server, mirror: Path, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    sync(engine, settings=settings, now=Clock())
    write_zip(mirror / OSV_DEBIAN, sorted((DATA / "osv-debian").glob("*.json"))[1:])  # a new copy without DLA-3008-1
    server.truncate(OSV_DEBIAN, keep_bytes=(mirror / OSV_DEBIAN).stat().st_size // 2)

    report = sync(engine, ["osv-debian"], settings, now=Clock(T0 + timedelta(hours=1)))

    [result] = report.results
    assert result.outcome == FAILED and "zip" in result.error and "truncated" in result.error
    assert [entry.feed for entry in advisory(engine, "DLA-3008-1").advisories] == ["osv-debian"]
    state = feed_state(engine, "osv-debian")
    assert (state.advisories, state.last_changed, state.last_success) == (9, T0, T0)


def test_invalid_json_changes_nothing(engine, server, mirror: Path, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)
    sync(engine, settings=settings, now=Clock())
    text = (mirror / TRACKER).read_text()
    (mirror / TRACKER).write_text(text[: len(text) // 2])  # hand-made: the tracker file cut in the middle

    report = sync(engine, ["debian-tracker"], settings, now=Clock(T0 + timedelta(hours=1)))

    [result] = report.results
    assert result.outcome == FAILED
    assert result.error.startswith(f"{server.url(TRACKER)} is not valid JSON")
    assert feed_state(engine, "debian-tracker").advisories == 7
    assert [p.release for p in advisory(engine, "CVE-2025-53603").advisories[0].advisory.affected] == [
        "bookworm", "bullseye", "sid", "trixie"]


def test_a_record_missing_required_fields_is_skipped_counted_and_logged(engine, server, mirror: Path, tmp_path: Path,
                                                                        caplog) -> None:
    bad = HAND_WRITTEN / "osv" / "missing-package-name.json"
    write_zip(mirror / OSV_DEBIAN, sorted((DATA / "osv-debian").glob("*.json")) + [bad])

    with caplog.at_level(logging.WARNING, logger="patchpipe.advisories"):
        report = sync(engine, ["osv-debian"], settings_for(server, tmp_path), now=Clock())

    [result] = report.results
    assert (result.outcome, result.changes.advisories, result.changes.skipped) == (UPDATED, 9, 1)
    assert "osv-debian: skipped record HAND-OSV-0002: affected[0].package has no name" in caplog.messages
    assert feed_state(engine, "osv-debian").skipped == 1
    assert advisory(engine, "HAND-OSV-0002") is None


def test_the_tracker_entry_with_empty_releases_is_stored_without_packages(engine, server, tmp_path: Path) -> None:
    sync(engine, ["debian-tracker"], settings_for(server, tmp_path), now=Clock())

    [entry] = advisory(engine, "CVE-2022-0358").advisories
    assert (entry.feed, entry.advisory.affected) == ("debian-tracker", ())
    assert affected_packages(engine, "debian", "sid", ["chromium-browser"]) == []


def test_data_older_than_the_maximum_age_fails_the_sync(engine, server, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path, max_age=timedelta(hours=48))
    sync(engine, settings=settings, now=Clock())
    server.respond_with(OSV_DEBIAN, 503)

    within = sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=47)))
    with pytest.raises(AdvisoriesTooOldError) as error:
        sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=49)))

    assert outcomes(within)["osv-debian"] == FAILED
    assert [result.feed for result in error.value.too_old] == ["osv-debian"]
    assert str(error.value) == (
        "advisory data older than the maximum age of 48 h:\n"
        f"  osv-debian: data 49.0 h old; last error: {server.url(OSV_DEBIAN)}: HTTP 503 Service Unavailable "
        "(gave up after 3 attempts)"
    )
    assert outcomes(error.value.report) == {**dict.fromkeys(PATHS, UNCHANGED), "osv-debian": FAILED}
    assert feed_state(engine, "kev").last_success == T0 + timedelta(hours=49)  # the others were still synced
    assert isinstance(error.value, PatchpipeError)


def test_a_feed_that_never_synced_fails_the_sync(engine, server, tmp_path: Path) -> None:
    server.respond_with(EPSS, 404)

    with pytest.raises(AdvisoriesTooOldError, match="epss: data never fetched; last error: .*HTTP 404") as error:
        sync(engine, settings=settings_for(server, tmp_path), now=Clock())

    assert outcomes(error.value.report)["kev"] == UPDATED
    assert feed_state(engine, "kev").kev == 1404


def test_a_new_url_gets_a_full_download_without_the_old_validators(engine, server, mirror: Path, tmp_path: Path) -> None:
    sync(engine, ["kev"], settings_for(server, tmp_path), now=Clock())
    shutil.copyfile(mirror / KEV, mirror / "kev" / "moved.json")
    moved = SyncSettings(feeds=(Feed("kev", "kev", server.url("kev/moved.json")),), download_dir=tmp_path)
    server.reset()

    report = sync(engine, settings=moved, now=Clock(T0 + timedelta(hours=1)))

    assert outcomes(report) == {"kev": UPDATED}
    assert "If-None-Match" not in server.requests[0].headers
    assert feed_state(engine, "kev").url == server.url("kev/moved.json")


def test_only_the_named_feeds_are_synced_and_an_unknown_name_is_refused(engine, server, tmp_path: Path) -> None:
    settings = settings_for(server, tmp_path)

    report = sync(engine, ["epss", "kev"], settings, now=Clock())
    with pytest.raises(PatchpipeError, match="unknown advisory feed nope; configured feeds: osv-debian, osv-alpine"):
        sync(engine, ["nope"], settings, now=Clock())

    assert outcomes(report) == {"epss": UPDATED, "kev": UPDATED}
    assert sorted(server.requested_paths()) == [EPSS, KEV]


# --- settings -------------------------------------------------------------------------------------


def test_feed_urls_come_from_the_environment() -> None:
    settings = SyncSettings.from_env({
        "PATCHPIPE_OSV_BASE": "http://mirror.internal/osv/",
        "PATCHPIPE_OSV_ECOSYSTEMS": "Debian",
        "PATCHPIPE_ALPINE_SECDB_BASE": "http://mirror.internal/secdb",
        "PATCHPIPE_ALPINE_RELEASES": "v3.20, v3.21",
        "PATCHPIPE_ALPINE_REPOSITORIES": "main",
        "PATCHPIPE_DEBIAN_TRACKER_URL": "",
        "PATCHPIPE_KEV_URL": "http://mirror.internal/kev.json",
        "PATCHPIPE_ADVISORY_MAX_AGE_HOURS": "12",
    })

    assert settings.feeds == (
        Feed("osv-debian", "osv", "http://mirror.internal/osv/Debian/all.zip"),
        Feed("alpine-secdb-v3.20-main", "alpine_secdb", "http://mirror.internal/secdb/v3.20/main.json"),
        Feed("alpine-secdb-v3.21-main", "alpine_secdb", "http://mirror.internal/secdb/v3.21/main.json"),
        Feed("kev", "kev", "http://mirror.internal/kev.json"),
        Feed("epss", "epss", "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"),
    )
    assert settings.max_age == timedelta(hours=12)


def test_the_defaults_name_every_public_feed() -> None:
    names = [feed.name for feed in SyncSettings.from_env({}).feeds]
    assert names == ["osv-debian", "osv-alpine", "osv-ubuntu", "debian-tracker", "alpine-secdb-v3.20-main",
                     "alpine-secdb-v3.20-community", "kev", "epss"]
    assert SyncSettings.from_env({}).max_age == timedelta(hours=48)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [("PATCHPIPE_ADVISORY_MAX_AGE_HOURS", "0", "a number"), ("PATCHPIPE_ADVISORY_MAX_AGE_HOURS", "two days", "a number"),
     ("PATCHPIPE_ADVISORY_ATTEMPTS", "1.5", "a whole number"), ("PATCHPIPE_ADVISORY_BACKOFF_SECONDS", "-1", "a number")],
)
def test_a_bad_number_is_refused(variable: str, value: str, expected: str) -> None:
    with pytest.raises(PatchpipeError) as error:
        SyncSettings.from_env({variable: value})
    assert str(error.value) == f"{variable}={value!r}: expected {expected} above 0"


def test_retries_come_from_the_environment() -> None:
    settings = SyncSettings.from_env({"PATCHPIPE_ADVISORY_ATTEMPTS": "2", "PATCHPIPE_ADVISORY_BACKOFF_SECONDS": "0.5"})
    assert settings.retry == RetryPolicy(attempts=2, backoff=0.5)
    assert SyncSettings.from_env({}).retry == RetryPolicy()


def test_feed_names_must_be_unique_and_sources_known() -> None:
    with pytest.raises(PatchpipeError, match="the name kev is used twice"):
        SyncSettings(feeds=(Feed("kev", "kev", "http://a"), Feed("kev", "kev", "http://b")))
    with pytest.raises(PatchpipeError, match="unknown source rss"):
        SyncSettings(feeds=(Feed("news", "rss", "http://a"),))


# --- import from files ----------------------------------------------------------------------------


def test_import_reads_a_directory_a_zip_and_single_files(engine, mirror: Path) -> None:
    from_directory = import_files(engine, "osv", [DATA / "osv-debian"], now=Clock())
    from_zip = import_files(engine, "osv", [mirror / OSV_ALPINE], feed="osv-alpine", now=Clock())
    from_file = import_files(engine, "epss", [mirror / EPSS], now=Clock())

    assert (from_directory.advisories, from_zip.advisories, from_file.epss) == (9, 1, 536)
    assert {state.name for state in source_states(engine)} == {"osv", "osv-alpine", "epss"}
    assert advisory(engine, "CVE-2014-3616").advisories[0].feed == "osv"


def test_import_parses_each_member_of_a_zip_for_sources_that_read_one_file(engine, tmp_path: Path) -> None:
    bundle = tmp_path / "secdb.zip"
    write_zip(bundle, [DATA / "alpine-secdb" / "expat.json", DATA / "alpine-secdb" / "zstd.json"])

    changes = import_files(engine, "alpine-secdb", [bundle], now=Clock())

    packages = {m.package for m in affected_packages(engine, "alpine", "v3.20", ["expat", "zstd", "busybox"])}
    assert packages == {"expat", "zstd"}
    assert changes.advisories == len({m.advisory_id for m in affected_packages(engine, "alpine", "v3.20",
                                                                                 ["expat", "zstd"])})


def test_import_of_a_broken_file_changes_nothing(engine, tmp_path: Path) -> None:
    import_files(engine, "kev", [DATA / "cisa-kev"], now=Clock())
    broken = tmp_path / "kev.json"
    broken.write_text('{"vulnerabilities": [')  # hand-written: cut off

    with pytest.raises(PatchpipeError, match="kev.json is not valid JSON"):
        import_files(engine, "kev", [broken], now=Clock(T0 + timedelta(hours=1)))

    assert feed_state(engine, "kev").kev == 1404


def test_import_names_paths_that_hold_nothing_to_import(engine, tmp_path: Path) -> None:
    with pytest.raises(PatchpipeError, match=f"{tmp_path / 'nope.json'}: no such file or directory"):
        import_files(engine, "osv", [tmp_path / "nope.json"])
    with pytest.raises(PatchpipeError, match=f"{tmp_path}: no .csv or .gz or .zip files in this directory"):
        import_files(engine, "epss", [tmp_path])
    with pytest.raises(PatchpipeError, match="unknown advisory source 'rss'"):
        import_files(engine, "rss", [tmp_path])


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, server: LocalHTTPServer, tmp_path: Path) -> str:
    """Environment that points the CLI's feeds at the local mirror; returns the --db URL."""
    monkeypatch.setenv("PATCHPIPE_OSV_BASE", server.url("osv"))
    monkeypatch.setenv("PATCHPIPE_OSV_ECOSYSTEMS", "Debian,Alpine")
    monkeypatch.setenv("PATCHPIPE_DEBIAN_TRACKER_URL", server.url(TRACKER))
    monkeypatch.setenv("PATCHPIPE_ALPINE_SECDB_BASE", server.url("secdb"))
    monkeypatch.setenv("PATCHPIPE_ALPINE_RELEASES", "v3.20")
    monkeypatch.setenv("PATCHPIPE_ALPINE_REPOSITORIES", "main")
    monkeypatch.setenv("PATCHPIPE_KEV_URL", server.url(KEV))
    monkeypatch.setenv("PATCHPIPE_EPSS_URL", server.url(EPSS))
    monkeypatch.setenv("PATCHPIPE_ADVISORY_ATTEMPTS", "2")
    monkeypatch.setenv("PATCHPIPE_ADVISORY_BACKOFF_SECONDS", "0.05")
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_cli_sync_then_sync_again_prints_each_feed(cli_env: str, capsys) -> None:
    assert main(["advisories", "sync", "--db", cli_env]) == 0
    first = capsys.readouterr().out.splitlines()
    assert main(["advisories", "sync", "--db", cli_env, "--source", "kev"]) == 0
    second = capsys.readouterr().out

    assert first[0] == "osv-debian               updated    9 advisories (9 new, 0 updated, 0 removed), 0 skipped"
    assert first[4] == "kev                      updated    1404 KEV entries (1404 new), 0 skipped"
    assert first[5] == "epss                     updated    536 EPSS scores, 0 skipped"
    assert second == "kev  unchanged  not modified\n"


def test_cli_sync_with_a_feed_down_warns_and_exits_1(cli_env: str, server: LocalHTTPServer, capsys) -> None:
    main(["advisories", "sync", "--db", cli_env])
    server.respond_with(EPSS, 502)
    capsys.readouterr()

    assert main(["advisories", "sync", "--db", cli_env, "--source", "epss", "--source", "kev"]) == 1

    out, err = capsys.readouterr()
    assert out.startswith("epss  failed     keeping data 0.0 h old: ")
    assert err.splitlines() == [
        f"patchpipe: {server.url(EPSS)}: HTTP 502 Bad Gateway; retrying in 0.1 s (attempt 2 of 2)",
        f"patchpipe: advisory sync: epss: sync failed, keeping data 0.0 h old: {server.url(EPSS)}: HTTP 502 Bad Gateway "
        "(gave up after 2 attempts)",
    ]


def test_cli_sync_of_a_feed_without_data_exits_2(cli_env: str, server: LocalHTTPServer, capsys) -> None:
    server.respond_with(KEV, 404)

    assert main(["advisories", "sync", "--db", cli_env, "--source", "kev"]) == 2

    out, err = capsys.readouterr()
    assert out.startswith("kev  failed     keeping data never fetched: ")
    failure = f"{server.url(KEV)}: HTTP 404 Not Found"
    assert err.splitlines() == [
        f"patchpipe: advisory sync: kev: sync failed, keeping data never fetched: {failure}",
        "patchpipe: error: advisory data older than the maximum age of 48 h:",
        f"  kev: data never fetched; last error: {failure}",
    ]


def test_cli_unknown_source_exits_2(cli_env: str, capsys) -> None:
    assert main(["advisories", "sync", "--db", cli_env, "--source", "osv"]) == 2
    assert capsys.readouterr().err == (
        "patchpipe: error: unknown advisory feed osv; configured feeds: osv-debian, osv-alpine, debian-tracker, "
        "alpine-secdb-v3.20-main, kev, epss\n")


def test_cli_import_show_and_status(cli_env: str, capsys) -> None:
    assert main(["advisories", "import", "--format", "osv", str(DATA / "osv-debian"), "--feed", "osv-debian",
                 "--db", cli_env]) == 0
    assert main(["advisories", "import", "--format", "epss", str(DATA / "epss"), "--db", cli_env]) == 0
    assert capsys.readouterr().out == (
        "osv-debian: 9 advisories (9 new, 0 updated, 0 removed), 0 skipped\n"
        "epss: 536 EPSS scores, 0 skipped\n")

    assert main(["advisories", "show", "cve-2014-3616", "--db", cli_env]) == 0
    assert capsys.readouterr().out == (
        "CVE-2014-3616  severity unknown, CVSS -, not in KEV\n"
        "also known as: DSA-3029-1\n"
        "\n"
        "DSA-3029-1  [osv-debian]  severity unknown, published 2014-09-20, modified 2014-09-20\n"
        "  aliases: CVE-2014-3616\n"
        "  nginx - security update\n"
        "  debian/wheezy nginx: fixed 1.2.1-2.2+wheezy3  [introduced=0 fixed=1.2.1-2.2+wheezy3]\n")

    assert main(["advisories", "status", "--db", cli_env]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["FEED", "LAST", "SUCCESS", "AGE", "STATE", "ADVISORIES", "AFFECTED", "KEV", "EPSS",
                                "SKIPPED"]
    assert lines[1].split()[0:1] + lines[1].split()[6:] == ["osv-debian", "fresh", "9", "9", "0", "0", "0"]
    assert lines[2].split() == ["osv-alpine", "never", "-", "NEVER", "SYNCED", "-", "-", "-", "-", "-"]
    assert lines[6].split()[0:1] + lines[6].split()[6:] == ["epss", "fresh", "0", "0", "0", "536", "0"]


def test_cli_show_of_an_unknown_id_exits_1(cli_env: str, capsys) -> None:
    assert main(["advisories", "show", "CVE-2099-0404", "--db", cli_env]) == 1
    assert capsys.readouterr().err.startswith("patchpipe: CVE-2099-0404: not in the advisory store (sqlite:///")


def test_cli_import_of_a_missing_path_exits_2(cli_env: str, tmp_path: Path, capsys) -> None:
    assert main(["advisories", "import", "--format", "kev", str(tmp_path / "none.json"), "--db", cli_env]) == 2
    assert capsys.readouterr().err == f"patchpipe: error: {tmp_path / 'none.json'}: no such file or directory\n"


def test_cli_help_shows_commands_and_examples(capsys) -> None:
    assert main(["advisories", "--help"]) == 0
    text = capsys.readouterr().out
    for expected in ("sync", "import", "show", "status", "patchpipe advisories show CVE-2024-8176"):
        assert expected in text
    assert main(["advisories", "import", "--help"]) == 0
    assert "{osv,debian-tracker,alpine-secdb,kev,epss}" in capsys.readouterr().out
