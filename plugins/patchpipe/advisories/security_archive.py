"""The distribution's security archive: the newest version of each package it publishes.

For a release (e.g. Debian ``bookworm``) this reads the security suite's ``Release`` file and the
``Packages`` index of each component, and keeps per binary package the newest version by dpkg
rules together with its source package. An installed package older than that version has a fix
waiting.

Integrity: each index is checked against the size and SHA256 that ``Release`` lists for it, which
catches truncated or altered downloads and a mirror caught mid-update. The ``Release`` file
itself is NOT authenticated: GPG verification of ``InRelease`` against the archive keyring is out
of scope here, so a malicious mirror (or a man in the middle on plain HTTP) could serve a
consistent but false archive.

Ubuntu's security archive has the same layout (``<codename>-security`` under
http://security.ubuntu.com/ubuntu) and is read by the same code.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import IO, Callable, Iterator, Mapping, Sequence

import requests
from debian.deb822 import Packages, Release

from patchpipe.db import utc_now
from patchpipe.errors import PatchpipeError
from patchpipe.packages.versions import check_deb, compare_deb

DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
UBUNTU_SECURITY_MIRROR = "http://security.ubuntu.com/ubuntu"
DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds

_DEBIAN_RELEASES_WITHOUT_SUITE = {"sid", "unstable", "experimental", "rc-buggy"}
# Releases before bullseye used the "<codename>/updates" layout and have left the security mirror.
_DEBIAN_LEGACY_RELEASES = {"buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch",
                           "lenny", "squeeze", "wheezy", "jessie", "stretch", "buster"}

Decompressor = Callable[[IO[bytes]], IO[bytes]]

# Preferred first: the index file name and how to read it as a binary stream.
_INDEX_VARIANTS: tuple[tuple[str, Decompressor], ...] = (
    ("Packages.xz", lzma.open),
    ("Packages.gz", gzip.open),
    ("Packages", lambda raw: raw),
)
_DECOMPRESSION_ERRORS = (lzma.LZMAError, gzip.BadGzipFile, zlib.error, EOFError)
_CHUNK = 1 << 16
_SPOOL_IN_MEMORY = 16 << 20


@dataclass(frozen=True)
class SecuritySource:
    """Where an image's distribution publishes security updates."""

    distro: str
    release: str
    suite: str
    mirror: str


@dataclass(frozen=True)
class SecurityVersion:
    version: str
    source: str


@dataclass(frozen=True)
class SecurityIndex:
    """The newest version of every binary package in one release's security suite."""

    release: str
    suite: str
    mirror: str
    fetched_at: datetime
    release_date: datetime | None
    packages: Mapping[str, SecurityVersion] = field(repr=False)


def security_source_for(
    os_id: str,
    version_codename: str | None = None,
    version_id: str | None = None,
    *,
    mirror: str | None = None,
) -> SecuritySource:
    """The security suite for an image's os-release ``ID``, ``VERSION_CODENAME`` and ``VERSION_ID``."""
    distro = (os_id or "").strip().lower()
    codename = (version_codename or "").strip().lower()
    if distro not in ("debian", "ubuntu"):
        version = version_codename or version_id or "(no version)"
        raise PatchpipeError(f"no security archive source for {os_id or '(no ID)'} {version} yet")
    if not codename:
        raise PatchpipeError(
            f"os-release of {distro} {version_id or ''} has no VERSION_CODENAME; cannot pick its security suite"
        )
    if distro == "debian" and codename in _DEBIAN_RELEASES_WITHOUT_SUITE:
        raise PatchpipeError(f"debian {codename} has no security suite (only stable releases do)")
    if distro == "debian" and codename in _DEBIAN_LEGACY_RELEASES:
        raise PatchpipeError(
            f"no security archive source for debian {codename}: it predates the <codename>-security layout "
            "and is no longer on the security mirror"
        )
    default_mirror = DEBIAN_SECURITY_MIRROR if distro == "debian" else UBUNTU_SECURITY_MIRROR
    return SecuritySource(distro, codename, f"{codename}-security", (mirror or default_mirror).rstrip("/"))


