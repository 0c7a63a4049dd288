"""Stage 7: deploy a pushed candidate to an environment, by digest, and wait until it has converged."""

from __future__ import annotations

from patchpipe.deploy.base import Deployer
from patchpipe.deploy.swarm import SwarmDeployer
from patchpipe.errors import PatchpipeError
from patchpipe.images.reference import parse_reference


def deployer_for(svc, environment) -> tuple[Deployer, str]:
    """The deployer and target name for one ``deploy.<env>`` entry of the manifest."""
    if environment.swarm_service:
        return SwarmDeployer(svc.docker), environment.swarm_service
    kind = "docker_container" if environment.docker_container else "kubernetes"
    raise PatchpipeError(f"{kind} deploy targets are not supported yet; use swarm_service")


def deploy(svc, name: str, env: str, pushed: dict) -> dict:
    deployer, target = deployer_for(svc, svc.target(name).deploy[env])
    image = parse_reference(pushed["candidate"]).with_digest(pushed["digest"])
    return deployer.deploy(target, str(image), svc.deploy_deadline_seconds).to_dict()


def rollback(svc, name: str, env: str, pushed: dict | None) -> dict:
    """Take ``env`` off the candidate again (nothing to do when it never got there)."""
    if not pushed:
        return {"rolled_back": False, "reason": "no candidate was pushed"}
    deployer, target = deployer_for(svc, svc.target(name).deploy[env])
    image = parse_reference(pushed["candidate"]).with_digest(pushed["digest"])
    rollout = deployer.rollback(target, str(image), svc.deploy_deadline_seconds)
    return {"rolled_back": rollout.changed, **rollout.to_dict()}
