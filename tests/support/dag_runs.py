"""Run a DAG headless with `airflow dags test`, in a fresh Airflow home with its own ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAB = REPO / "include" / "lab" / "lab.sh"


@dataclass
class AirflowRunner:
    home: Path
    env: dict

    def run(self, dag_id: str = "patch_lifecycle", timeout: int = 1800, conf: dict | None = None
            ) -> subprocess.CompletedProcess:
        """``airflow dags test``; ``conf`` is the run's conf, which sets its Params as the trigger form does."""
        log = self.home / f"{dag_id}-{len(list(self.home.glob('*.log')))}.log"
        command = [str(BIN / "airflow"), "dags", "test", dag_id, *(["--conf", json.dumps(conf)] if conf else [])]
        with open(log, "w") as out:
            result = subprocess.run(command, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        result.log = log
        return result

    def ledger(self):
        from patchpipe import db
        from patchpipe.ledger.store import Ledger

        return Ledger(db.make_engine(self.env["PATCHPIPE_DB"]))


def make_runner(home: Path, fleet: Path, **config: str) -> AirflowRunner:
    """A fresh Airflow home; ``config`` adds environment (an ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) before migrating."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATCHPIPE_DB": f"sqlite:///{home}/patchpipe.db",
        "PATCHPIPE_FLEET": str(fleet),
        "PATCHPIPE_DEPLOY_DEADLINE": "180",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": "4096",  # fleets beyond Airflow's default 1024 images (README)
        **config,
    }
    for command in (["db", "migrate"], ["pools", "import", str(REPO / "include" / "airflow" / "pools.json")]):
        result = subprocess.run([str(BIN / "airflow"), *command], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"airflow {' '.join(command)}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    return AirflowRunner(home, env)


def reset_lab() -> None:
    """Put the demo fleet back on its original, unpatched images (see include/lab/lab.sh)."""
    subprocess.run(["bash", str(LAB), "reset"], check=True, timeout=600)
