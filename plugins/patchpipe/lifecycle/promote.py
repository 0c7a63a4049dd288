"""Stage 9: promote. Point the production tag at the tested digest, then roll production onto it.

Rolling production back puts both the tag and the service back on the digest they had before.
"""

from __future__ import annotations

import logging

from patchpipe.images import publish
from patchpipe.images.reference import parse_reference
from patchpipe.lifecycle import deploy as deploy_stage

log = logging.getLogger(__name__)


def promote_tag(svc, name: str, pushed: dict) -> dict:
    production = svc.target(name).ref
    candidate = parse_reference(pushed["candidate"]).with_digest(pushed["digest"])
    digest = publish.promote(svc.registry(production), candidate, production)
    return {"production": str(production), "digest": digest}


def promote(svc, name: str, pushed: dict) -> dict:
    tagged = promote_tag(svc, name, pushed)
    rollout = deploy_stage.deploy(svc, name, "production", pushed)
    return {**tagged, "rollout": rollout}


def rollback_production(svc, name: str, inventoried: dict, pushed: dict | None, run_id: str) -> dict:
    production = svc.target(name).ref
    registry = svc.registry(production)
    tag_restored = registry.resolve(production) != inventoried["digest"]
    if tag_restored:
        registry.copy_manifest(production.repository, inventoried["digest"], production.tag)
        log.warning("%s: tag moved back to %s", production, inventoried["digest"])
    result = deploy_stage.rollback(svc, name, "production", pushed, run_id)
    return {**result, "tag_restored": tag_restored, "rolled_back": result["rolled_back"] or tag_restored}
