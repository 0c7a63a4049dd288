"""Read dpkg's database: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*``.

Only packages dpkg reports as ``install ok installed`` count; ``status.d`` files carry no Status
field (distroless writes only installed packages there), so their packages count as installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from debian.deb822 import Deb822

from patchpipe.errors import PatchpipeError

INSTALLED = "install ok installed"
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)\s]+)\))?$")
_FIELD_LINE = re.compile(r"^[^\s:#][^:]*:")


@dataclass(frozen=True)
class InstalledPackage:
    """A binary package in an image and the source package it was built from (what advisories name)."""

    name: str
    version: str
    architecture: str
    source_name: str
    source_version: str


def parse_dpkg_status(content: bytes, source: str = "var/lib/dpkg/status") -> list[InstalledPackage]:
    """The installed packages of a dpkg status file; ``source`` names the file in messages."""
    packages = []
    for paragraph in _paragraphs(content, source):
        status = paragraph.get("Status")
        if status is None:
            raise PatchpipeError(f"{source}: package {paragraph.get('Package', '?')} has no Status field")
        if " ".join(status.split()) == INSTALLED:
            packages.append(_package(paragraph, source))
    return packages


def parse_status_d(files: Mapping[str, bytes]) -> list[InstalledPackage]:
    """The packages of distroless ``status.d`` files (path -> content); ``*.md5sums`` are skipped."""
    packages = []
    for path in sorted(files):
        if path.endswith(".md5sums"):
            continue
        packages.extend(_package(paragraph, path) for paragraph in _paragraphs(files[path], path))
    return packages


def _paragraphs(content: bytes, source: str) -> list[Deb822]:
    _check_lines(content, source)
    return [p for p in Deb822.iter_paragraphs(content.splitlines(), use_apt_pkg=False) if p]


def _check_lines(content: bytes, source: str) -> None:
    # python-debian drops lines it cannot parse without a word; a damaged database must not lose
    # packages silently, so every line has to be a field, a continuation or a paragraph break.
    package = "?"
    for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if raw.startswith("Package:"):
            package = raw.split(":", 1)[1].strip()
        elif not raw.strip():
            package = "?"
        if raw.strip() and not raw[0] in " \t" and not _FIELD_LINE.match(raw):
            raise PatchpipeError(f"{source}: line {number} (package {package}) is not a 'Field: value' line: {raw[:80]!r}")


def _package(paragraph: Deb822, source: str) -> InstalledPackage:
    name = paragraph.get("Package", "").strip()
    if not name:
        raise PatchpipeError(f"{source}: a paragraph has no Package field: {str(paragraph)[:120]!r}")
    missing = [f for f in ("Version", "Architecture") if not paragraph.get(f, "").strip()]
    if missing:
        raise PatchpipeError(f"{source}: package {name} has no {' or '.join(missing)} field")
    version = paragraph["Version"].strip()
    source_field = " ".join(paragraph.get("Source", "").split())
    match = _SOURCE.match(source_field) if source_field else None
    if source_field and not match:
        raise PatchpipeError(f"{source}: package {name} has a malformed Source field {source_field!r}")
    return InstalledPackage(
        name=name,
        version=version,
        architecture=paragraph["Architecture"].strip(),
        source_name=match["name"] if match else name,
        source_version=(match["version"] or version) if match else version,
    )
