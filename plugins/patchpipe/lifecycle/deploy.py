"""Stage 7: deploy a pushed candidate to an environment, by digest, and wait until it has converged."""

from __future__ import annotations

from patchpipe.deploy.base import Deployer
from patchpipe.deploy.docker_container import DockerContainerDeployer
from patchpipe.deploy.kubernetes import ContainerRef
from patchpipe.deploy.swarm import SwarmDeployer
from patchpipe.images.reference import parse_reference
from patchpipe.ledger.models import StageOutcome


def deployer_for(svc, environment) -> tuple[Deployer, str]:
    """The deployer and target name for one ``deploy.<env>`` entry of the manifest."""
    if environment.swarm_service:
        return SwarmDeployer(svc.docker), environment.swarm_service
    if environment.docker_container:
        return DockerContainerDeployer(svc.docker), environment.docker_container
    return svc.kubernetes, str(ContainerRef.of(environment.kubernetes))


def deploy(svc, name: str, env: str, pushed: dict) -> dict:
    deployer, target = deployer_for(svc, svc.target(name).deploy[env])
    image = parse_reference(pushed["candidate"]).with_digest(pushed["digest"])
    return deployer.deploy(target, str(image), svc.deploy_deadline_seconds).to_dict()


ROLLED_BACK_FOR = {"staging": ("deploy_staging", "analyze_staging"), "production": ("promote", "analyze_production")}


def rollback(svc, name: str, env: str, pushed: dict | None, run_id: str) -> dict:
    """Take ``env`` off the candidate again (nothing to do when it never got there); the result says
    why (``cause``), from the digest to the digest."""
    if not pushed:
        return {"rolled_back": False, "reason": "no candidate was pushed"}
    deployer, target = deployer_for(svc, svc.target(name).deploy[env])
    image = parse_reference(pushed["candidate"]).with_digest(pushed["digest"])
    rollout = deployer.rollback(target, str(image), svc.deploy_deadline_seconds)
    cause = failure_cause(svc.ledger.stage_results(run_id, name), ROLLED_BACK_FOR[env])
    return {"rolled_back": rollout.changed, **rollout.to_dict(), "cause": cause}


def failure_cause(stage_results, stages: tuple[str, ...]) -> dict:
    """The latest failed stage among ``stages``, its error, and for an analysis its failing check
    with the value and bound it failed on."""
    failed = [s for s in stage_results if s.stage in stages and s.outcome == StageOutcome.FAILED]
    if not failed:
        return {}
    latest = max(failed, key=lambda s: s.started_at)
    detail = latest.detail if isinstance(latest.detail, dict) else {}
    cause = {"stage": latest.stage, "error": detail.get("error")}
    failing = (detail.get("analysis") or {}).get("failing")
    if failing:
        cause["check"] = {key: failing.get(key) for key in ("check", "value", "bound", "iteration", "detail")}
    return cause
