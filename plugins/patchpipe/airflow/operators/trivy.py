"""TrivyScanOperator: Trivy's findings for an image, as a second opinion beside patchpipe's own scan.

Optional by design. Trivy runs from an image, and patchpipe pulls images only from registries it is
given (an air-gapped site has no Docker Hub or ghcr.io; the lab has none either). So before anything
runs, the operator asks the registry for the Trivy image: when it is not there the task is skipped
(AirflowSkipException, recorded as ``skipped`` in the ledger) with a message saying where to push
one; an unreachable registry fails the task, as every registry error does.

- Trivy image: ``$PATCHPIPE_TRIVY_IMAGE``, else ``<registry of the fleet's first image>/tools/trivy:latest``
  (the registry every fleet has, and the one the Docker Engine already pulls from).
- What is scanned: the patch stage's candidate (its output, ``candidate``) by digest when it has been
  pushed, else by tag from the local Docker Engine; without a candidate, the image's production tag.
- How: the docker provider's DockerOperator runs ``trivy image --format json --output FILE
  --scanners vuln [--insecure] TARGET`` and copies FILE out of the container (``retrieve_output``);
  the report is read with ``patchpipe.scan.trivy``. The Engine's socket is mounted (unix sockets
  only) so Trivy can read an image that exists only in the Engine; a loopback registry (the lab's
  127.0.0.1:5000) is reached through the host network and over plain HTTP (``--insecure``).
  Registry credentials go in as TRIVY_USERNAME / TRIVY_PASSWORD through ``private_environment``,
  which Airflow never renders or logs.
- Trivy's vulnerability database is downloaded from Trivy's default repository unless
  ``trivy_args`` says otherwise (``--skip-db-update`` for an image with the database baked in,
  ``--db-repository`` for a mirror).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator
from patchpipe.errors import PatchpipeError
from patchpipe.images.reference import ImageReference, parse_reference

TRIVY_IMAGE_ENV = "PATCHPIPE_TRIVY_IMAGE"
DEFAULT_TRIVY_REPOSITORY = "tools/trivy:latest"
REPORT_PATH = "/tmp/patchpipe-trivy.json"  # inside the Trivy container
DEFAULT_TRIVY_ARGS = ("--scanners", "vuln")


def trivy_image(fleet) -> ImageReference:
    """``$PATCHPIPE_TRIVY_IMAGE``, else ``tools/trivy:latest`` in the registry of the fleet's first image."""
    configured = os.environ.get(TRIVY_IMAGE_ENV)
    if configured:
        return parse_reference(configured)
    return parse_reference(f"{fleet.images[0].ref.registry}/{DEFAULT_TRIVY_REPOSITORY}")


class TrivyScanOperator(StageOperator):
    """Scan the candidate (or the production image) with Trivy; skipped when no Trivy image is in the registry."""

    stage = "trivy"
    template_fields = (*StageOperator.template_fields, "candidate")

    def __init__(self, *, candidate: dict | None = None, trivy_image: str | None = None,
                 trivy_args: Sequence[str] = DEFAULT_TRIVY_ARGS, docker_url: str | None = None,
                 docker_conn_id: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.candidate = candidate
        self.trivy_image = trivy_image
        self.trivy_args = tuple(trivy_args)
        self.docker_url = docker_url or os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock")
        self.docker_conn_id = docker_conn_id

    def run(self, services, context):
        from patchpipe.scan.priority import prioritized
        from patchpipe.scan.trivy import read_trivy_report

        trivy = parse_reference(self.trivy_image) if self.trivy_image else trivy_image(services.fleet)
        self.ensure_available(services, trivy)
        target = self.scan_target(services)
        container = self.trivy_container(services, trivy, target)
        document = container.execute(context)
        if not isinstance(document, dict):
            raise PatchpipeError(f"Trivy ({trivy}) wrote no JSON report at {REPORT_PATH} for {target}")
        report = read_trivy_report(document, name=f"Trivy report of {target}")
        findings = prioritized(report.findings)
        self.log.info("%s: Trivy found %d findings (%d fixable) in %s", self.image, len(findings),
                      sum(f.fixable for f in findings), target)
        return {"image": self.image, "target": str(target), "trivy_image": str(trivy),
                "os": {"family": report.os.id, "version": report.os.version_id},
                "packages": report.package_count, "findings": [f.to_dict() for f in findings]}

    @staticmethod
    def ensure_available(services, trivy: ImageReference) -> None:
        """Skip the task, saying what to do, when the registry does not hold the Trivy image."""
        with services.registry(trivy) as client:
            present = client.tag_exists(trivy.repository, trivy.reference)
        if not present:
            raise AirflowSkipException(f"Trivy image {trivy} not in registry {trivy.registry}; push one there "
                                       f"(or set {TRIVY_IMAGE_ENV}) to enable the Trivy stage")

    def scan_target(self, services) -> ImageReference:
        if not self.candidate:
            return services.target(self.image).ref
        candidate = parse_reference(self.candidate["candidate"])
        digest = self.candidate.get("digest")
        return candidate.with_digest(digest) if digest else candidate

    def trivy_container(self, services, trivy: ImageReference, target: ImageReference):
        """The DockerOperator that runs Trivy against ``target`` and hands back its JSON report."""
        from docker.types import Mount

        from patchpipe.airflow.trivy_container import TrivyContainer

        with services.registry(target) as client:
            insecure = client.scheme == "http"  # a loopback registry: RegistryClient speaks plain HTTP to it
        command = ["image", "--format", "json", "--output", REPORT_PATH, *self.trivy_args,
                   *(["--insecure"] if insecure else []), str(target)]
        user, password = services.credentials.get(target.registry, (None, None))
        secrets = {"TRIVY_USERNAME": user, "TRIVY_PASSWORD": password} if user else {}
        socket = None
        if self.docker_url.startswith("unix://"):
            socket = "/" + self.docker_url.removeprefix("unix://").lstrip("/")
        return TrivyContainer(
            task_id=f"{self.task_id}.trivy",
            image=str(trivy),
            command=command,
            docker_url=self.docker_url,
            docker_conn_id=self.docker_conn_id,
            private_environment=secrets,
            network_mode="host" if insecure else None,
            mounts=[Mount(target="/var/run/docker.sock", source=socket, type="bind", read_only=True)] if socket else [],
            mount_tmp_dir=False,
            auto_remove="force",
            retrieve_output=True,
            retrieve_output_path=REPORT_PATH,
        )
