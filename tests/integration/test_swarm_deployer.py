"""The Swarm deployer on the lab's real Swarm, with a throwaway service of its own (pp-test-swarm)."""

from __future__ import annotations

import io
import time

import docker
import pytest

from patchpipe.deploy.base import DeployError, digest_of
from patchpipe.deploy.swarm import SwarmDeployer
from patchpipe.images.registry import RegistryClient

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"
SERVICE = "pp-test-swarm"
NS = 1_000_000_000


def variant(client: docker.DockerClient, fault: str) -> str:
    """demo-web with DEMO_FAULT set, pushed to the lab registry; its reference by digest."""
    repository = "pp-test/swarm-web"
    dockerfile = f"FROM {REGISTRY}/demo/web:1.0\nENV DEMO_FAULT={fault}\nLABEL pp-test.fault={fault or 'none'}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{REGISTRY}/{repository}:{fault or 'ok'}",
                        rm=True)
    client.images.push(f"{REGISTRY}/{repository}", tag=fault or "ok")
    digest = RegistryClient(REGISTRY).resolve(f"{REGISTRY}/{repository}:{fault or 'ok'}")
    return f"{REGISTRY}/{repository}@{digest}"


def wait_until_running(deployer: SwarmDeployer, image: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not deployer._converged(SERVICE, image):
        assert time.monotonic() < deadline, f"{SERVICE} does not run {image} after {seconds}s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def client(lab):
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def service(client):
    """A service on demo-web's original digest, created with Swarm's default update config."""
    original = f"{REGISTRY}/demo/web@{RegistryClient(REGISTRY).resolve(f'{REGISTRY}/demo/web:1.0-lab-original')}"
    for old in client.services.list(filters={"name": SERVICE}):
        old.remove()
    client.services.create(original, name=SERVICE)
    deployer = SwarmDeployer(client.api, poll_seconds=0.5, monitor_seconds=3)
    wait_until_running(deployer, original)
    yield deployer, original
    client.services.get(SERVICE).remove()


def test_a_rollout_sets_the_zero_downtime_update_policy_and_converges(client, service):
    deployer, original = service
    candidate = variant(client, "")
    rollout = deployer.deploy(SERVICE, candidate, 120)

    assert (rollout.previous_image, rollout.changed) == (original, True)
    assert digest_of(deployer.current_image(SERVICE)) == digest_of(candidate)
    spec = client.api.inspect_service(SERVICE)["Spec"]
    assert spec["UpdateConfig"] | {"MaxFailureRatio": 0} == {
        "Parallelism": 1, "Order": "start-first", "FailureAction": "rollback", "Monitor": 3 * NS, "MaxFailureRatio": 0}
    assert spec["RollbackConfig"]["Order"] == "start-first"
    assert deployer.deploy(SERVICE, candidate, 120).changed is False  # already there: no second update


def test_a_candidate_that_crashes_is_rolled_back_by_swarm_and_the_deploy_fails(client, service):
    deployer, original = service
    with pytest.raises(DeployError, match="rolled .* back|did not converge"):
        deployer.deploy(SERVICE, variant(client, "crash"), 120)
    wait_until_running(deployer, original)  # Swarm's own failure action put the original back
    assert digest_of(deployer.current_image(SERVICE)) == digest_of(original)


def test_the_progress_deadline_fails_a_rollout_that_takes_too_long(client, service):
    deployer, _ = service
    with pytest.raises(DeployError, match=r"did not converge on sha256:[0-9a-f]{64} within 1s"):
        deployer.deploy(SERVICE, variant(client, "unhealthy"), 1)


def test_rollback_returns_to_the_previous_spec(client, service):
    deployer, original = service
    candidate = variant(client, "")
    deployer.deploy(SERVICE, candidate, 120)
    rollout = deployer.rollback(SERVICE, candidate, 120)
    assert rollout.changed and digest_of(rollout.image) == digest_of(original)
    assert deployer.rollback(SERVICE, candidate, 120).changed is False  # no longer on it: nothing to do
