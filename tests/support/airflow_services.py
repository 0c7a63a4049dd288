"""Airflow's long-running components as processes around an `AirflowRunner`'s home, as in production.

    runner = make_runner(tmp_path / "airflow", fleet)
    with airflow_services(runner, ["scheduler", "dag-processor"], executor="LocalExecutor"):
        airflow_cli(runner, "dags", "unpause", "patch_lifecycle")

An api-server always runs too: since Airflow 3 every task talks to it (the task execution API). Each
component logs to ``<home>/<name>.log``; a component is given as its CLI words, or as
``(name, words, extra_env)`` for one that needs its own environment (a Celery worker's hostname).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from support.api_server import free_port
from support.dag_runs import BIN, AirflowRunner


Component = str | tuple[str, Sequence[str], dict]


@contextmanager
def airflow_services(runner: AirflowRunner, components: Sequence[Component], executor: str,
                     **config: str) -> Iterator[AirflowRunner]:
    """Start the api-server and ``components`` with ``executor``; stop them all on exit."""
    port = free_port()
    runner.env.update({
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        **config,
    })
    processes = []
    try:
        for component in [("api-server", ["api-server", "--port", str(port)], {}), *components]:
            name, words, extra_env = (component, component.split(), {}) if isinstance(component, str) else component
            log = open(runner.home / f"{name}.log", "w")
            process = subprocess.Popen([str(BIN / "airflow"), *words], env={**runner.env, **extra_env}, stdout=log,
                                       stderr=subprocess.STDOUT)
            processes.append((process, log))
        yield runner
    finally:
        for process, _ in processes:
            process.terminate()
        for process, log in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def airflow_cli(runner: AirflowRunner, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "airflow"), *args], env=runner.env, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(what: str, check, seconds: float, every: float = 5) -> None:
    """Poll ``check`` until it is true; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f}s"
        time.sleep(every)


def wait_for_dag(runner: AirflowRunner, dag_id: str = "patch_lifecycle", seconds: float = 300) -> None:
    wait_for(f"the dag-processor did not register {dag_id}",
             lambda: dag_id in airflow_cli(runner, "dags", "list", "-o", "plain").stdout, seconds)
