"""
### advisory_sync

Keeps the advisory store fresh: OSV (Debian, Alpine, Ubuntu bulk archives), the Debian Security
Tracker, Alpine secdb, CISA KEV and FIRST EPSS. Every URL is configuration (see
`plugins/patchpipe/advisories/settings.py`): an air-gapped site points them at its own mirror.

- Conditional GET: an unchanged feed costs one `304`.
- A feed that is down keeps its last good data, marked stale with its age; the run ends with a
  warning and fails only when a feed's data is older than `PATCHPIPE_ADVISORY_MAX_AGE_HOURS`.
- A record that fails validation is skipped, counted and logged with its id; a truncated or invalid
  feed changes nothing.

Each run emits the Asset `patchpipe://advisories`; its extra lists, per feed, the new and updated
advisory ids and the new KEV entries.
"""

import os

import pendulum
from airflow.sdk import DAG

from patchpipe.airflow.assets import ADVISORIES
from patchpipe.airflow.operators.sync_advisories import SyncAdvisoriesOperator

with DAG(
    dag_id="advisory_sync",
    doc_md=__doc__,
    schedule=os.environ.get("PATCHPIPE_ADVISORY_SCHEDULE", "@hourly"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "platform", "retries": 1, "retry_delay": pendulum.duration(minutes=5)},
    tags=["patchpipe", "advisories"],
) as dag:
    SyncAdvisoriesOperator(task_id="sync_advisories", outlets=[ADVISORIES])
