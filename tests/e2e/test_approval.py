"""Approval before production, answered through Airflow's own Human-in-the-loop REST API.

`airflow dags test` runs the lifecycle for demo-web (with `approval:` in its manifest) and parks
approve_production in AWAITING_INPUT. An api-server on the same metadata database plays the owner in
the UI: it answers Approve (the candidate is promoted) or Reject (the candidate stays in staging,
production keeps its digest). The ledger records the answer. A timeout without an answer is applied
by the scheduler, which `dags test` does not run: that path is checked in the unit tests only
(the operator's defaults and response timeout).
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import requests
import yaml

from support.dag_runs import BIN, REPO, make_runner, reset_lab
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome

PRODUCTION_TAG = "127.0.0.1:5000/demo/web:1.0"
TASK = "patch_image.approve_production"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def approval_fleet(tmp_path):
    manifest = yaml.safe_load((REPO / "include" / "fleet.yaml").read_text())
    manifest["images"] = [i for i in manifest["images"] if i["name"] == "demo-web"]
    manifest["images"][0]["build"]["context"] = str(REPO / "include" / "demo" / "demo-web")
    manifest["images"][0]["approval"] = {"timeout_minutes": 30}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


class ApiServer:
    """`airflow api-server` on the runner's Airflow home, every caller an admin (simple auth manager)."""

    def __init__(self, runner):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**runner.env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
        self.log = open(runner.home / "api-server.log", "w")
        self.process = subprocess.Popen([str(BIN / "airflow"), "api-server", "--port", str(self.port)], env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.session = requests.Session()
        self._wait_ready()

    def _wait_ready(self, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                token = self.session.get(f"{self.url}/auth/token", timeout=5)
                if token.ok:
                    self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
                    return
            except requests.RequestException:
                pass
            assert self.process.poll() is None, "the api-server exited; see api-server.log"
            time.sleep(1)
        raise AssertionError(f"the api-server did not answer within {seconds:.0f}s")

    def answer_when_asked(self, choice: str, run: subprocess.Popen, seconds: float = 1200) -> dict:
        """Wait for approve_production to ask, then answer ``choice`` as the UI would."""
        api = f"{self.url}/api/v2/dags/patch_lifecycle/dagRuns"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert run.poll() is None, "the run ended without asking for approval; see dags-test.log"
            runs = self.session.get(api, timeout=10).json().get("dag_runs", [])
            for dag_run in runs:
                details = self.session.get(f"{api}/{dag_run['dag_run_id']}/hitlDetails", timeout=10)
                for detail in details.json().get("hitl_details", []) if details.ok else []:
                    if detail["task_instance"]["task_id"] == TASK and not detail.get("response_received"):
                        answer = self.session.patch(f"{api}/{dag_run['dag_run_id']}/taskInstances/{TASK}/"
                                                    f"{detail['task_instance']['map_index']}/hitlDetails",
                                                    json={"chosen_options": [choice]}, timeout=10)
                        assert answer.ok, answer.text
                        return {"detail": detail, "answer": answer.json()}
            time.sleep(2)
        raise AssertionError(f"{TASK} never asked for an answer")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


@pytest.mark.parametrize("choice", ["Approve", "Reject"])
def test_an_owner_answers_in_the_ui_and_the_run_follows(tmp_path, docker_api, choice):
    reset_lab()
    production_before = docker_api.inspect_service("demo-web-production")["Spec"]["TaskTemplate"]["ContainerSpec"]
    tag_before = RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG)
    runner = make_runner(tmp_path / "airflow", approval_fleet(tmp_path))
    log = open(runner.home / "dags-test.log", "w")
    run = subprocess.Popen([str(BIN / "airflow"), "dags", "test", "patch_lifecycle"], env=runner.env,
                           stdout=log, stderr=subprocess.STDOUT)
    server = ApiServer(runner)
    try:
        asked = server.answer_when_asked(choice, run)
        returncode = run.wait(timeout=1200)
    finally:
        server.stop()
        if run.poll() is None:
            run.kill()
        log.close()

    assert "Promote demo-web to production?" in asked["detail"]["subject"]
    assert asked["answer"]["chosen_options"] == [choice]
    ledger = runner.ledger()
    run_id = ledger.latest_run().run_id
    record = {r.image: r for r in ledger.run_summary(run_id)}["demo-web"]
    stages = {s.stage: s for s in ledger.stage_results(run_id, "demo-web")}
    assert stages["approve_production"].detail["chosen"] == choice
    if choice == "Approve":
        assert returncode == 0, (runner.home / "dags-test.log").read_text()[-3000:]
        assert stages["approve_production"].outcome == StageOutcome.SUCCESS
        assert record.status == ImageStatus.PROMOTED
        assert RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG) != tag_before
    else:
        assert stages["approve_production"].outcome == StageOutcome.SKIPPED
        assert "promote" not in stages
        assert record.status == ImageStatus.PATCHED  # pushed and in staging, not promoted
        assert RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG) == tag_before
        assert docker_api.inspect_service("demo-web-production")["Spec"]["TaskTemplate"]["ContainerSpec"] == \
            production_before
