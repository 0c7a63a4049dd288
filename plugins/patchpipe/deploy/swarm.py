"""Docker Swarm services: rolling updates by digest, with the service's own update config.

The service's update config (start-first, parallelism 1, failure action rollback) makes each update
zero-downtime; this module sets the image, then waits until Swarm reports the update complete and
every running task runs the new digest, or fails with what Swarm said.
"""

from __future__ import annotations

import logging
import time

from patchpipe.deploy.base import DeployError, Rollout, digest_of

log = logging.getLogger(__name__)
_FAILED_STATES = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}


class SwarmDeployer:
    def __init__(self, api, poll_seconds: float = 1.0):
        self.api = api
        self.poll_seconds = poll_seconds

    def current_image(self, service: str) -> str:
        return self._inspect(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    def deploy(self, service: str, image: str, deadline_seconds: float = 600) -> Rollout:
        previous = self.current_image(service)
        if digest_of(previous) == digest_of(image) and self._converged(service, image):
            log.info("%s already runs %s: nothing to do", service, digest_of(image))
            return Rollout(service, previous, previous, changed=False)
        spec = self._inspect(service)
        template = spec["Spec"]["TaskTemplate"]
        template["ContainerSpec"]["Image"] = image
        log.info("%s: rolling update %s -> %s", service, previous, image)
        self.api.update_service(spec["ID"], spec["Version"]["Index"], task_template=template,
                                fetch_current_spec=True)
        self._wait(service, image, deadline_seconds)
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

    def _wait(self, service: str, image: str, deadline_seconds: float) -> None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            status = self._inspect(service).get("UpdateStatus") or {}
            if status.get("State") in _FAILED_STATES:
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
        if status not in (None, "completed"):
            return False
        wanted = spec["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 1)
        tasks = self.api.tasks(filters={"service": service, "desired-state": "running"})
        running = [t for t in tasks if t["Status"]["State"] == "running"
                   and digest_of(t["Spec"]["ContainerSpec"]["Image"]) == digest_of(image)]
        return len(running) == wanted and len(tasks) == wanted
