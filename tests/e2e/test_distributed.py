"""patch_lifecycle on Airflow's distributed set-up: CeleryExecutor, PostgreSQL, Redis, two workers.

Everything runs as processes from Debian's packages and the project's virtualenv, as
docker-compose.yml runs it in containers: a throwaway PostgreSQL server holds Airflow's metadata
database, Celery's results and the patch ledger; a throwaway Redis is the Celery broker; an
api-server, the scheduler, the dag-processor and two Celery workers run on them. The run patches the
lab fleet from its original, unpatched images, and the metadata database must show that both workers
ran tasks of it (each worker records its own name as the task's hostname: support/worker_hostname.py).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from support.airflow_services import airflow_cli, airflow_services, wait_for, wait_for_dag
from support.dag_runs import REPO, make_runner, reset_lab
from support.redis import running_redis
from patchpipe import db
from patchpipe.ledger.models import ImageStatus

pytestmark = pytest.mark.distributed

WORKERS = ("worker-1", "worker-2")
RUN_ID = "distributed-celery-run"


def celery_worker(name: str):
    """A worker named ``name``, without the log server (two on one machine would both bind its port)."""
    return (name, ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "2", "--skip-serve-logs"],
            {"PATCHPIPE_TEST_WORKER": name, "PYTHONPATH": str(REPO / "tests"),
             "AIRFLOW__CORE__HOSTNAME_CALLABLE": "support.worker_hostname.hostname"})


@pytest.fixture
def celery_airflow(tmp_path, postgres_server):
    metadata = postgres_server.create_database("airflow")
    with running_redis() as broker:
        runner = make_runner(tmp_path / "airflow", REPO / "include" / "fleet.yaml",
                             AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata,
                             # Airflow's async engine would pick asyncpg for PostgreSQL; psycopg 3 does both.
                             AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=metadata,
                             AIRFLOW__CELERY__BROKER_URL=broker,
                             AIRFLOW__CELERY__RESULT_BACKEND=f"db+{metadata}")
        runner.env["PATCHPIPE_DB"] = postgres_server.create_database("ledger")
        # A yearly window that has not closed since the DAG's start date: unpausing schedules no run of its own.
        runner.env["PATCHPIPE_PATCH_WINDOW"] = "0 0 1 1 *"
        db.create_schema(db.make_engine(runner.env["PATCHPIPE_DB"]))
        with airflow_services(runner, ["scheduler", "dag-processor", *map(celery_worker, WORKERS)],
                              executor="CeleryExecutor", AIRFLOW__CORE__PARALLELISM="8"):
            yield runner


def run_state(metadata: sa.Engine) -> str | None:
    with metadata.connect() as connection:
        return connection.execute(sa.text("SELECT state FROM dag_run WHERE run_id = :run_id"),
                                  {"run_id": RUN_ID}).scalar()


def test_patch_lifecycle_runs_to_success_on_two_celery_workers(celery_airflow, docker_api):
    reset_lab()
    wait_for_dag(celery_airflow)
    triggered = airflow_cli(celery_airflow, "dags", "trigger", "patch_lifecycle", "--run-id", RUN_ID)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    unpaused = airflow_cli(celery_airflow, "dags", "unpause", "patch_lifecycle")
    assert unpaused.returncode == 0, unpaused.stdout + unpaused.stderr

    metadata = sa.create_engine(celery_airflow.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    wait_for("the run did not finish", lambda: run_state(metadata) in ("success", "failed"), 1800, every=10)
    with metadata.connect() as connection:
        tasks = connection.execute(sa.text(
            "SELECT task_id, map_index, state, hostname FROM task_instance WHERE run_id = :run_id"),
            {"run_id": RUN_ID}).all()
        celery_results = connection.execute(sa.text("SELECT count(*) FROM celery_taskmeta")).scalar()
    failed = [(t.task_id, t.map_index) for t in tasks if t.state not in ("success", "skipped")]
    assert run_state(metadata) == "success", f"tasks not successful: {failed}"

    ran = [t for t in tasks if t.state == "success"]
    by_worker = {worker: sum(t.hostname == worker for t in ran) for worker in WORKERS}
    assert all(count > 0 for count in by_worker.values()), by_worker  # both workers took tasks
    assert sum(by_worker.values()) == len(ran), {t.hostname for t in ran}  # and nothing ran elsewhere
    assert celery_results >= len(ran)  # every task went through Celery, whose results are in PostgreSQL

    ledger = celery_airflow.ledger()
    assert [run.run_id for run in ledger.runs()] == [RUN_ID]
    assert {r.image: r.status for r in ledger.run_summary(RUN_ID)} == {
        "debian-bookworm": ImageStatus.PROMOTED, "demo-web": ImageStatus.PROMOTED, "vendor-app": ImageStatus.PROMOTED}
