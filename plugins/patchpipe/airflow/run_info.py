"""Facts about the current DAG run, read safely: in Airflow 3 ``logical_date`` and the data interval
are None for manual and asset-triggered runs, so nothing here indexes them directly."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from patchpipe.run_options import RunOptions

if TYPE_CHECKING:
    from patchpipe.emergency import Trigger

SCHEDULED = ("scheduled", "backfill")  # the run types a patch window applies to


def run_day(context) -> date:
    """The day a candidate is named after: the window's logical date, else when the run started."""
    when = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None)
    return (when or datetime.now(timezone.utc)).date()


def run_facts(context) -> dict:
    return {
        "run_id": context["run_id"],
        "run_type": run_type(context),
        "logical_date": context.get("logical_date"),
        "window_start": context.get("data_interval_start"),
        "window_end": context.get("data_interval_end"),
    }


def emergency_trigger(context) -> Trigger | None:
    """For a run started by the advisory Asset: what the sync reported; None for any other run."""
    if run_type(context) != "asset_triggered":
        return None
    from patchpipe.emergency import Trigger  # the advisory store's tables: not for every DAG parse

    events = context.get("triggering_asset_events") or {}
    return Trigger.from_asset_extras(event.extra for asset_events in events.values() for event in asset_events)


def run_type(context) -> str:
    kind = getattr(context.get("dag_run"), "run_type", None)
    return getattr(kind, "value", kind) or "manual"


def run_options(context, fleet) -> RunOptions:
    """The trigger form's Params, checked against the fleet (PatchpipeError naming a bad one)."""
    return RunOptions.from_params(context.get("params"), fleet.image_names)


def window_time(context) -> datetime | None:
    """When a scheduled or backfill run's window is judged: the end of its data interval."""
    if run_type(context) not in SCHEDULED:
        return None
    return context.get("data_interval_end") or getattr(context.get("dag_run"), "run_after", None)
