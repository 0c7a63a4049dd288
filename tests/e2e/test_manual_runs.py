"""A manual run with Params, as the UI's trigger form sends them: one image, dry run."""

from __future__ import annotations

from support.dag_runs import REPO, make_runner, reset_lab
from patchpipe.fleet import load_fleet
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome

FLEET = load_fleet(REPO / "include" / "fleet.yaml")


def service_image(docker_api, service: str) -> str:
    return docker_api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def test_a_dry_run_of_one_image_plans_and_reports_without_pushing_or_deploying(tmp_path, docker_api):
    reset_lab()
    registry = RegistryClient("127.0.0.1:5000")
    tags_before = {r: sorted(registry.list_tags(r)) for r in ("vendor/app", "demo/web", "base/debian")}
    services = ("vendor-app-staging", "vendor-app-production", "demo-web-staging", "demo-web-production")
    images_before = {s: service_image(docker_api, s) for s in services}

    runner = make_runner(tmp_path / "airflow", REPO / "include" / "fleet.yaml")
    result = runner.run(conf={"images": ["vendor-app"], "dry_run": True})

    assert result.returncode == 0, result.log.read_text()[-3000:]
    ledger = runner.ledger()
    run = ledger.latest_run()
    records = {r.image: r for r in ledger.run_summary(run.run_id)}
    assert records["vendor-app"].status == ImageStatus.PLANNED
    assert {p.name for p in records["vendor-app"].packages} >= {"perl-base", "liblzma5"}  # what it would patch
    assert (records["demo-web"].status, records["demo-web"].failure_reason) == (ImageStatus.NOOP,
                                                                                 "not among the run's images")
    stages = {s.stage: s for s in ledger.stage_results(run.run_id, "vendor-app")}
    assert stages["patch"].outcome == StageOutcome.SKIPPED
    reason = stages["patch"].detail["reason"]
    assert "dry run: planned only: " in reason and "perl-base 5.36.0-7" in reason
    assert not any(s in stages for s in ("push", "deploy_staging", "promote"))
    assert not ledger.stage_results(run.run_id, "debian-bookworm")  # no base refresh for vendor-app alone
    assert {r: sorted(registry.list_tags(r)) for r in tags_before} == tags_before
    assert {s: service_image(docker_api, s) for s in services} == images_before
