"""The advisory store on a real PostgreSQL server (Debian's ``postgresql``, started by the tests).

The store's own tests (tests/unit/test_advisory_store_records.py) run on PostgreSQL too; these add
what only a server shows: a whole sync of every real feed over HTTP, a reader during a feed's swap,
and a generated OSV archive large enough for many INSERT batches. No lab needed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bench.osv_corpus import write_corpus
from patchpipe.advisories.http import RetryPolicy
from patchpipe.advisories.records import Advisory
from patchpipe.advisories.settings import SyncSettings
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import FeedOrigin, advisory, affected_packages, feed_state, replace_feed, source_states
from patchpipe.advisories.sync import UNCHANGED, UPDATED, import_files, sync
from patchpipe.advisories.tables import AffectedRow
from patchpipe.db import create_schema, make_engine
from support.http_server import LocalHTTPServer
from support.postgres import postgres_server  # noqa: F401  (a fixture)
from unit.test_advisory_sync import COUNTS, PATHS, Clock, build_mirror, feeds_on

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)


@pytest.fixture
def engine(postgres_server):  # noqa: F811
    engine = make_engine(postgres_server.create_database("sync"))
    create_schema(engine)
    yield engine
    engine.dispose()


def test_the_server_is_postgresql(engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("select version()")).scalar().startswith("PostgreSQL ")


def test_every_real_feed_syncs_into_postgresql_and_the_second_sync_is_all_304(engine, tmp_path: Path) -> None:
    with LocalHTTPServer(build_mirror(tmp_path / "mirror"), etag=True) as server:
        settings = SyncSettings(feeds=feeds_on(server), retry=RetryPolicy(attempts=2, backoff=0.05),
                                download_dir=tmp_path)
        first = sync(engine, settings=settings, now=Clock(T0))
        server.reset()
        second = sync(engine, settings=settings, now=Clock(T0 + timedelta(hours=1)))

    assert {r.feed: r.outcome for r in first.results} == dict.fromkeys(PATHS, UPDATED)
    assert {r.feed: r.outcome for r in second.results} == dict.fromkeys(PATHS, UNCHANGED)
    assert len(server.requests) == len(PATHS)
    assert {state.name: state.advisories for state in source_states(engine)} == COUNTS
    [musl] = affected_packages(engine, "alpine", "v3.20", ["musl"])
    assert musl.fixed_version == "1.2.5-r1" and musl.events[0].version == "0.9.13"
    assert advisory(engine, "CVE-2024-8176").epss[0].percentile == 0.6986
    assert json.dumps(first.asset_extra())


def test_a_reader_during_a_swap_sees_the_old_copy_until_the_commit(engine) -> None:
    import_files(engine, "osv", [DATA / "osv-debian"], feed="osv-debian")
    seen_during: list[list[str]] = []

    def new_copy():
        with (DATA / "osv-debian" / "DSA-3029-1.json").open("rb") as payload:
            yield from SOURCES["osv"].parse(payload, "DSA-3029-1.json")
        # By now the writer has deleted the old rows and inserted the new copy, uncommitted.
        seen_during.append([m.advisory_id for m in affected_packages(engine, "debian", "stretch", ["openssl"])])

    replace_feed(engine, "osv-debian", FeedOrigin("osv", "x"), new_copy(), at=T0)

    assert seen_during == [["DLA-3008-1"]]
    assert affected_packages(engine, "debian", "stretch", ["openssl"]) == []
    assert feed_state(engine, "osv-debian").advisories == 1


def test_a_generated_archive_of_many_batches_is_stored_whole(engine, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "all.zip", 12_000)

    changes = import_files(engine, "osv", [corpus.path], feed="osv-bench")

    assert (changes.advisories, changes.affected, changes.skipped) == (12_000, corpus.affected, 0)
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(AffectedRow).where(AffectedRow.feed == "osv-bench"))
    assert stored == corpus.affected
    again = import_files(engine, "osv", [corpus.path], feed="osv-bench")
    assert (again.new_ids, again.updated_ids, again.removed_ids) == ((), (), ())
    assert isinstance(advisory(engine, changes.new_ids[0]).advisories[0].advisory, Advisory)
