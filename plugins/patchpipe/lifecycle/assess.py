"""Stage 3: assess. Which installed packages have a newer security version: the patch plan."""

from __future__ import annotations

import logging

from patchpipe.advisories.store import newest_security_versions, security_index_info
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import Inventory
from patchpipe.plan import PatchPlan, plan_upgrades

log = logging.getLogger(__name__)


def assess(svc, inventoried: dict) -> PatchPlan:
    found = Inventory.from_dict(inventoried["inventory"])
    release = found.os.version_codename
    if found.package_manager != "dpkg" or not release:
        raise PatchpipeError(
            f"{inventoried['image']}: no security archive for {found.os.pretty_name} "
            f"({found.package_manager}) yet; only Debian-family images are assessed"
        )
    if security_index_info(svc.engine, release) is None:
        raise PatchpipeError(
            f"{inventoried['image']}: no security archive data for {release}; "
            f"add it to advisories.debian_releases in the fleet manifest"
        )
    installed = {p.name: (p.version, p.source_name) for p in found.packages}
    security = newest_security_versions(svc.engine, release, list(installed))
    plan = PatchPlan(
        image=inventoried["image"], source_ref=inventoried["ref"], source_digest=inventoried["digest"],
        release=release, package_manager=found.package_manager,
        upgrades=plan_upgrades(installed, security),
    )
    for u in plan.upgrades:
        log.info("%s: %s %s -> %s", plan.image, u.name, u.installed, u.target)
    return plan
