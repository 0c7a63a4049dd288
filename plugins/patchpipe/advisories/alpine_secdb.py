"""Alpine's secdb (https://secdb.alpinelinux.org/<release>/<repository>.json).

Two shapes are read: the whole file that secdb serves, ``{apkurl, archs, reponame, urlprefix,
distroversion, packages: [{pkg: {name, secfixes}}]}``, and one package of it as split per file by
aquasecurity/vuln-list (``{name, secfixes, distroversion, ...}``).

``secfixes`` maps the version of the *origin* package that fixes something to the ids it fixes.
One Advisory per id (source ``alpine_secdb``), merging the packages it appears under; ecosystem
``alpine``, release = ``distroversion`` (e.g. ``v3.20``). Status FIXED at the key's version; the
key ``"0"`` means the package was never affected: NOT_AFFECTED. secdb has no severities.

An entry is one line of text that may hold several ids ("CVE-2021-1234 XSA-123"). Its CVE ids
become advisories and its other ids their aliases; an entry without a CVE (e.g. ``ALPINE-13661``, a
fix with no CVE assigned) becomes an advisory under its own id, so no fix goes unrecorded.

When one id is listed under two versions of the same package (a first fix was incomplete), both
entries are kept: which version is higher takes apk's version rules, and that is the matcher's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from patchpipe.advisories.records import Advisory, AffectedPackage, Status
from patchpipe.advisories.source import FeedError, Record, RecordProblem, load_json

NOT_AFFECTED_VERSION = "0"
_CVE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_ID_SEPARATORS = re.compile(r"[\s,;]+")


def ids_in_entry(entry: str) -> tuple[list[str], list[str]]:
    """(CVE ids, other ids) of one secfixes entry; CVE ids are upper-cased."""
    cves: list[str] = []
    others: list[str] = []
    for token in _ID_SEPARATORS.split(entry.strip()):
        if not token:
            continue
        if _CVE.fullmatch(token):
            cves.append(token.upper())
        else:
            others.append(token)
    return cves, others


class AlpineSecdbSource:
    name = "alpine_secdb"

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        document = _load(payload, origin)
        release = document.get("distroversion")
        if not isinstance(release, str) or not release.strip():
            raise FeedError(f"{origin}: no distroversion, so the Alpine release is unknown")
        merged: dict[str, _Merged] = {}
        for package in _packages(document, origin):
            if isinstance(package, RecordProblem):
                yield package
                continue
            try:
                _merge_package(merged, package, release.strip())
            except ValueError as exc:
                name = package.get("name")
                yield RecordProblem(name if isinstance(name, str) else None, f"{origin}: package {name}: {exc}")
        for advisory_id, entry in merged.items():
            yield Advisory(
                id=advisory_id,
                source=self.name,
                aliases=tuple(entry.aliases),
                affected=tuple(entry.affected),
            )


@dataclass
class _Merged:
    aliases: dict[str, None] = field(default_factory=dict)  # ordered set
    affected: list[AffectedPackage] = field(default_factory=list)


def _merge_package(merged: dict[str, _Merged], package: dict[str, Any], release: str) -> None:
    """Add one package's secfixes to ``merged``; ValueError (nothing added) if they are malformed."""
    name = package.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no package name")
    secfixes = package.get("secfixes")
    if secfixes is None:
        return
    if not isinstance(secfixes, dict):
        raise ValueError("secfixes is not an object")
    found: list[tuple[str, list[str], AffectedPackage]] = []
    for version, entries in secfixes.items():
        if not version.strip():
            raise ValueError("secfixes has an empty version key")
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
            raise ValueError(f"secfixes[{version!r}] is not a list of strings")
        affected = _affected(name.strip(), release, version.strip())
        for entry in entries:
            cves, others = ids_in_entry(entry)
            if cves:
                found.extend((cve, others, affected) for cve in cves)
            elif others:
                found.append((others[0], others[1:], affected))
    for advisory_id, aliases, affected in found:
        entry = merged.setdefault(advisory_id, _Merged())
        entry.aliases.update(dict.fromkeys(alias for alias in aliases if alias != advisory_id))
        if affected not in entry.affected:
            entry.affected.append(affected)


def _affected(package: str, release: str, version: str) -> AffectedPackage:
    if version == NOT_AFFECTED_VERSION:
        return AffectedPackage("alpine", release, package, Status.NOT_AFFECTED)
    return AffectedPackage("alpine", release, package, Status.FIXED, fixed_version=version)


def _packages(document: dict[str, Any], origin: str) -> Iterator[dict[str, Any] | RecordProblem]:
    if "packages" in document:
        packages = document["packages"]
        if not isinstance(packages, list):
            raise FeedError(f"{origin}: packages is not a list")
        for index, item in enumerate(packages):
            package = item.get("pkg") if isinstance(item, dict) else None
            if isinstance(package, dict):
                yield package
            else:
                yield RecordProblem(None, f"{origin}: packages[{index}] has no pkg object")
    elif "secfixes" in document or "name" in document:
        yield document
    else:
        raise FeedError(f"{origin}: neither a secdb file (packages) nor one secdb package (name, secfixes)")


def _load(payload: BinaryIO, origin: str) -> dict[str, Any]:
    document = load_json(payload, origin)
    if not isinstance(document, dict):
        raise FeedError(f"{origin}: expected a secdb JSON object, got {type(document).__name__}")
    return document
