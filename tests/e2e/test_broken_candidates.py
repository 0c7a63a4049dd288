"""Broken candidates never reach users: one run per fault of the demo app (include/demo/demo-web).

Each run patches demo-web alone, rebuilt from a Dockerfile that switches on one DEMO_FAULT, while a
load generator sends 25 requests/s to staging and to production. Staging is rolled back (by Swarm
itself for a task that dies or never turns healthy, by patchpipe after a failed analysis),
production keeps its digest and answers every request, and the ledger names what failed.
A build that fails only in production (DEMO_FAULT_ENVIRONMENT=production) passes staging, is
promoted, fails production's analysis, and production is rolled back by the run itself.
Last, the lab's Prometheus is stopped while staging is analysed: the analysis fails closed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from support.dag_runs import REPO, make_runner, reset_lab
from support.load import LoadGenerator
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome

STAGING, PRODUCTION = "http://127.0.0.1:18081/", "http://127.0.0.1:18080/"
PRODUCTION_TAG = "127.0.0.1:5000/demo/web:1.0"
LAB_DIR = Path(os.environ.get("PATCHPIPE_LAB_DIR", REPO / ".lab"))


def service_image(docker_api, service: str) -> str:
    return docker_api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def broken_fleet(tmp_path, env: str) -> str:
    """demo-web alone, rebuilt from its Dockerfile plus ``env`` (ENV lines that switch a fault on)."""
    context = tmp_path / "broken-web"
    shutil.copytree(REPO / "include" / "demo" / "demo-web", context)
    with open(context / "Dockerfile", "a") as dockerfile:
        dockerfile.write(f"\nENV {env}\n")
    manifest = yaml.safe_load((REPO / "include" / "fleet.yaml").read_text())
    manifest["images"] = [i for i in manifest["images"] if i["name"] == "demo-web"]
    manifest["images"][0]["build"]["context"] = "broken-web"
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def patch_run(tmp_path, docker_api, env: str):
    reset_lab()
    before = {s: service_image(docker_api, s) for s in ("demo-web-staging", "demo-web-production")}
    tag_before = RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG)
    runner = make_runner(tmp_path / "airflow", broken_fleet(tmp_path, env))
    with LoadGenerator([STAGING, PRODUCTION], rate=25) as load:
        result = runner.run()
    print(f"\nload during the run ({env}):\n{load.report()}")
    ledger = runner.ledger()
    run = ledger.latest_run()
    record = {r.image: r for r in ledger.run_summary(run.run_id)}["demo-web"]
    stages = {s.stage: s for s in ledger.stage_results(run.run_id, "demo-web")}
    return result, record, stages, load, before, tag_before


# fault -> (the stage that fails, words the ledger's failure reason must contain)
STAGING_FAULTS = {
    "DEMO_FAULT=crash": ("deploy_staging", "rolled demo-web-staging back"),
    "DEMO_FAULT=unhealthy": ("deploy_staging", "demo-web-staging"),
    "DEMO_FAULT=error": ("analyze_staging", "status 500"),
    "DEMO_FAULT=slow": ("analyze_staging", "request-duration"),
}


@pytest.mark.parametrize("env", list(STAGING_FAULTS))
def test_a_broken_candidate_is_rolled_back_in_staging_and_production_never_notices(tmp_path, docker_api, env):
    result, record, stages, load, before, tag_before = patch_run(tmp_path, docker_api, env)
    stage, words = STAGING_FAULTS[env]

    assert result.returncode != 0, "a run with a failed image must fail"
    assert (record.status, record.failure_stage) == (ImageStatus.FAILED, stage), record.failure_reason
    assert words in record.failure_reason
    assert "promote" not in stages
    assert service_image(docker_api, "demo-web-staging") == before["demo-web-staging"]
    assert service_image(docker_api, "demo-web-production") == before["demo-web-production"]
    assert RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG) == tag_before
    assert load.counts[PRODUCTION].failed == 0, load.report()
    if stage == "analyze_staging":  # patchpipe rolled staging back itself, and says why
        rollback = stages["rollback_staging"]
        assert rollback.outcome == StageOutcome.SUCCESS
        assert rollback.detail["cause"]["stage"] == "analyze_staging"
        assert rollback.detail["cause"]["check"]["check"] in words or words in rollback.detail["cause"]["error"]
        assert rollback.detail["previous_image"] != rollback.detail["image"]


def test_a_candidate_that_fails_only_in_production_is_rolled_back_there_by_the_run(tmp_path, docker_api):
    env = "DEMO_FAULT=error DEMO_FAULT_ENVIRONMENT=production"
    result, record, stages, load, before, tag_before = patch_run(tmp_path, docker_api, env)

    assert result.returncode != 0
    assert stages["analyze_staging"].outcome == StageOutcome.SUCCESS
    assert stages["promote"].outcome == StageOutcome.SUCCESS
    assert stages["analyze_production"].outcome == StageOutcome.FAILED
    assert (record.status, record.failure_stage) == (ImageStatus.ROLLED_BACK, "analyze_production")
    rollback = stages["rollback_production"]
    assert rollback.outcome == StageOutcome.SUCCESS
    assert rollback.detail["cause"]["stage"] == "analyze_production"
    assert service_image(docker_api, "demo-web-production") == before["demo-web-production"]
    assert RegistryClient("127.0.0.1:5000").resolve(PRODUCTION_TAG) == tag_before


@pytest.fixture
def prometheus_restored():
    yield LAB_DIR / "prometheus" / "prometheus.pid"
    subprocess.run(["bash", str(REPO / "include" / "lab" / "lab.sh"), "up"], check=True, timeout=900)


def stop_when_staging_is_deployed(runner, pid_file: Path, stopped: threading.Event) -> None:
    """Stop the lab's Prometheus once the staging rollout is recorded: the analysis starts without it."""
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and not stopped.is_set():
        try:
            run = runner.ledger().latest_run()
            rows = runner.ledger().stage_results(run.run_id, "demo-web") if run else []
        except Exception:  # the ledger's tables may not exist yet
            rows = []
        if any(r.stage == "deploy_staging" and r.outcome == StageOutcome.SUCCESS for r in rows):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            stopped.set()
            return
        time.sleep(0.5)


def test_prometheus_stopped_during_analysis_fails_closed_and_nothing_is_promoted(tmp_path, docker_api,
                                                                               prometheus_restored):
    reset_lab()
    production_before = service_image(docker_api, "demo-web-production")
    runner = make_runner(tmp_path / "airflow", broken_fleet(tmp_path, "PP_TEST=prometheus-stopped"))
    stopped = threading.Event()
    watcher = threading.Thread(target=stop_when_staging_is_deployed, args=(runner, prometheus_restored, stopped))
    watcher.start()
    result = runner.run()
    stopped.set()
    watcher.join()

    ledger = runner.ledger()
    run = ledger.latest_run()
    record = {r.image: r for r in ledger.run_summary(run.run_id)}["demo-web"]
    assert result.returncode != 0
    assert (record.status, record.failure_stage) == (ImageStatus.FAILED, "analyze_staging")
    assert "is unreachable" in record.failure_reason and "fails closed" in record.failure_reason
    stages = {s.stage: s.outcome for s in ledger.stage_results(run.run_id, "demo-web")}
    assert stages["rollback_staging"] == StageOutcome.SUCCESS
    assert "promote" not in stages
    assert service_image(docker_api, "demo-web-production") == production_before
