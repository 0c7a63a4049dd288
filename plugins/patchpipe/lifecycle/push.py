"""Stage 6: push the candidate to the registry and record its digest."""

from __future__ import annotations

from patchpipe.errors import RegistryError
from patchpipe.images import publish
from patchpipe.images.reference import parse_reference


def push(svc, patched: dict) -> dict:
    candidate = parse_reference(patched["candidate"])
    if patched["digest"]:  # reused: already in the registry
        return {"candidate": str(candidate), "digest": patched["digest"], "pushed": False}
    digest = publish.push(svc.docker, candidate, auth_config=svc.docker_auth(candidate))
    stored = svc.registry(candidate).resolve(candidate)
    if stored != digest:
        raise RegistryError(f"{candidate}: pushed {digest} but the registry serves {stored}")
    return {"candidate": str(candidate), "digest": digest, "pushed": True}
