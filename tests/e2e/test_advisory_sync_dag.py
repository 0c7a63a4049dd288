"""advisory_sync end to end: the DAG syncs every feed from a local mirror of the real files and
emits the patchpipe://advisories Asset with what changed; a second run costs one 304 per feed."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from patchpipe import db
from patchpipe.advisories.store import advisory, kev, source_states
from support.dag_runs import REPO, make_runner
from support.http_server import serve_directory

DATA = REPO.parent / "shared" / "data" / "advisories"


def build_mirror(root: Path) -> None:
    """The real files, laid out the way the upstream feeds publish them."""
    for ecosystem, folder in (("Debian", "osv-debian"), ("Alpine", "osv-alpine")):
        (root / "osv" / ecosystem).mkdir(parents=True)
        with zipfile.ZipFile(root / "osv" / ecosystem / "all.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((DATA / folder).glob("*.json")):
                archive.write(path, path.name)
    (root / "secdb" / "v3.20").mkdir(parents=True)
    shutil.copy(DATA / "alpine-secdb" / "v3.20-main.json", root / "secdb" / "v3.20" / "main.json")
    shutil.copy(DATA / "debian-security-tracker" / "debian.json", root / "tracker.json")
    shutil.copy(DATA / "cisa-kev" / "known_exploited_vulnerabilities.json", root / "kev.json")
    shutil.copy(DATA / "epss" / "epss_scores-current.sample.csv", root / "epss.csv")


def asset_events(airflow_home: Path) -> list[dict]:
    with sqlite3.connect(airflow_home / "airflow.db") as connection:
        rows = connection.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri LIKE 'patchpipe://advisories%' ORDER BY e.id").fetchall()
    return [json.loads(extra) if isinstance(extra, str) else extra for (extra,) in rows]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    mirror = tmp_path_factory.mktemp("mirror")
    build_mirror(mirror)
    with serve_directory(mirror, etag=True) as server:
        runner = make_runner(tmp_path_factory.mktemp("airflow"), REPO / "include" / "fleet.yaml")
        runner.env.update({
            "PATCHPIPE_OSV_BASE": server.url("osv"),
            "PATCHPIPE_OSV_ECOSYSTEMS": "Debian,Alpine",
            "PATCHPIPE_DEBIAN_TRACKER_URL": server.url("tracker.json"),
            "PATCHPIPE_ALPINE_SECDB_BASE": server.url("secdb"),
            "PATCHPIPE_ALPINE_REPOSITORIES": "main",
            "PATCHPIPE_KEV_URL": server.url("kev.json"),
            "PATCHPIPE_EPSS_URL": server.url("epss.csv"),
        })
        first = runner.run("advisory_sync")
        requests_after_first = len(server.requests)
        second = runner.run("advisory_sync")
        yield runner, first, second, len(server.requests) - requests_after_first


def test_both_runs_succeed(synced):
    _, first, second, _ = synced
    assert first.returncode == 0, first.log.read_text()[-4000:]
    assert second.returncode == 0, second.log.read_text()[-4000:]


def test_every_feed_is_in_the_store(synced):
    runner, *_ = synced
    engine = db.make_engine(runner.env["PATCHPIPE_DB"])
    states = {state.name: state for state in source_states(engine)}
    assert set(states) == {"osv-debian", "osv-alpine", "debian-tracker", "alpine-secdb-v3.20-main", "kev", "epss"}
    assert all(not state.stale for state in states.values())
    assert advisory(engine, "DSA-3029-1") is not None
    assert advisory(engine, "ALPINE-CVE-2025-26519") is not None
    assert kev(engine, "CVE-2021-44228") is not None  # log4shell is in the KEV catalog


def test_the_first_run_emits_what_changed_and_the_second_only_304s(synced):
    runner, _, _, second_requests = synced
    first, second = asset_events(runner.home)[-2:]
    assert first["feeds"]["kev"]["outcome"] == "updated"
    assert first["feeds"]["kev"]["new_kev_count"] == 1404
    assert first["feeds"]["osv-debian"]["new_count"] == len(list((DATA / "osv-debian").glob("*.json")))
    assert {feed["outcome"] for feed in second["feeds"].values()} == {"unchanged"}
    assert second_requests == 6  # one conditional GET per feed, each answered 304