def fetch_security_index(
    release: str,
    *,
    mirror: str = DEBIAN_SECURITY_MIRROR,
    components: Sequence[str] = ("main",),
    arch: str = "amd64",
    session: requests.Session | None = None,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> SecurityIndex:
    """Read ``<mirror>/dists/<release>-security`` and return its newest package versions.

    Raises PatchpipeError naming the URL when the mirror is unreachable, answers an HTTP error,
    or serves an index that does not match ``Release`` or does not decompress.
    """
    mirror = mirror.rstrip("/")
    suite = f"{release}-security"
    suite_url = f"{mirror}/dists/{suite}"
    fetched_at = utc_now()
    newest: dict[str, SecurityVersion] = {}
    with contextlib.ExitStack() as cleanup:
        if session is None:
            session = cleanup.enter_context(requests.Session())
        http = _Http(session, timeout)
        release_file = _read_release(http, f"{suite_url}/Release", suite)
        for component in components:
            name, checksum, decompress = _pick_index(release_file, component, arch, f"{suite_url}/Release")
            url = f"{suite_url}/{name}"
            with http.download_verified(url, checksum) as raw:
                _merge_newest(newest, _read_packages(decompress(raw), url), url)
    return SecurityIndex(
        release=release,
        suite=suite,
        mirror=mirror,
        fetched_at=fetched_at,
        release_date=_release_date(release_file),
        packages=newest,
    )


def fetch_security_index_for(
    source: SecuritySource,
    *,
    components: Sequence[str] = ("main",),
    arch: str = "amd64",
    session: requests.Session | None = None,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> SecurityIndex:
    """``fetch_security_index`` for a source from ``security_source_for``."""
    return fetch_security_index(
        source.release, mirror=source.mirror, components=components, arch=arch, session=session, timeout=timeout
    )


@dataclass(frozen=True)
class _Checksum:
    sha256: str
    size: int


class _Http:
    def __init__(self, session: requests.Session, timeout: float | tuple[float, float]):
        self.session = session
        self.timeout = timeout

    def get(self, url: str) -> requests.Response:
        try:
            response = self.session.get(url, stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PatchpipeError(f"cannot reach the security mirror at {url}: {exc}") from exc
        if response.status_code != 200:
            response.close()
            raise PatchpipeError(f"{url} answered HTTP {response.status_code} {response.reason or ''}".rstrip())
        return response

    def read_text(self, url: str) -> str:
        with self.get(url) as response:
            try:
                return response.content.decode("utf-8")
            except requests.RequestException as exc:
                raise PatchpipeError(f"download of {url} broke off: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise PatchpipeError(f"{url} is not UTF-8 text: {exc}") from exc

    def download_verified(self, url: str, expected: _Checksum) -> IO[bytes]:
        """The body of ``url`` in a temporary file, after checking its size and SHA256."""
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
        digest = hashlib.sha256()
        size = 0
        try:
            with self.get(url) as response:
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > expected.size:
                        raise PatchpipeError(f"{url} is larger than the {expected.size} bytes Release lists")
                    digest.update(chunk)
                    spool.write(chunk)
        except requests.RequestException as exc:
            spool.close()
            raise PatchpipeError(f"download of {url} broke off after {size} bytes: {exc}") from exc
        except BaseException:
            spool.close()
            raise
        if size != expected.size:
            spool.close()
            raise PatchpipeError(
                f"{url} is {size} bytes but Release lists {expected.size}: truncated download or a mirror mid-update"
            )
        if digest.hexdigest() != expected.sha256:
            spool.close()
            raise PatchpipeError(
                f"{url} has SHA256 {digest.hexdigest()} but Release lists {expected.sha256}: "
                "corrupted or tampered download, or a mirror mid-update"
            )
        spool.seek(0)
        return spool


def _read_release(http: _Http, url: str, suite: str) -> Release:
    release = Release(http.read_text(url))
    if suite not in (release.get("Suite"), release.get("Codename")):
        raise PatchpipeError(
            f"{url} describes suite {release.get('Suite')!r} / codename {release.get('Codename')!r}, not {suite!r}"
        )
    if not release.get("SHA256"):
        raise PatchpipeError(f"{url} lists no SHA256 checksums; cannot verify its indexes")
    return release


def _pick_index(
    release: Release, component: str, arch: str, release_url: str
) -> tuple[str, _Checksum, Decompressor]:
    listed = {entry["name"]: entry for entry in release["SHA256"]}
    for filename, decompress in _INDEX_VARIANTS:
        name = f"{component}/binary-{arch}/{filename}"
        if name in listed:
            entry = listed[name]
            try:
                checksum = _Checksum(entry["sha256"].lower(), int(entry["size"]))
            except (KeyError, ValueError) as exc:
                raise PatchpipeError(f"{release_url}: malformed SHA256 line for {name}") from exc
            return name, checksum, decompress
    raise PatchpipeError(f"{release_url} lists no Packages index for {component}/binary-{arch}")


def _read_packages(stream: IO[bytes], url: str) -> Iterator[tuple[str, SecurityVersion]]:
    """(binary package, version and source) for each paragraph of a Packages index."""
    try:
        with stream:
            for paragraph in Packages.iter_paragraphs(
                stream, fields=["Package", "Version", "Source"], use_apt_pkg=False
            ):
                name, version = paragraph.get("Package"), paragraph.get("Version")
                if not name or not version:
                    raise PatchpipeError(f"{url}: a paragraph lacks Package or Version: {dict(paragraph)}")
                yield name, SecurityVersion(version, paragraph.source or name)
    except _DECOMPRESSION_ERRORS as exc:
        raise PatchpipeError(f"{url} does not decompress: {exc}") from exc


def _merge_newest(
    newest: dict[str, SecurityVersion], entries: Iterator[tuple[str, SecurityVersion]], url: str
) -> None:
    for name, candidate in entries:
        try:
            check_deb(candidate.version)
        except PatchpipeError as exc:
            raise PatchpipeError(f"{url}: package {name}: {exc}") from None
        current = newest.get(name)
        if current is None or compare_deb(candidate.version, current.version) > 0:
            newest[name] = candidate


def _release_date(release: Release) -> datetime | None:
    text = release.get("Date")
    if not text:
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
