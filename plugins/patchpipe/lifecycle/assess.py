"""Stage 3: assess. Which installed packages have a newer security version: the patch plan.

The plan comes from the security archive, because that is what apt can install. Each upgrade is
annotated with the findings it clears (``patchpipe.scan.match`` against the advisory store), so
the plan says why as well as what. Two mismatches are logged, never hidden:

- an upgrade no finding explains: the store has no advisory naming the source package with a fix
  at or below the target (feeds not synced yet, or a rebuild the security team shipped alongside
  a fix in another package);
- a ``fixed`` finding no upgrade clears: its fix is not in the security suite (a point-release
  fix for a ``no-dsa`` issue, reachable only through the main archive's next point release).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from patchpipe.advisories.published import published_dates
from patchpipe.advisories.store import newest_security_versions, security_index_info
from patchpipe.emergency import Trigger, urgent_advisories
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import Inventory
from patchpipe.packages.versions import compare_deb
from patchpipe.plan import PackageUpgrade, PatchPlan, plan_upgrades
from patchpipe.scan.findings import Finding
from patchpipe.scan.match import match

log = logging.getLogger(__name__)


def assess(svc, inventoried: dict, trigger: Trigger | None = None, run_id: str | None = None) -> PatchPlan:
    """The patch plan; in an emergency run (``trigger`` set) an empty one unless an advisory the
    sync just reported is urgent for this image (see ``patchpipe.emergency``). With ``run_id`` the
    production digest's findings go to the ledger, no-ops included: that is the fleet's history."""
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
    findings = match(svc.engine, found)
    if run_id is not None:
        svc.ledger.record_findings(run_id, inventoried["image"], inventoried["digest"], findings,
                                   published_dates(svc.engine, findings))
    if trigger is not None:
        urgent = urgent_advisories(svc.engine, found, trigger)
        if not urgent:
            log.info("%s: emergency run, but no new exploited or critical advisory affects it", plan.image)
            return replace(plan, why=["emergency run: no new exploited or critical advisory affects this image"])
        plan = replace(plan, why=urgent)
    installed = {p.name: (p.version, p.source_name) for p in found.packages}
    security = newest_security_versions(svc.engine, release, list(installed))
    plan = replace(plan, upgrades=[_with_fixes(u, findings) for u in plan_upgrades(installed, security)])
    for reason in plan.why:
        log.warning("%s: %s", plan.image, reason)
    for u in plan.upgrades:
        fixes = ", ".join(u.fixes) or "no advisory in the store names this fix"
        log.info("%s: %s %s -> %s (%s)", plan.image, u.name, u.installed, u.target, fixes)
    planned = {u.name for u in plan.upgrades}
    for f in findings:
        if f.fixable and f.package not in planned:
            log.info("%s: %s in %s is fixed in %s, which the security archive does not offer", plan.image,
                     f.id, f.package, f.fixed)
    return plan


def _with_fixes(upgrade: PackageUpgrade, findings: list[Finding]) -> PackageUpgrade:
    fixes = sorted({f.id for f in findings if f.package == upgrade.name and f.fixed
                    and compare_deb(f.fixed, upgrade.target) <= 0})
    return replace(upgrade, fixes=fixes)
