"""The whole lifecycle on Kubernetes: include/k8s/fleet-k8s.yaml patched end to end, then a no-op rerun.

The same checks as tests/e2e/test_patch_lifecycle.py, kept small: both images promoted, both stages'
Deployments on the promoted digest and serving it, and a second run changes nothing.
"""

from __future__ import annotations

import subprocess

import pytest
import requests
from kubernetes import client, config

from support.dag_runs import REPO, make_runner
from patchpipe.deploy.base import digest_of
from patchpipe.deploy.kubernetes import KubernetesDeployer
from patchpipe.fleet import load_fleet
from patchpipe.ledger.models import ImageStatus

FLEET_PATH = REPO / "include" / "k8s" / "fleet-k8s.yaml"
FLEET = load_fleet(FLEET_PATH)
TARGETS = [image.deploy[stage] for image in FLEET.images for stage in ("staging", "production")]


@pytest.fixture(scope="module")
def apps_api():
    config.load_kube_config()  # the current context, as `kubectl cluster-info` saw it
    return client.AppsV1Api()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    subprocess.run(["bash", str(REPO / "include" / "k8s" / "kind.sh"), "reset"], check=True, timeout=900)
    runner = make_runner(tmp_path_factory.mktemp("airflow"), FLEET_PATH)
    result = runner.run()
    return runner, result, runner.ledger().latest_run()


def test_both_images_are_patched_and_promoted(first_run):
    runner, result, run = first_run
    assert result.returncode == 0, result.log.read_text()[-5000:]
    records = {r.image: r for r in runner.ledger().run_summary(run.run_id)}
    for name in ("demo-web", "vendor-app"):
        assert records[name].status == ImageStatus.PROMOTED, (name, records[name].failure_reason)


def test_both_stages_run_and_serve_the_promoted_digest(first_run, apps_api):
    runner, _, run = first_run
    records = {r.image: r for r in runner.ledger().run_summary(run.run_id)}
    deployer = KubernetesDeployer(apps_api)
    for image in FLEET.images:
        record = records[image.name]
        for stage in ("staging", "production"):
            target = image.deploy[stage]
            assert digest_of(deployer.current_image(target.kubernetes)) == record.after_digest
            version = requests.get(target.url_for(image.version_path), timeout=5).json()
            assert version["build_id"] == record.candidate_tag.rsplit(":", 1)[1]


def test_a_second_run_redeploys_nothing(first_run, apps_api):
    runner, _, _ = first_run

    def generations():
        return {f"{t.kubernetes.namespace}/{t.kubernetes.deployment}": apps_api.read_namespaced_deployment(
                    t.kubernetes.deployment, t.kubernetes.namespace).metadata.generation for t in TARGETS}

    before = generations()
    result = runner.run()
    assert result.returncode == 0, result.log.read_text()[-5000:]
    records = runner.ledger().run_summary(runner.ledger().latest_run().run_id)
    assert {r.status for r in records} == {ImageStatus.NOOP}
    assert generations() == before, "a no-op run patched a Deployment"
