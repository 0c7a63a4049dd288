"""Stage 5: verify. Re-inventory the candidate: planned versions reached, nothing removed or downgraded."""

from __future__ import annotations

import logging

from patchpipe.images.reference import parse_reference
from patchpipe.packages.inventory import Inventory, inventory_local_image, inventory_registry_image
from patchpipe.plan import PatchPlan
from patchpipe.verify.candidate import verify_candidate

log = logging.getLogger(__name__)


def verify(svc, plan: PatchPlan, inventoried: dict, patched: dict) -> dict:
    candidate = parse_reference(patched["candidate"])
    after = candidate_inventory(svc, patched)
    before = Inventory.from_dict(inventoried["inventory"])
    changes = verify_candidate(str(candidate), plan, _versions(before), _versions(after))
    for change in changes:
        log.info("%s: %s", candidate, change)
    return {"candidate": str(candidate), "changes": changes}


def candidate_inventory(svc, patched: dict) -> Inventory:
    """The installed packages of the patch stage's candidate, from the local engine or the registry."""
    if patched["image_id"]:
        return inventory_local_image(svc.docker, patched["image_id"])
    candidate = parse_reference(patched["candidate"])
    _, found = inventory_registry_image(svc.registry(candidate), candidate.with_digest(patched["digest"]))
    return found


def _versions(found: Inventory) -> dict[str, str]:
    return {p.name: p.version for p in found.packages}
