"""Kubernetes Deployments: set one container's image by digest, wait like `kubectl rollout status`, roll back.

Works on a ``kubernetes.client.AppsV1Api``; in Airflow it comes from the cncf-kubernetes provider's
KubernetesHook (``patchpipe.airflow.kubernetes.kubernetes_deployer``). A target is one container of
one Deployment: a ``KubernetesTarget`` from the manifest, or the string ``namespace/deployment:container``
that ``Rollout.target`` holds.

Why patchpipe remembers the previous image itself: apps/v1 has no rollback subresource, and
``kubectl rollout undo`` restores the whole previous pod template, including changes others made to
other containers since. patchpipe changes one container's image, so the same strategic-merge PATCH
that sets the image also writes, in the annotation ``patchpipe.io/previous-images``, which image that
container ran before. Both land atomically; rollback restores exactly that image and nothing else.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from patchpipe.deploy.base import DeployError, Rollout, digest_of

log = logging.getLogger(__name__)

PREVIOUS_IMAGES = "patchpipe.io/previous-images"
"""Deployment annotation: JSON ``{container: {"previous": image, "deployed": image}}``."""
CHANGE_CAUSE = "kubernetes.io/change-cause"  # shown by `kubectl rollout history`
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"  # the deployment controller's Progressing reason


@dataclass(frozen=True)
class ContainerRef:
    """One container of one Deployment; ``str()`` is ``namespace/deployment:container``."""

    namespace: str
    deployment: str
    container: str

    @classmethod
    def of(cls, target) -> ContainerRef:
        """From a ``KubernetesTarget`` (anything with the three attributes) or its string form."""
        if isinstance(target, ContainerRef):
            return target
        if not isinstance(target, str):
            return cls(target.namespace, target.deployment, target.container)
        namespace, slash, rest = target.partition("/")
        deployment, colon, container = rest.partition(":")
        if not (slash and colon and namespace and deployment and container):
            raise DeployError(f"Kubernetes target {target!r}: expected namespace/deployment:container")
        return cls(namespace, deployment, container)

    @property
    def deployment_path(self) -> str:
        return f"{self.namespace}/{self.deployment}"

    def __str__(self) -> str:
        return f"{self.deployment_path}:{self.container}"


@dataclass(frozen=True)
class RolloutStatus:
    done: bool
    failed: bool
    message: str


def rollout_status(deployment) -> RolloutStatus:
    """The rule of ``kubectl rollout status`` (kubectl's DeploymentStatusViewer), on a V1Deployment.

    Until the controller has observed the latest generation, the status describes an older spec and
    says nothing about ours. Then: a Progressing condition with reason ProgressDeadlineExceeded is a
    failure; complete means every replica updated, no old replica left and every updated one available.
    """
    name = deployment.metadata.name
    status = deployment.status
    if deployment.metadata.generation > (status.observed_generation or 0):
        return RolloutStatus(False, False, "waiting for the deployment controller to observe the new spec")
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    if progressing is not None and progressing.reason == TIMED_OUT_REASON:
        return RolloutStatus(False, True, f"{TIMED_OUT_REASON}: {progressing.message}")
    wanted = deployment.spec.replicas
    updated, replicas, available = status.updated_replicas or 0, status.replicas or 0, status.available_replicas or 0
    if wanted is not None and updated < wanted:
        return RolloutStatus(False, False, f"{updated} out of {wanted} new replicas have been updated")
    if replicas > updated:
        return RolloutStatus(False, False, f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return RolloutStatus(False, False, f"{available} of {updated} updated replicas are available")
    return RolloutStatus(True, False, f"deployment {name!r} successfully rolled out")


class KubernetesDeployer:
    def __init__(self, apps_api, poll_seconds: float = 1.0):
        self.api = apps_api
        self.poll_seconds = poll_seconds

    def current_image(self, target) -> str:
        ref = ContainerRef.of(target)
        return _container(self._read(ref), ref).image

    def deploy(self, target, image: str, deadline_seconds: float = 600) -> Rollout:
        """Set the container to ``image`` (by digest) and wait until the new ReplicaSet is complete.

        A rollout that fails (ProgressDeadlineExceeded) or outlives ``deadline_seconds`` is rolled back
        to the previous image, then DeployError says what happened.
        """
        ref = ContainerRef.of(target)
        deployment = self._read(ref)
        previous = _container(deployment, ref).image
        if digest_of(previous) is not None and digest_of(previous) == digest_of(image):
            if rollout_status(deployment).done:
                log.info("%s already runs %s: nothing to do", ref, digest_of(image))
                return Rollout(str(ref), previous, previous, changed=False)
            # An earlier attempt set it and did not see the end (a retried task): finish waiting.
            log.info("%s already set to %s; waiting for its rollout to complete", ref, digest_of(image))
            entry = _entry(deployment, ref)
            known = entry.get("previous") if digest_of(entry.get("deployed") or "") == digest_of(image) else None
            self._wait_or_roll_back(ref, image, known, deadline_seconds)
            return Rollout(str(ref), previous, previous, changed=False)
        log.info("%s: rolling update %s -> %s", ref, previous, image)
        entries = {**_entries(deployment, ref), ref.container: {"previous": previous, "deployed": image}}
        self._patch(ref, image, entries, deployment.metadata.resource_version,
                    cause=f"patchpipe: {ref.container} -> {digest_of(image) or image}")
        self._wait_or_roll_back(ref, image, previous, deadline_seconds)
        return Rollout(str(ref), previous, image, changed=True)

    def rollback(self, target, failed_image: str, deadline_seconds: float = 600) -> Rollout:
        """Take the container off ``failed_image``, back to the image patchpipe replaced.

        A no-op when the container no longer runs ``failed_image`` (deploy already rolled it back).
        """
        ref = ContainerRef.of(target)
        deployment = self._read(ref)
        current = _container(deployment, ref).image
        if digest_of(current) != digest_of(failed_image):
            log.info("%s no longer runs %s (now %s): nothing to roll back", ref, digest_of(failed_image), current)
            return Rollout(str(ref), current, current, changed=False)
        entry = _entry(deployment, ref)
        if not entry.get("previous"):
            raise DeployError(f"cannot roll back {ref}: its Deployment has no {PREVIOUS_IMAGES} entry for "
                              f"container {ref.container!r}, so patchpipe did not deploy {current}")
        if digest_of(entry.get("deployed") or "") != digest_of(current):
            raise DeployError(f"cannot roll back {ref}: it runs {current}, but patchpipe deployed "
                              f"{entry.get('deployed')}; the image was changed outside patchpipe")
        self._restore(ref, deployment, entry["previous"], deadline_seconds)
        return Rollout(str(ref), current, entry["previous"], changed=True)

    # --- steps ----------------------------------------------------------------------------------

    def _wait_or_roll_back(self, ref: ContainerRef, image: str, previous: str | None, deadline_seconds: float) -> None:
        try:
            self._wait(ref, deadline_seconds)
        except _RolloutFailed as failure:
            what = f"rollout of {digest_of(image) or image} to {ref} failed: {failure}"
            if not previous:
                raise DeployError(f"{what}; no previous image is recorded, so it was not rolled back") from None
            deployment = self._read(ref)
            current = _container(deployment, ref).image
            if digest_of(current) != digest_of(image):
                raise DeployError(f"{what}; not rolled back: it now runs {current}, set outside patchpipe") from None
            log.warning("%s", what)
            try:
                self._restore(ref, deployment, previous, deadline_seconds)
            except DeployError as error:
                raise DeployError(f"{what}; rolling back to {previous} failed too: {error}") from None
            raise DeployError(f"{what}; rolled back to {previous}") from None

    def _restore(self, ref: ContainerRef, deployment, previous: str, deadline_seconds: float) -> None:
        log.warning("%s: rolling back to %s", ref, previous)
        entries = _entries(deployment, ref)
        entries.pop(ref.container, None)
        self._patch(ref, previous, entries, deployment.metadata.resource_version,
                    cause=f"patchpipe: rolled {ref.container} back to {digest_of(previous) or previous}")
        try:
            self._wait(ref, deadline_seconds)
        except _RolloutFailed as failure:
            raise DeployError(f"rollback of {ref} to {previous} did not complete: {failure}") from None

    def _wait(self, ref: ContainerRef, deadline_seconds: float) -> None:
        """Poll until the rollout is complete; _RolloutFailed on ProgressDeadlineExceeded or our deadline."""
        deadline = time.monotonic() + deadline_seconds
        while True:
            status = rollout_status(self._read(ref))
            if status.failed:
                raise _RolloutFailed(status.message)
            if status.done:
                log.info("%s: %s", ref, status.message)
                return
            if time.monotonic() >= deadline:
                raise _RolloutFailed(f"not complete within {deadline_seconds:g}s ({status.message})")
            time.sleep(self.poll_seconds)

    # --- API calls --------------------------------------------------------------------------------

    def _read(self, ref: ContainerRef):
        try:
            return self.api.read_namespaced_deployment(ref.deployment, ref.namespace)
        except Exception as error:
            raise _api_error(error, "read", ref) from None

    def _patch(self, ref: ContainerRef, image: str, entries: dict, resource_version: str | None, cause: str) -> None:
        # resourceVersion makes the PATCH conditional: if the Deployment changed since we read it (and
        # with it, possibly, the annotation we rewrite), the API answers 409 instead of overwriting.
        body = {
            "metadata": {
                "resourceVersion": resource_version,
                "annotations": {
                    PREVIOUS_IMAGES: json.dumps(entries, sort_keys=True) if entries else None,
                    CHANGE_CAUSE: cause,
                },
            },
            "spec": {"template": {"spec": {"containers": [{"name": ref.container, "image": image}]}}},
        }
        try:
            self.api.patch_namespaced_deployment(ref.deployment, ref.namespace, body, _content_type=STRATEGIC_MERGE)
        except Exception as error:
            raise _api_error(error, "patch", ref) from None


class _RolloutFailed(Exception):
    """The rollout will not complete; the message says why (the controller's words, or our deadline)."""


def _container(deployment, ref: ContainerRef):
    containers = deployment.spec.template.spec.containers or []
    for container in containers:
        if container.name == ref.container:
            return container
    names = ", ".join(repr(c.name) for c in containers) or "none"
    raise DeployError(f"Deployment {ref.deployment_path} has no container {ref.container!r} in its pod "
                      f"template (containers: {names})")


def _entries(deployment, ref: ContainerRef) -> dict:
    raw = (deployment.metadata.annotations or {}).get(PREVIOUS_IMAGES)
    if not raw:
        return {}
    try:
        entries = json.loads(raw)
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise DeployError(f"Deployment {ref.deployment_path}: annotation {PREVIOUS_IMAGES} is not a JSON "
                          f"object: {raw[:200]!r}")
    return entries


def _entry(deployment, ref: ContainerRef) -> dict:
    entry = _entries(deployment, ref).get(ref.container)
    return entry if isinstance(entry, dict) else {}


def _api_error(error: Exception, verb: str, ref: ContainerRef) -> DeployError:
    """A DeployError naming the Deployment, with the API's own message (its Status object) if any."""
    from kubernetes.client.exceptions import ApiException

    if not isinstance(error, ApiException):
        return DeployError(f"cannot {verb} Deployment {ref.deployment_path}: Kubernetes API unreachable "
                           f"({type(error).__name__}: {error})")
    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except (ValueError, AttributeError):
        message = error.reason
    if error.status == 404:
        return DeployError(f"Deployment {ref.deployment_path} not found ({message})")
    if error.status == 409:
        return DeployError(f"Deployment {ref.deployment_path} changed while patchpipe patched it; nothing "
                           f"was changed, rerun the task ({message})")
    return DeployError(f"cannot {verb} Deployment {ref.deployment_path}: HTTP {error.status}: {message}")
