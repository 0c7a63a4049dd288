"""A finding: one vulnerability in one installed binary package, merged across every feed that names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchpipe.advisories.records import Severity, Status


@dataclass(frozen=True)
class Finding:
    id: str  # the CVE when the vulnerability has one, else the advisory's own id (DSA-..., ALPINE-...)
    aliases: tuple[str, ...]  # every other id the feeds know it by, sorted
    package: str  # the installed binary package
    source_package: str  # the source (Debian) or origin (Alpine) package the advisories name
    installed: str  # the binary package's installed version
    fixed: str | None  # the highest fixed version any feed reports; None when there is no fix
    status: Status  # FIXED, AFFECTED or WILL_NOT_FIX; the other statuses are never reported
    severity: Severity  # the highest any feed gives
    kev: bool = False  # listed in CISA's Known Exploited Vulnerabilities catalog
    epss: float | None = None  # EPSS probability of exploitation, when scored
    feeds: tuple[str, ...] = ()  # the feeds that reported it

    @property
    def fixable(self) -> bool:
        return self.status is Status.FIXED

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``patchpipe scan --format json``."""
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package,
            "source_package": self.source_package,
            "installed": self.installed,
            "fixed": self.fixed,
            "status": self.status.value,
            "severity": self.severity.value,
            "kev": self.kev,
            "epss": self.epss,
        }
