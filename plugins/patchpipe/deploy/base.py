"""What every deployer does: deploy by digest, wait for convergence with a deadline, roll back."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Protocol

from patchpipe.errors import PatchpipeError

_DIGEST = re.compile(r"@(sha256:[a-f0-9]{64})")


class DeployError(PatchpipeError):
    """A rollout did not converge, was rolled back by the orchestrator, or ran out of time."""


@dataclass(frozen=True)
class Rollout:
    target: str
    previous_image: str
    image: str
    changed: bool  # False when the target already ran this digest

    def to_dict(self) -> dict:
        return asdict(self)


class Deployer(Protocol):
    def current_image(self, target: str) -> str: ...

    def deploy(self, target: str, image: str, deadline_seconds: float) -> Rollout: ...

    def rollback(self, target: str, failed_image: str, deadline_seconds: float) -> Rollout: ...


def digest_of(image: str) -> str | None:
    match = _DIGEST.search(image)
    return match.group(1) if match else None
