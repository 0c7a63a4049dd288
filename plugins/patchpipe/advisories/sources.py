"""The advisory sources by name, and where each is fetched from unless configured otherwise.

Every source here parses a feed into normalized records (``source.AdvisorySource``). URLs are
configuration, not code: an air-gapped site points a source at its own mirror, and
``osv_urls`` / ``alpine_secdb_urls`` build the list for other ecosystems, releases or repositories.

The distribution security archive (``security_archive``) is a source too, but not one of these: it
produces the newest version of each package in a release's security suite, not advisories, and is
fetched and stored through its own functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from patchpipe.advisories.alpine_secdb import AlpineSecdbSource
from patchpipe.advisories.debian_tracker import DebianTrackerSource
from patchpipe.advisories.epss import EpssSource
from patchpipe.advisories.kev import KevSource
from patchpipe.advisories.osv import OsvSource
from patchpipe.advisories.source import AdvisorySource
from patchpipe.errors import PatchpipeError

OSV_BULK_BASE = "https://osv-vulnerabilities.storage.googleapis.com"
OSV_ECOSYSTEMS = ("Debian", "Alpine", "Ubuntu")
ALPINE_SECDB_BASE = "https://secdb.alpinelinux.org"
ALPINE_RELEASES = ("v3.20",)
ALPINE_REPOSITORIES = ("main", "community")
DEBIAN_TRACKER_URL = "https://security-tracker.debian.org/tracker/data/json"
KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"

SOURCES: dict[str, AdvisorySource] = {
    source.name: source
    for source in (OsvSource(), DebianTrackerSource(), AlpineSecdbSource(), KevSource(), EpssSource())
}


def osv_urls(ecosystems: Iterable[str] = OSV_ECOSYSTEMS, base: str = OSV_BULK_BASE) -> tuple[str, ...]:
    """The bulk archive of each OSV ecosystem (spelled as OSV does: ``Debian``, ``Alpine``, ``Ubuntu``)."""
    return tuple(f"{base.rstrip('/')}/{ecosystem}/all.zip" for ecosystem in ecosystems)


def alpine_secdb_urls(
    releases: Iterable[str] = ALPINE_RELEASES,
    repositories: Iterable[str] = ALPINE_REPOSITORIES,
    base: str = ALPINE_SECDB_BASE,
) -> tuple[str, ...]:
    """One secdb file per release (``v3.20``) and repository (``main``, ``community``)."""
    repositories = tuple(repositories)
    return tuple(
        f"{base.rstrip('/')}/{release}/{repository}.json" for release in releases for repository in repositories
    )


DEFAULT_URLS: dict[str, tuple[str, ...]] = {
    "osv": osv_urls(),
    "debian_tracker": (DEBIAN_TRACKER_URL,),
    "alpine_secdb": alpine_secdb_urls(),
    "kev": (KEV_URL,),
    "epss": (EPSS_URL,),
}


def get_source(name: str) -> AdvisorySource:
    """The source called ``name``; ``debian-tracker`` is accepted for ``debian_tracker`` (CLI spelling)."""
    source = SOURCES.get(name.strip().lower().replace("-", "_"))
    if source is None:
        raise PatchpipeError(f"unknown advisory source {name!r}; known sources: {', '.join(sorted(SOURCES))}")
    return source
