"""Which advisory feeds the sync fetches, from where, and how old their data may get.

A *feed* is one URL read by one source: OSV has one feed per ecosystem (``osv-debian``), Alpine's
secdb one per release and repository (``alpine-secdb-v3.20-main``). Each feed's data is stored and
replaced on its own, and has its own state (freshness, validators, counts).

Every URL is configuration: an air-gapped site points the bases at its own mirror. From the
environment (``SyncSettings.from_env``), an empty value turns that feed off:

    PATCHPIPE_OSV_BASE              https://osv-vulnerabilities.storage.googleapis.com
    PATCHPIPE_OSV_ECOSYSTEMS        Debian,Alpine,Ubuntu
    PATCHPIPE_ALPINE_SECDB_BASE     https://secdb.alpinelinux.org
    PATCHPIPE_ALPINE_RELEASES       v3.20
    PATCHPIPE_ALPINE_REPOSITORIES   main,community
    PATCHPIPE_DEBIAN_TRACKER_URL    https://security-tracker.debian.org/tracker/data/json
    PATCHPIPE_KEV_URL               https://www.cisa.gov/.../known_exploited_vulnerabilities.json
    PATCHPIPE_EPSS_URL              https://epss.empiricalsecurity.com/epss_scores-current.csv.gz
    PATCHPIPE_ADVISORY_MAX_AGE_HOURS  48: the sync fails when a feed's data is older than this
    PATCHPIPE_ADVISORY_ATTEMPTS       4: tries per feed on connection errors, 429 and 5xx
    PATCHPIPE_ADVISORY_BACKOFF_SECONDS  2: the first wait between tries; it doubles, up to 60 s
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from patchpipe.advisories import sources
from patchpipe.advisories.http import DEFAULT_TIMEOUT, RetryPolicy
from patchpipe.errors import PatchpipeError

DEFAULT_MAX_AGE = timedelta(hours=48)


@dataclass(frozen=True)
class Feed:
    name: str  # e.g. "osv-debian"; names the stored data and its state
    source: str  # the parser, a key of ``sources.SOURCES``
    url: str


def osv_feed(ecosystem: str, base: str = sources.OSV_BULK_BASE) -> Feed:
    """OSV's bulk archive of one ecosystem, spelled as OSV does (``Debian``, ``Alpine``, ``Ubuntu``)."""
    return Feed(f"osv-{ecosystem.lower()}", "osv", sources.osv_urls([ecosystem], base)[0])


def alpine_secdb_feed(release: str, repository: str, base: str = sources.ALPINE_SECDB_BASE) -> Feed:
    """Alpine's secdb for one release (``v3.20``) and repository (``main``)."""
    url = sources.alpine_secdb_urls([release], [repository], base)[0]
    return Feed(f"alpine-secdb-{release}-{repository}", "alpine_secdb", url)


def default_feeds() -> tuple[Feed, ...]:
    return (
        *(osv_feed(ecosystem) for ecosystem in sources.OSV_ECOSYSTEMS),
        Feed("debian-tracker", "debian_tracker", sources.DEBIAN_TRACKER_URL),
        *(
            alpine_secdb_feed(release, repository)
            for release in sources.ALPINE_RELEASES
            for repository in sources.ALPINE_REPOSITORIES
        ),
        Feed("kev", "kev", sources.KEV_URL),
        Feed("epss", "epss", sources.EPSS_URL),
    )


@dataclass(frozen=True)
class SyncSettings:
    feeds: tuple[Feed, ...] = field(default_factory=default_feeds)
    max_age: timedelta = DEFAULT_MAX_AGE
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    retry: RetryPolicy = RetryPolicy()
    download_dir: Path | None = None  # where bodies are spooled; None: the system's temporary directory

    def __post_init__(self) -> None:
        names = [feed.name for feed in self.feeds]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise PatchpipeError(f"advisory feeds: the name {', '.join(duplicates)} is used twice")
        unknown = sorted({feed.source for feed in self.feeds} - set(sources.SOURCES))
        if unknown:
            raise PatchpipeError(
                f"advisory feeds: unknown source {', '.join(unknown)}; known: {', '.join(sorted(sources.SOURCES))}"
            )

    def select(self, names: Sequence[str] | None) -> tuple[Feed, ...]:
        """The feeds called ``names`` (all when None), in the order given."""
        if names is None:
            return self.feeds
        by_name = {feed.name: feed for feed in self.feeds}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise PatchpipeError(
                f"unknown advisory feed {', '.join(unknown)}; configured feeds: {', '.join(by_name) or 'none'}"
            )
        return tuple(by_name[name] for name in dict.fromkeys(names))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SyncSettings":
        env = os.environ if environ is None else environ
        osv_base = env.get("PATCHPIPE_OSV_BASE", sources.OSV_BULK_BASE)
        alpine_base = env.get("PATCHPIPE_ALPINE_SECDB_BASE", sources.ALPINE_SECDB_BASE)
        feeds: list[Feed] = []
        if osv_base:
            feeds += [osv_feed(e, osv_base) for e in _names(env, "PATCHPIPE_OSV_ECOSYSTEMS", sources.OSV_ECOSYSTEMS)]
        if url := env.get("PATCHPIPE_DEBIAN_TRACKER_URL", sources.DEBIAN_TRACKER_URL):
            feeds.append(Feed("debian-tracker", "debian_tracker", url))
        if alpine_base:
            repositories = _names(env, "PATCHPIPE_ALPINE_REPOSITORIES", sources.ALPINE_REPOSITORIES)
            feeds += [
                alpine_secdb_feed(release, repository, alpine_base)
                for release in _names(env, "PATCHPIPE_ALPINE_RELEASES", sources.ALPINE_RELEASES)
                for repository in repositories
            ]
        if url := env.get("PATCHPIPE_KEV_URL", sources.KEV_URL):
            feeds.append(Feed("kev", "kev", url))
        if url := env.get("PATCHPIPE_EPSS_URL", sources.EPSS_URL):
            feeds.append(Feed("epss", "epss", url))
        retry = RetryPolicy(
            attempts=int(_positive(env, "PATCHPIPE_ADVISORY_ATTEMPTS", RetryPolicy.attempts, whole=True)),
            backoff=_positive(env, "PATCHPIPE_ADVISORY_BACKOFF_SECONDS", RetryPolicy.backoff),
        )
        max_age = timedelta(hours=_positive(env, "PATCHPIPE_ADVISORY_MAX_AGE_HOURS", DEFAULT_MAX_AGE / timedelta(hours=1)))
        return cls(feeds=tuple(feeds), max_age=max_age, retry=retry)


def _names(env: Mapping[str, str], variable: str, default: Sequence[str]) -> tuple[str, ...]:
    value = env.get(variable)
    if value is None:
        return tuple(default)
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _positive(env: Mapping[str, str], variable: str, default: float, whole: bool = False) -> float:
    value = env.get(variable, "").strip()
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = 0
    if not (number > 0 and math.isfinite(number)):
        kind = "a whole number" if whole else "a number"
        raise PatchpipeError(f"{variable}={value!r}: expected {kind} above 0")
    return number
