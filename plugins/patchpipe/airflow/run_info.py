"""Facts about the current DAG run, read safely: in Airflow 3 ``logical_date`` and the data interval
are None for manual and asset-triggered runs, so nothing here indexes them directly."""

from __future__ import annotations

from datetime import date, datetime, timezone

from patchpipe.emergency import Trigger


def run_day(context) -> date:
    """The day a candidate is named after: the window's logical date, else when the run started."""
    when = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    return (when or datetime.now(timezone.utc)).date()


def run_facts(context) -> dict:
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    return {
        "run_id": context["run_id"],
        "run_type": getattr(run_type, "value", run_type) or "manual",
        "logical_date": context.get("logical_date"),
        "window_start": context.get("data_interval_start"),
        "window_end": context.get("data_interval_end"),
    }


def emergency_trigger(context) -> Trigger | None:
    """For a run started by the advisory Asset: what the sync reported; None for any other run."""
    run_type = getattr(getattr(context.get("dag_run"), "run_type", None), "value", None)
    if run_type != "asset_triggered":
        return None
    events = context.get("triggering_asset_events") or {}
    return Trigger.from_asset_extras(event.extra for asset_events in events.values() for event in asset_events)
