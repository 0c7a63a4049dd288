"""A backfill of three missed patch windows with the scheduler running: one run patches, the others
are recorded no-ops; no image is pushed twice and no service updated twice.

Airflow runs as it does in production, minus the UI: an api-server (the task execution API), the
scheduler with the LocalExecutor and the dag-processor, on the runner's SQLite metadata database.
`airflow backfill create` asks for the windows of three past Saturdays, one run at a time.
"""

from __future__ import annotations

import pytest

from support.airflow_services import airflow_cli, airflow_services, wait_for, wait_for_dag
from support.dag_runs import REPO, make_runner, reset_lab
from patchpipe import db
from patchpipe.fleet import load_fleet
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome

FLEET = load_fleet(REPO / "include" / "fleet.yaml")
REPOSITORIES = ("base/debian", "demo/web", "vendor/app")
WINDOWS = ("2026-11-07", "2026-11-14", "2026-11-21")  # Saturdays: the default window opens at 02:00


@pytest.fixture
def airflow(tmp_path):
    """The runner, with an api-server, a scheduler and a dag-processor on its metadata database."""
    runner = make_runner(tmp_path / "airflow", REPO / "include" / "fleet.yaml")
    db.create_schema(db.make_engine(runner.env["PATCHPIPE_DB"]))  # the ledger is polled before the first run
    with airflow_services(runner, ["scheduler", "dag-processor"], executor="LocalExecutor",
                          AIRFLOW__CORE__PARALLELISM="4"):
        yield runner


def test_a_backfill_of_three_missed_windows_patches_once(airflow, docker_api):
    reset_lab()
    registry = RegistryClient("127.0.0.1:5000")
    tags_before = {r: set(registry.list_tags(r)) for r in REPOSITORIES}
    wait_for_dag(airflow)

    created = airflow_cli(airflow, "backfill", "create", "--dag-id", "patch_lifecycle", "--max-active-runs", "1",
                          "--from-date", WINDOWS[0], "--to-date", f"{WINDOWS[-1]}T23:59:59")
    assert created.returncode == 0, created.stdout + created.stderr
    # The scheduler starts a paused DAG's backfill runs only once it is unpaused; catchup is off, so
    # unpausing adds no scheduled run of the missed windows.
    unpaused = airflow_cli(airflow, "dags", "unpause", "patch_lifecycle")
    assert unpaused.returncode == 0, unpaused.stdout + unpaused.stderr

    def finished_runs():
        return [r for r in airflow.ledger().runs() if r.finished_at is not None]

    wait_for("the three backfill runs did not finish", lambda: len(finished_runs()) == 3, 2400)

    ledger = airflow.ledger()
    runs = sorted(ledger.runs(), key=lambda r: r.window_end)
    assert [r.run_type.value for r in runs] == ["backfill"] * 3
    ends = [r.window_end for r in runs]
    assert len(set(ends)) == 3 and all((e.weekday(), e.hour) == (5, 2) for e in ends), ends  # three Saturday windows
    outcomes = [{r.image: r.status for r in ledger.run_summary(run.run_id)} for run in runs]
    assert set(outcomes[0].values()) == {ImageStatus.PROMOTED}, outcomes[0]
    for later in outcomes[1:]:
        assert set(later.values()) == {ImageStatus.NOOP}, later  # production is patched: nothing left

    new_tags = {r: set(registry.list_tags(r)) - tags_before[r] for r in REPOSITORIES}
    assert all(len(tags) == 1 for tags in new_tags.values()), new_tags  # one candidate each, pushed once
    updates = [s for run in runs for s in ledger.stage_results(run.run_id)
               if s.stage in ("deploy_staging", "promote") and s.outcome == StageOutcome.SUCCESS]
    per_image = {}
    for stage in updates:
        per_image.setdefault((stage.image, stage.stage), []).append(stage.run_id)
    assert all(len(run_ids) == 1 for run_ids in per_image.values()), per_image
    assert {image for image, _ in per_image} == {"debian-bookworm", "demo-web", "vendor-app"}
