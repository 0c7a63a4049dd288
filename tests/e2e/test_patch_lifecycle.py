"""The whole lifecycle on the lab: a fresh lab is patched end to end, then a second run is a no-op."""

from __future__ import annotations

import pytest
import requests

from support.dag_runs import REPO, make_runner, reset_lab
from support.load import LoadGenerator
from patchpipe.fleet import load_fleet
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome

FLEET = load_fleet(REPO / "include" / "fleet.yaml")
SECURITY_LIST = "deb http://deb.debian.org/debian-security bookworm-security main"


def service_image(docker_api, service: str) -> str:
    return docker_api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def all_tags() -> dict[str, list[str]]:
    registry = RegistryClient("127.0.0.1:5000")
    refs = [FLEET.bases[0].ref, *(image.ref for image in FLEET.images)]
    return {ref.repository: sorted(registry.list_tags(ref.repository)) for ref in refs}


ENDPOINTS = [f"{target.url_for('/')}" for image in FLEET.images for target in (image.deploy.staging,
                                                                                 image.deploy.production)]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    reset_lab()
    runner = make_runner(tmp_path_factory.mktemp("airflow"), REPO / "include" / "fleet.yaml")
    with LoadGenerator(ENDPOINTS, rate=25) as load:  # users of every environment, through the whole run
        result = runner.run()
    result.load = load
    run = runner.ledger().latest_run()
    return runner, result, run


def test_zero_downtime_every_request_during_the_run_was_answered(first_run):
    _, result, _ = first_run
    print(f"\nload during the run:\n{result.load.report()}")
    for url, counts in result.load.counts.items():
        assert result.load.rate(url) >= 20, result.load.report()
        assert counts.failed == 0, result.load.report()


def test_the_run_succeeds(first_run):
    _, result, run = first_run
    assert result.returncode == 0, result.log.read_text()[-5000:]
    assert run.status.value == "success"


def test_every_demo_image_and_the_base_were_patched_and_promoted(first_run):
    runner, _, run = first_run
    records = {r.image: r for r in runner.ledger().run_summary(run.run_id)}
    assert set(records) == {"debian-bookworm", "demo-web", "vendor-app"}
    for record in records.values():
        assert record.status == ImageStatus.PROMOTED, (record.image, record.failure_reason)
        assert record.packages, f"{record.image}: no packages recorded"
        assert record.after_digest and record.after_digest != record.before_digest
    names = {c.name for c in records["vendor-app"].packages}
    assert {"perl-base", "liblzma5"} <= names  # the lab base's known pending security updates


def test_every_stage_is_in_the_ledger(first_run):
    runner, _, run = first_run
    stages = {(s.image, s.stage): s.outcome for s in runner.ledger().stage_results(run.run_id)}
    for image in ("demo-web", "vendor-app"):
        for stage in ("inventory", "assess", "patch", "verify", "scan", "push", "deploy_staging", "analyze_staging",
                      "promote", "analyze_production", "record"):
            assert stages[(image, stage)] == StageOutcome.SUCCESS, (image, stage)
        assert (image, "rollback_staging") not in stages  # never triggered: nothing failed
        assert (image, "rollback_production") not in stages


def test_production_images_have_no_security_update_left_for_planned_packages(first_run, docker_api):
    """Ask apt itself, inside each new production image, with the security suite enabled."""
    runner, _, run = first_run
    for record in runner.ledger().run_summary(run.run_id):
        image = f"{record.source_ref.rsplit(':', 1)[0]}@{record.after_digest}"
        script = (f"echo '{SECURITY_LIST}' > /etc/apt/sources.list.d/check.list && apt-get update -qq "
                  "&& apt list --upgradable 2>/dev/null")
        docker_api.pull(image)
        container = docker_api.create_container(image, entrypoint=["sh", "-c", script], user="root")
        try:
            docker_api.start(container)
            assert docker_api.wait(container, timeout=300)["StatusCode"] == 0
            output = docker_api.logs(container).decode()
        finally:
            docker_api.remove_container(container, force=True)
        upgradable = {line.split("/")[0] for line in output.splitlines() if "/" in line}
        planned = {c.name for c in record.packages}
        assert not planned & upgradable, f"{record.image}: still upgradable: {planned & upgradable}"


def test_services_serve_the_new_digests(first_run, docker_api):
    runner, _, run = first_run
    records = {r.image: r for r in runner.ledger().run_summary(run.run_id)}
    for image in FLEET.images:
        record = records[image.name]
        for env in ("staging", "production"):
            target = image.deploy[env]
            assert service_image(docker_api, target.swarm_service).endswith(record.after_digest)
            version = requests.get(target.url + image.version_path, timeout=5).json()
            assert version["build_id"] == record.candidate_tag.rsplit(":", 1)[1]
        assert RegistryClient("127.0.0.1:5000").resolve(image.ref) == record.after_digest


def test_second_run_is_a_noop(first_run, docker_api):
    runner, _, _ = first_run
    tags_before = all_tags()
    versions_before = {t.swarm_service: docker_api.inspect_service(t.swarm_service)["Version"]["Index"]
                       for image in FLEET.images for t in (image.deploy.staging, image.deploy.production)}
    result = runner.run()
    assert result.returncode == 0, result.log.read_text()[-5000:]
    run = runner.ledger().latest_run()
    records = runner.ledger().run_summary(run.run_id)
    assert {r.status for r in records} == {ImageStatus.NOOP}
    assert all_tags() == tags_before, "a no-op run pushed an image"
    for service, index in versions_before.items():
        assert docker_api.inspect_service(service)["Version"]["Index"] == index, f"{service} was updated"
