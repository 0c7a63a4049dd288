"""Stage 1: fetch advisories. For now the distro security archive: newest security version per package."""

from __future__ import annotations

import logging

from patchpipe.advisories.security_archive import fetch_security_index
from patchpipe.advisories.store import save_security_index

log = logging.getLogger(__name__)


def fetch_advisories(svc) -> dict:
    settings = svc.fleet.advisories
    counts = {}
    for release in settings.debian_releases:
        index = fetch_security_index(release, mirror=str(settings.debian_security_mirror))
        save_security_index(svc.engine, index)
        counts[release] = len(index.packages)
        log.info("security archive %s: %d packages with security versions", index.suite, len(index.packages))
    return counts
