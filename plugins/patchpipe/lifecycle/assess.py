"""Stage 3: assess. Which installed packages have a newer security version: the patch plan."""

from __future__ import annotations

import logging
from dataclasses import replace

from patchpipe.advisories.store import newest_security_versions, security_index_info
from patchpipe.emergency import Trigger, urgent_advisories
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import Inventory
from patchpipe.plan import PatchPlan, plan_upgrades

log = logging.getLogger(__name__)


def assess(svc, inventoried: dict, trigger: Trigger | None = None) -> PatchPlan:
    """The patch plan; in an emergency run (``trigger`` set) an empty one unless an advisory the
    sync just reported is urgent for this image (see ``patchpipe.emergency``)."""
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
    plan = PatchPlan(
        image=inventoried["image"], source_ref=inventoried["ref"], source_digest=inventoried["digest"],
        release=release, package_manager=found.package_manager,
    )
    if trigger is not None:
        urgent = urgent_advisories(svc.engine, found, trigger)
        if not urgent:
            log.info("%s: emergency run, but no new exploited or critical advisory affects it", plan.image)
            return replace(plan, why=["emergency run: no new exploited or critical advisory affects this image"])
        plan = replace(plan, why=urgent)
    installed = {p.name: (p.version, p.source_name) for p in found.packages}
    security = newest_security_versions(svc.engine, release, list(installed))
    plan = replace(plan, upgrades=plan_upgrades(installed, security))
    for reason in plan.why:
        log.warning("%s: %s", plan.image, reason)
    for u in plan.upgrades:
        log.info("%s: %s %s -> %s", plan.image, u.name, u.installed, u.target)
    return plan
