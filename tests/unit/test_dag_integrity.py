"""Every DAG imports cleanly through Airflow's DagBag, is documented, and is light to import."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    yield mp
    mp.undo()


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    files = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert {p.name for p in DAGS.glob("*.py")} <= files


def test_patch_lifecycle_is_there(dagbag):
    assert "patch_lifecycle" in dagbag.dags


@pytest.mark.parametrize("dag_id", ["patch_lifecycle", "advisory_sync"])
def test_dag_has_owner_tags_retries_and_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} has no real doc_md"
    assert "retries" in dag.default_args, f"{dag_id} does not set retries explicitly"
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"


def test_every_dag_is_documented(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.owner not in ("", "airflow"), f"{dag_id} has no owner"


def test_lifecycle_reads_in_order(dagbag):
    dag = dagbag.dags["patch_lifecycle"]
    order = ["inventory", "assess", "patch", "verify", "scan", "push", "deploy_staging", "analyze_staging",
             "promote", "analyze_production"]
    for upstream, downstream in zip(order, order[1:]):
        task = dag.get_task(f"patch_image.{upstream}")
        assert f"patch_image.{downstream}" in task.get_flat_relative_ids(upstream=False), (upstream, downstream)


def test_importing_dags_does_no_network_or_docker_io(tmp_path):
    """Import every DAG file with sockets disabled: any network or Docker call at import fails loudly."""
    script = textwrap.dedent(f"""
        import socket, sys
        def refuse(*args, **kwargs):
            raise RuntimeError("network I/O at DAG import time")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        assert not bag.import_errors, bag.import_errors
        print("dags", len(bag.dags))
    """)
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "DOCKER_HOST": "tcp://127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) >= 1


def test_parsing_with_cached_image_names_imports_no_core_module(tmp_path):
    """The dag-processor imports the DAG files' modules again on every parse: the stage code, the
    manifest's models, the Docker client and ``requests`` must wait until a task runs."""
    script = textwrap.dedent(f"""
        import sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        assert not bag.import_errors, bag.import_errors
        print(" ".join(sorted(name for name in sys.modules if name.startswith(("patchpipe", "docker", "requests")))))
    """)
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PATCHPIPE_CACHE": str(tmp_path / "cache")}

    def imported() -> set[str]:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return set(result.stdout.split())

    first = imported()  # no cached names yet: the manifest is loaded and validated
    assert "patchpipe.fleet.models" in first
    steady = imported()
    heavy = {"patchpipe.fleet.models", "patchpipe.lifecycle.inventory", "patchpipe.lifecycle.patch",
             "patchpipe.advisories.store", "patchpipe.ledger.store", "docker", "requests"}
    assert "patchpipe.airflow.operators" in steady
    assert steady & heavy == set()
