"""A candidate that fails its staging smoke test: staging rolled back, production untouched, the ledger says why."""

from __future__ import annotations

import shutil

import yaml

from support.dag_runs import REPO, make_runner, reset_lab
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome


def service_image(docker_api, service: str) -> str:
    return docker_api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def broken_fleet(tmp_path):
    """demo-web alone, rebuilt from a Dockerfile whose app answers 500 (healthz stays ok)."""
    context = tmp_path / "broken-web"
    shutil.copytree(REPO / "include" / "demo" / "demo-web", context)
    with open(context / "Dockerfile", "a") as dockerfile:
        dockerfile.write("\nENV DEMO_FAULT=error\n")
    manifest = yaml.safe_load((REPO / "include" / "fleet.yaml").read_text())
    manifest["images"] = [i for i in manifest["images"] if i["name"] == "demo-web"]
    manifest["images"][0]["build"]["context"] = "broken-web"
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_failed_staging_smoke_test_rolls_back_staging_and_spares_production(tmp_path, docker_api):
    reset_lab()
    staging_before = service_image(docker_api, "demo-web-staging")
    production_before = service_image(docker_api, "demo-web-production")
    registry = RegistryClient("127.0.0.1:5000")
    production_ref = "127.0.0.1:5000/demo/web:1.0"
    tag_before = registry.resolve(production_ref)

    runner = make_runner(tmp_path / "airflow", broken_fleet(tmp_path))
    result = runner.run()

    assert result.returncode != 0, "a run with a failed image must fail"
    run = runner.ledger().latest_run()
    record = {r.image: r for r in runner.ledger().run_summary(run.run_id)}["demo-web"]
    assert record.status == ImageStatus.FAILED
    assert record.failure_stage == "smoke_staging"
    assert "status 500" in record.failure_reason
    assert "staging rolled back" in record.failure_reason
    stages = {s.stage: s.outcome for s in runner.ledger().stage_results(run.run_id, "demo-web")}
    assert stages["rollback_staging"] == StageOutcome.SUCCESS
    assert "promote" not in stages

    assert service_image(docker_api, "demo-web-staging") == staging_before
    assert service_image(docker_api, "demo-web-production") == production_before
    assert registry.resolve(production_ref) == tag_before
