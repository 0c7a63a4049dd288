"""What every stage needs: the fleet, the Docker Engine, registry clients and the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from patchpipe.errors import PatchpipeError
from patchpipe.fleet import Fleet
from patchpipe.images.reference import ImageReference
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.store import Ledger


@dataclass
class Services:
    fleet: Fleet
    manifest_dir: Path
    engine: Engine
    docker_factory: Any  # () -> docker.APIClient; called once, on first use
    kubernetes_factory: Any = None  # () -> deploy.kubernetes.KubernetesDeployer; called once, on first use
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # registry host -> (user, password)
    deploy_deadline_seconds: float = 600

    @cached_property
    def docker(self):
        return self.docker_factory()

    @cached_property
    def kubernetes(self):
        if self.kubernetes_factory is None:
            raise PatchpipeError("the fleet deploys to Kubernetes, but no Kubernetes client is configured")
        return self.kubernetes_factory()

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.engine)

    def registry(self, ref: ImageReference) -> RegistryClient:
        user, password = self.credentials.get(ref.registry, (None, None))
        return RegistryClient(ref.registry, user, password)

    def docker_auth(self, ref: ImageReference) -> dict | None:
        if ref.registry not in self.credentials:
            return None
        user, password = self.credentials[ref.registry]
        return {"username": user, "password": password}

    def target(self, name: str):
        """The fleet image or base called ``name``."""
        for entry in [*self.fleet.images, *self.fleet.bases]:
            if entry.name == name:
                return entry
        raise PatchpipeError(f"{name!r} is neither an image nor a base in the fleet manifest")
