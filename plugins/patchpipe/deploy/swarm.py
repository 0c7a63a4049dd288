"""Docker Swarm services: zero-downtime rolling updates by digest.

Every update sets the service's update and rollback config, whatever the service was created with:
start-first (the new task must be running, and healthy when the image has a HEALTHCHECK, before an
old one stops), parallelism 1, a monitor period after each task, and failure action rollback, so
Swarm itself rolls back a task that dies or turns unhealthy within the monitor period. This module
then waits until Swarm reports the update complete and every running task runs the new digest, or
fails with what Swarm said, or when the progress deadline passes.
"""

from __future__ import annotations

import logging
import time

from docker.types import RollbackConfig, UpdateConfig

from patchpipe.deploy.base import DeployError, Rollout, digest_of

log = logging.getLogger(__name__)
_FAILED_STATES = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}


_NS_PER_SECOND = 1_000_000_000


class SwarmDeployer:
    def __init__(self, api, poll_seconds: float = 1.0, monitor_seconds: float = 5.0):
        self.api = api
        self.poll_seconds = poll_seconds
        self.monitor_seconds = monitor_seconds

    def update_policy(self) -> tuple[UpdateConfig, RollbackConfig]:
        """start-first, one task at a time, watched for ``monitor_seconds``; a failure rolls back."""
        monitor = int(self.monitor_seconds * _NS_PER_SECOND)
        return (UpdateConfig(parallelism=1, order="start-first", failure_action="rollback", monitor=monitor),
                RollbackConfig(parallelism=1, order="start-first", failure_action="pause", monitor=monitor))

    def current_image(self, service: str) -> str:
        return self._inspect(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    def deploy(self, service: str, image: str, deadline_seconds: float = 600) -> Rollout:
        previous = self.current_image(service)
        if digest_of(previous) == digest_of(image) and self._converged(service, image):
            log.info("%s already runs %s: nothing to do", service, digest_of(image))
            return Rollout(service, previous, previous, changed=False)
        spec = self._inspect(service)
        before = spec.get("UpdateStatus")  # a finished earlier update's status says nothing about this one
        template = spec["Spec"]["TaskTemplate"]
        template["ContainerSpec"]["Image"] = image
        log.info("%s: rolling update %s -> %s", service, previous, image)
        update, rollback = self.update_policy()
        self.api.update_service(spec["ID"], spec["Version"]["Index"], task_template=template,
                                update_config=update, rollback_config=rollback, fetch_current_spec=True)
        self._wait(service, image, deadline_seconds, stale=before)
        return Rollout(service, previous, image, changed=True)

    def rollback(self, service: str, failed_image: str, deadline_seconds: float = 600) -> Rollout:
        """Take ``service`` off ``failed_image``, back to the image of its previous spec.

        A no-op when Swarm's own failure action already rolled the service back.
        """
        spec = self._inspect(service)
        current = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        if digest_of(current) != digest_of(failed_image):
            log.info("%s no longer runs %s (now %s): nothing to roll back", service, digest_of(failed_image), current)
            return Rollout(service, current, current, changed=False)
        previous = (spec.get("PreviousSpec") or {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image")
        if not previous:
            raise DeployError(f"cannot roll back {service}: Swarm keeps no previous spec for it")
        log.warning("%s: rolling back from %s to %s", service, current, previous)
        return self.deploy(service, previous, deadline_seconds)

    def _inspect(self, service: str) -> dict:
        import docker.errors

        try:
            return self.api.inspect_service(service)
        except docker.errors.NotFound:
            raise DeployError(f"Swarm service {service!r} does not exist") from None

    def _wait(self, service: str, image: str, deadline_seconds: float, stale: dict | None = None) -> None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            status = self._inspect(service).get("UpdateStatus") or {}
            if status.get("State") in _FAILED_STATES and status != stale:
                raise DeployError(
                    f"Swarm rolled {service} back instead of updating it to {digest_of(image)}: "
                    f"{status.get('Message', 'no message')}"
                )
            if self._converged(service, image):
                log.info("%s converged on %s", service, digest_of(image))
                return
            time.sleep(self.poll_seconds)
        raise DeployError(f"{service} did not converge on {digest_of(image)} within {deadline_seconds:.0f}s")

    def _converged(self, service: str, image: str) -> bool:
        spec = self._inspect(service)
        status = (spec.get("UpdateStatus") or {}).get("State")
        if status not in (None, "completed", "rollback_completed"):  # still moving
            return False
        wanted = spec["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 1)
        tasks = self.api.tasks(filters={"service": service, "desired-state": "running"})
        running = [t for t in tasks if t["Status"]["State"] == "running"
                   and digest_of(t["Spec"]["ContainerSpec"]["Image"]) == digest_of(image)]
        return len(running) == wanted and len(tasks) == wanted
