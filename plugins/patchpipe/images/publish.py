"""Push a candidate to its registry, and promote a pushed digest to the production tag."""

from __future__ import annotations

import logging
import re

from patchpipe.errors import RegistryError
from patchpipe.images.reference import ImageReference

log = logging.getLogger(__name__)
_DIGEST_IN_STATUS = re.compile(r"digest: (sha256:[a-f0-9]{64})")


def push(api, ref: ImageReference, auth_config: dict | None = None) -> str:
    """``docker push`` of ``ref`` (a tag); returns the manifest digest the registry stored."""
    log.info("pushing %s", ref)
    digest = None
    for chunk in api.push(ref.name, tag=ref.tag, stream=True, decode=True, auth_config=auth_config):
        if "error" in chunk:
            raise RegistryError(f"push of {ref} failed: {chunk['error']}")
        status = chunk.get("status", "")
        if match := _DIGEST_IN_STATUS.search(status):
            digest = match.group(1)
        aux = chunk.get("aux") or {}
        digest = aux.get("Digest", digest)
    if not digest:
        raise RegistryError(f"push of {ref} finished without the registry reporting a digest")
    log.info("pushed %s as %s", ref, digest)
    return digest


def promote(registry, candidate: ImageReference, production: ImageReference) -> str:
    """Point the production tag at the candidate's digest by copying the manifest (no layers move)."""
    current = registry.resolve(production)
    if current == candidate.digest:
        log.info("%s already points at %s", production, candidate.digest)
        return current
    digest = registry.copy_manifest(production.repository, candidate.digest, production.tag)
    log.info("promoted %s: %s -> %s", production, current, digest)
    return digest
