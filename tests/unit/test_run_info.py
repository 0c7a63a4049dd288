"""Facts about a DAG run read from a task context, including manual runs whose logical_date is None."""

from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType

from patchpipe.airflow.run_info import run_day, run_facts
from patchpipe.ledger.models import RunType

WINDOW_START = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
WINDOW_END = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
TRIGGERED = datetime(2026, 12, 3, 23, 59, 59, tzinfo=timezone.utc)


def dag_run(run_type: DagRunType, *, logical_date: datetime | None, run_after: datetime) -> DagRun:
    """The Task SDK's own DagRun model: what ``context["dag_run"]`` is inside a running task."""
    scheduled = logical_date is not None
    return DagRun(
        dag_id="patch_lifecycle", run_id="r", logical_date=logical_date,
        data_interval_start=WINDOW_START if scheduled else None, data_interval_end=WINDOW_END if scheduled else None,
        run_after=run_after, start_date=run_after, end_date=None, run_type=run_type, state=DagRunState.RUNNING,
        consumed_asset_events=[], partition_key=None,
    )


def scheduled_context() -> dict:
    return {
        "run_id": "scheduled__2026-11-28T02:00:00+00:00",
        "logical_date": WINDOW_END,
        "data_interval_start": WINDOW_START,
        "data_interval_end": WINDOW_END,
        "dag_run": dag_run(DagRunType.SCHEDULED, logical_date=WINDOW_END, run_after=WINDOW_END),
    }


def manual_context() -> dict:
    # Airflow 3: a manual run has no logical date and no data interval (keys present, values None).
    return {
        "run_id": "manual__2026-12-03T23:59:59+00:00",
        "logical_date": None,
        "data_interval_start": None,
        "data_interval_end": None,
        "dag_run": dag_run(DagRunType.MANUAL, logical_date=None, run_after=TRIGGERED),
    }


# --- run_day -------------------------------------------------------------------------------------


def test_a_scheduled_run_is_named_after_its_logical_date() -> None:
    assert run_day(scheduled_context()) == date(2026, 11, 28)


def test_a_manual_run_without_a_logical_date_uses_when_it_was_triggered() -> None:
    assert run_day(manual_context()) == date(2026, 12, 3)


def test_without_a_logical_date_or_a_dag_run_the_day_is_today_in_utc() -> None:
    before = datetime.now(timezone.utc).date()
    day = run_day({"run_id": "x", "logical_date": None})
    after = datetime.now(timezone.utc).date()
    assert before <= day <= after


def test_a_dag_run_without_run_after_falls_back_to_today() -> None:
    before = datetime.now(timezone.utc).date()
    day = run_day({"logical_date": None, "dag_run": SimpleNamespace(run_after=None)})
    assert before <= day <= datetime.now(timezone.utc).date()


def test_run_day_does_not_need_the_logical_date_key_at_all() -> None:
    context = manual_context()
    del context["logical_date"]
    assert run_day(context) == date(2026, 12, 3)


# --- run_facts -----------------------------------------------------------------------------------


def test_facts_of_a_scheduled_run() -> None:
    assert run_facts(scheduled_context()) == {
        "run_id": "scheduled__2026-11-28T02:00:00+00:00",
        "run_type": "scheduled",
        "logical_date": WINDOW_END,
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
    }


def test_facts_of_a_manual_run_have_no_dates() -> None:
    assert run_facts(manual_context()) == {
        "run_id": "manual__2026-12-03T23:59:59+00:00",
        "run_type": "manual",
        "logical_date": None,
        "window_start": None,
        "window_end": None,
    }


@pytest.mark.parametrize("run_type", list(DagRunType))
def test_the_run_type_is_the_plain_value_of_the_enum(run_type: DagRunType) -> None:
    context = {"run_id": "r", "dag_run": dag_run(run_type, logical_date=None, run_after=TRIGGERED)}
    facts = run_facts(context)
    assert facts["run_type"] == run_type.value
    assert type(facts["run_type"]) is str
    assert RunType(facts["run_type"]).value == run_type.value  # the ledger accepts every kind of run


def test_a_run_type_given_as_a_string_is_kept() -> None:
    assert run_facts({"run_id": "r", "dag_run": SimpleNamespace(run_type="backfill")})["run_type"] == "backfill"


def test_without_a_dag_run_the_run_type_is_manual() -> None:
    assert run_facts({"run_id": "r"})["run_type"] == "manual"
    assert run_facts({"run_id": "r", "dag_run": SimpleNamespace(run_type=None)})["run_type"] == "manual"


def test_missing_interval_keys_read_as_none() -> None:
    facts = run_facts({"run_id": "r"})
    assert (facts["logical_date"], facts["window_start"], facts["window_end"]) == (None, None, None)
