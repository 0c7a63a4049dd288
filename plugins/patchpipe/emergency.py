"""Emergency runs: patch now, outside the patch window, because of what the advisory sync just learned.

When ``advisory_sync`` reports new or updated advisories, or CVEs newly listed as exploited (KEV),
``patch_lifecycle`` runs at once. In such a run an image is patched only when one of those
advisories is urgent for it: exploited (KEV) or critical, fixed for the image's release, and about
a package the image has installed at a version below the fix. Every other image is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from patchpipe.advisories.records import Severity, Status
from patchpipe.advisories.store import affected_packages, kev
from patchpipe.packages.inventory import Inventory
from patchpipe.packages.versions import compare_deb


@dataclass(frozen=True)
class Trigger:
    """What the advisory sync reported: ids that are new or changed, and CVEs newly in KEV."""

    advisory_ids: frozenset[str]
    new_kev: frozenset[str]

    @classmethod
    def from_asset_extras(cls, extras: Iterable[dict]) -> "Trigger":
        """From the ``extra`` of ``patchpipe://advisories`` events (see ``SyncReport.asset_extra``)."""
        ids: set[str] = set()
        new_kev: set[str] = set()
        for extra in extras:
            for feed in (extra or {}).get("feeds", {}).values():
                ids.update(feed.get("new", ()), feed.get("updated", ()))
                new_kev.update(feed.get("new_kev", ()))
        return cls(frozenset(ids), frozenset(new_kev))

    def mentions(self, ids: set[str]) -> bool:
        return bool(ids & self.advisory_ids or ids & self.new_kev)


def urgent_advisories(engine: Engine, found: Inventory, trigger: Trigger) -> list[str]:
    """The trigger's advisories that make ``found`` an emergency, each explained in one line."""
    installed = {p.source_name: p.source_version for p in found.packages}
    urgent = []
    for match in affected_packages(engine, found.os.id, found.os.version_codename or "", installed):
        ids = {match.advisory_id, *match.aliases}
        if match.status != Status.FIXED or not match.fixed_version or not trigger.mentions(ids):
            continue
        if compare_deb(installed[match.package], match.fixed_version) >= 0:
            continue
        exploited = any(kev(engine, cve) for cve in ids if cve.startswith("CVE-"))
        if exploited or match.severity == Severity.CRITICAL:
            why = "exploited (KEV)" if exploited else "critical"
            urgent.append(f"{match.advisory_id} {why}: {match.package} "
                          f"{installed[match.package]} < {match.fixed_version}")
    return urgent
