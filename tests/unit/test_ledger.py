"""The patch ledger on a real SQLite file: idempotent writes, summaries, history, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from patchpipe.db import create_schema, database_url, make_engine
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import ImageResult, ImageStatus, PatchRun, RunStatus, RunType, StageOutcome, StageResult
from patchpipe.ledger.store import Ledger, PackageChange

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_OLD = "sha256:" + "0" * 64


class StepClock:
    """Each call is one second after the previous: deterministic updated_at ordering."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def engine(patchpipe_engine):
    """SQLite, and a real PostgreSQL server (marked integration)."""
    return patchpipe_engine


@pytest.fixture
def ledger(engine) -> Ledger:
    return Ledger(engine, clock=StepClock())


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_recording_an_image_twice_updates_one_row(engine, ledger: Ledger) -> None:
    ledger.start_run("scheduled__2026-11-24T02:00:00+00:00", RunType.SCHEDULED, logical_date=T0)
    run = "scheduled__2026-11-24T02:00:00+00:00"

    ledger.record_image(run, "web", status="patched", kind="debian", before_digest=DIGEST_OLD,
                        candidate_tag="patched-1", after_digest=DIGEST_A)
    again = ledger.record_image(run, "web", status=ImageStatus.PROMOTED)

    assert count(engine, ImageResult) == 1
    assert again.status is ImageStatus.PROMOTED
    assert (again.kind, again.before_digest, again.after_digest) == ("debian", DIGEST_OLD, DIGEST_A)
    assert ledger.run_summary(run) == [again]


def test_a_task_rerun_records_its_stage_once(engine, ledger: Ledger) -> None:
    run = "manual__2026-11-24T03:00:00+00:00"
    ledger.start_run(run, "manual")

    ledger.record_stage(run, "web", "patch", "failed", T0, 12.5, {"error": "apt-get exited 100"})
    stage = ledger.record_stage(run, "web", "patch", StageOutcome.SUCCESS, T0 + timedelta(minutes=5), 30.0,
                                {"upgraded": ["perl-base"]})

    assert count(engine, StageResult) == 1
    assert ledger.stage_results(run) == [stage]
    assert stage.outcome is StageOutcome.SUCCESS
    assert stage.started_at == T0 + timedelta(minutes=5)
    assert stage.detail == {"upgraded": ["perl-base"]}


def test_starting_a_run_again_reopens_it(engine, ledger: Ledger) -> None:
    first = ledger.start_run("backfill__1", RunType.BACKFILL, window_start=T0, window_end=T0 + timedelta(days=1))
    ledger.finish_run("backfill__1", RunStatus.FAILED)

    again = ledger.start_run("backfill__1", "backfill", window_start=T0, window_end=T0 + timedelta(days=1))

    assert count(engine, PatchRun) == 1
    assert again.status is RunStatus.RUNNING
    assert again.finished_at is None
    assert again.started_at == first.started_at


def test_a_manual_run_has_no_logical_date(ledger: Ledger) -> None:
    ledger.start_run("manual__x", RunType.MANUAL, logical_date=None)
    finished = ledger.finish_run("manual__x", "success")

    stored = ledger.get_run("manual__x")
    assert stored == finished
    assert stored.logical_date is None and stored.window_start is None
    assert stored.status is RunStatus.SUCCESS
    assert stored.finished_at is not None and stored.finished_at > stored.started_at


def test_times_come_back_aware_in_utc(ledger: Ledger) -> None:
    local = timezone(timedelta(hours=2))
    ledger.start_run("run", "scheduled", logical_date=T0.astimezone(local), started_at=T0.astimezone(local))

    stored = ledger.get_run("run")

    assert stored.logical_date == T0 and stored.logical_date.tzinfo == timezone.utc
    assert stored.started_at.utcoffset() == timedelta(0)


def test_run_summary_lists_each_image_with_its_packages(ledger: Ledger) -> None:
    ledger.start_run("run-1", "scheduled")
    ledger.record_image("run-1", "worker", status="noop")
    ledger.record_image(
        "run-1", "api", status="planned",
        packages=[PackageChange("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u4"),
                  {"name": "tzdata", "from": "2025b-0+deb12u1", "to": "2026f-0+deb12u1"}],
    )
    ledger.record_image("run-1", "web", status="failed", failure_stage="smoke", failure_reason="GET /health: 503")

    summary = ledger.run_summary("run-1")

    assert [(row.image, row.status) for row in summary] == [
        ("api", ImageStatus.PLANNED), ("web", ImageStatus.FAILED), ("worker", ImageStatus.NOOP)]
    assert summary[0].packages == (
        PackageChange("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u4"),
        PackageChange("tzdata", "2025b-0+deb12u1", "2026f-0+deb12u1"),
    )
    assert (summary[1].failure_stage, summary[1].failure_reason) == ("smoke", "GET /health: 503")
    assert ledger.run_summary("no-such-run") == []


def test_packages_are_stored_as_name_from_to(engine, ledger: Ledger) -> None:
    ledger.start_run("run-1", "scheduled")
    ledger.record_image("run-1", "api", status="patched", packages=[PackageChange("apt", "2.6.1", "2.6.2")])

    with engine.connect() as connection:
        stored = connection.execute(select(ImageResult.packages)).scalar_one()

    assert stored == [{"name": "apt", "from": "2.6.1", "to": "2.6.2"}]


def test_last_promoted_ignores_later_failures_and_rollbacks(ledger: Ledger) -> None:
    assert ledger.last_promoted("web") is None
    for run in ("run-1", "run-2", "run-3", "run-4"):
        ledger.start_run(run, "scheduled")
    ledger.record_image("run-1", "web", status="promoted", after_digest=DIGEST_A)
    ledger.record_image("run-2", "web", status="failed", failure_stage="verify")
    ledger.record_image("run-3", "web", status="rolled_back", after_digest=DIGEST_B)
    ledger.record_image("run-3", "api", status="promoted", after_digest=DIGEST_B)

    assert ledger.last_promoted("web").after_digest == DIGEST_A
    assert ledger.last_promoted("web").run_id == "run-1"

    ledger.record_image("run-4", "web", status="promoted", after_digest=DIGEST_B)
    assert ledger.last_promoted("web").run_id == "run-4"


def test_image_history_is_newest_first(ledger: Ledger) -> None:
    for run in ("run-1", "run-2", "run-3"):
        ledger.start_run(run, "scheduled")
        ledger.record_image(run, "web", status="noop")
    ledger.record_image("run-1", "web", status="promoted")  # run-1's row changed last

    history = ledger.image_history("web")

    assert [row.run_id for row in history] == ["run-1", "run-3", "run-2"]
    assert [row.run_id for row in ledger.image_history("web", limit=1)] == ["run-1"]
    assert ledger.image_history("api") == []


def test_writes_for_a_run_never_started_are_refused(ledger: Ledger) -> None:
    with pytest.raises(PatchpipeError, match="patch run 'ghost' is not in the ledger"):
        ledger.record_image("ghost", "web", status="noop")
    with pytest.raises(PatchpipeError, match="patch run 'ghost' is not in the ledger"):
        ledger.record_stage("ghost", "web", "patch", "success", T0, 1.0)
    with pytest.raises(PatchpipeError, match="patch run 'ghost' is not in the ledger"):
        ledger.finish_run("ghost", "success")


def test_bad_values_are_refused_with_the_allowed_ones(engine, ledger: Ledger) -> None:
    ledger.start_run("run-1", "scheduled")

    with pytest.raises(PatchpipeError, match="image status 'deployed' is not one of: noop, planned, patched"):
        ledger.record_image("run-1", "web", status="deployed")
    with pytest.raises(PatchpipeError, match="stage outcome 'ok' is not one of: success, skipped, failed"):
        ledger.record_stage("run-1", "web", "patch", "ok", T0, 1.0)
    with pytest.raises(PatchpipeError, match="run type 'cron' is not one of"):
        ledger.start_run("run-2", "cron")
    with pytest.raises(PatchpipeError, match="first record of image 'web' in run 'run-1' must give its status"):
        ledger.record_image("run-1", "web", after_digest=DIGEST_A)
    with pytest.raises(PatchpipeError, match="needs 'name' and 'to'"):
        ledger.record_image("run-1", "web", status="patched", packages=[{"name": "apt"}])
    with pytest.raises(TypeError, match="unknown fields \\['digest'\\]"):
        ledger.record_image("run-1", "web", status="noop", digest=DIGEST_A)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        ledger.record_stage("run-1", "web", "patch", "success", T0, 1.0, {"at": T0})
    with pytest.raises(ValueError, match="naive"):
        ledger.record_stage("run-1", "web", "patch", "success", datetime(2026, 11, 24), 1.0)
    assert count(engine, ImageResult) == 0
    assert count(engine, StageResult) == 0


def test_concurrent_tasks_on_separate_connections_all_land(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    setup = make_engine(url)
    create_schema(setup)
    Ledger(setup).start_run("run-1", "scheduled")
    errors: list[BaseException] = []
    images = [f"image-{n}" for n in range(8)]

    def task(image: str) -> None:
        engine = make_engine(url)  # like a separate Airflow task process
        try:
            ledger = Ledger(engine)
            for attempt in range(15):
                ledger.record_stage("run-1", image, "patch", "success", T0, float(attempt), {"attempt": attempt})
                ledger.record_image("run-1", image, status="patched", candidate_tag=f"attempt-{attempt}")
        except BaseException as exc:  # noqa: BLE001  # reported below, in the test thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=task, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    summary = Ledger(setup).run_summary("run-1")
    assert [(row.image, row.candidate_tag) for row in summary] == [(image, "attempt-14") for image in images]
    assert count(setup, StageResult) == len(images)
    setup.dispose()


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_database_url_prefers_patchpipe_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPIPE_DB", "postgresql+psycopg://patchpipe@db.example/patchpipe")

    assert database_url() == "postgresql+psycopg://patchpipe@db.example/patchpipe"


def test_database_url_defaults_to_sqlite_in_airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHPIPE_DB", raising=False)
    home = tmp_path / "airflow-home"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))

    url = database_url()

    assert url == f"sqlite:///{home / 'patchpipe.db'}"
    assert home.is_dir()
    engine = make_engine(url)
    create_schema(engine)
    with engine.connect() as connection:
        tables = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
    engine.dispose()
    assert {"patch_runs", "image_results", "stage_results",
            "security_archive_packages", "security_archive_fetches"} <= tables


def test_a_malformed_database_url_is_a_clear_error_without_echoing_it() -> None:
    with pytest.raises(PatchpipeError, match="is not a SQLAlchemy URL") as error:
        make_engine("not a url:secret@")

    assert "secret" not in str(error.value)
