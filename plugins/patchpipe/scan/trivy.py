"""Read a Trivy JSON report (``trivy image --format json``, SchemaVersion 2) as patchpipe findings, and
turn it into a Copacetic-style patch plan.

Why: a site that already runs Trivy (in CI, in its registry) can hand its report to patchpipe and
get findings, the policy gate and a patch plan in patchpipe's own terms, the same shapes its own scan
produces. Reading stays strict: a report patchpipe cannot read fully is an error naming the
file and the JSON path (``report.json: Results[2].Vulnerabilities[5]: missing InstalledVersion``),
never a partial result.

What is read
    ``Metadata.OS.Family`` / ``Name`` become the os-release (``id`` / ``version_id``); Debian and
    Ubuntu versions that name a known release also get its codename (10.1 -> buster), because
    patchpipe's Debian plans name the release by codename. ``ArtifactName`` is the image scanned;
    ``Metadata.RepoDigests`` (when Trivy pulled it from a registry) gives its manifest digest.
    Each entry of ``Results[].Vulnerabilities`` is one finding: ``VulnerabilityID`` -> id,
    ``VendorIDs`` (e.g. ``DSA-4613-1``) -> aliases, ``PkgName`` -> package, ``SrcName`` (else
    ``PkgName``) -> source_package, ``InstalledVersion`` -> installed, ``FixedVersion`` (empty ->
    None) -> fixed, feeds ``("trivy",)``; ``PkgIdentifier.PURL`` is kept per package, so OpenVEX
    statements naming packages apply (``vex_target``). An entry listed twice for the same package
    and installed version (one package of two architectures, one library in two lock files) is
    reported once.

Which results
    ``Class: os-pkgs`` results are the OS packages: their findings are the patchable ones and the
    only ones the patch plan uses. ``lang-pkgs`` results (npm, pip, jar, Go binaries...) are read as
    findings too, so nothing Trivy found is silently dropped and a policy gate sees them, but they are
    kept apart (``language_findings``): no OS package upgrade can fix them. Other classes (``config``,
    ``secret``, ``license``...) carry no package vulnerabilities and are ignored.

Package count
    The ``Packages`` lists of the os-pkgs results when Trivy wrote them (``--list-all-pkgs``); else
    the number of distinct vulnerable OS packages (name and installed version), a lower bound: a
    report without ``Packages`` does not say how many packages are installed. ``packages_listed``
    says which one it is.

Status (Trivy -> patchpipe)
    A non-empty ``FixedVersion`` makes the finding ``fixed``: a version that clears it exists, which is
    all patchpipe's ``fixed`` means. ``Status: fixed`` without a ``FixedVersion`` is contradictory and
    an error. Without a fixed version:

    ==========================  ==============  ======================================================
    Trivy                       patchpipe       why
    ==========================  ==============  ======================================================
    affected                    affected        no fix yet
    fix_deferred                affected        the distribution may still fix it (as patchpipe keeps
                                                Debian's no-dsa entries affected, scan.match)
    will_not_fix                will_not_fix    the distribution decided not to fix it
    end_of_life                 will_not_fix    the release is out of support: no fix will come from
                                                its distribution; the way out is a newer release, not
                                                a patch, so it is reported but never fixable
    (no Status: Trivy < 0.44)   affected        what Trivy itself assumed before it had statuses
    not_affected, unknown,      not reported    Trivy does not report them either; like patchpipe's
    under_investigation                         own ``undetermined``, they say nothing a patch clears
    ==========================  ==============  ======================================================

    Any other status is an error (a newer Trivy: patchpipe should learn it, not guess).

Severity
    ``CRITICAL``, ``HIGH``, ``MEDIUM``, ``LOW``, ``UNKNOWN`` -> critical, high, medium, low, unknown;
    no ``Severity`` -> unknown; anything else is an error.

KEV and EPSS
    Trivy carries neither. ``with_exploit_data(findings, engine)`` looks them up in the advisory store
    by the findings' CVE ids, with the same query ``scan.match`` uses; without that data (an empty
    store) ``kev`` stays False and ``epss`` None.

The patch plan (``trivy_patch_plan``)
    Like Copacetic: one upgrade per OS package that has a ``FixedVersion``, to the highest fixed
    version among its findings (which therefore clears them all: they are its ``fixes``), compared
    with the distribution's version rules (the package manager follows ``Metadata.OS.Family``:
    debian/ubuntu -> dpkg, alpine/wolfi/chainguard -> apk, redhat/centos/rocky/alma/amazon/oracle/
    fedora/... -> rpm). Language packages are never planned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cmp_to_key
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchpipe.advisories.records import Severity, Status
from patchpipe.errors import PatchpipeError
from patchpipe.packages.os_release import OsRelease
from patchpipe.packages.versions import compare
from patchpipe.plan import PackageUpgrade, PatchPlan
from patchpipe.scan.findings import Finding
from patchpipe.scan.match import exploit_data, version_rules

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from patchpipe.scan.vex_match import VexTarget

__all__ = ["FEED", "TrivyReport", "package_manager", "parse_trivy_report", "read_trivy_report",
           "trivy_patch_plan", "vex_target", "with_exploit_data"]

SCHEMA_VERSION = 2
FEED = "trivy"
OS_PACKAGES = "os-pkgs"
LANGUAGE_PACKAGES = "lang-pkgs"

_STATUS_WITHOUT_FIX = {
    "affected": Status.AFFECTED,
    "fix_deferred": Status.AFFECTED,
    "will_not_fix": Status.WILL_NOT_FIX,
    "end_of_life": Status.WILL_NOT_FIX,
}
_NOT_REPORTED = frozenset({"not_affected", "unknown", "under_investigation"})
_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "UNKNOWN": Severity.UNKNOWN,
}
# Trivy's OS family names (its ``Metadata.OS.Family``) -> the package manager that installs them.
_PACKAGE_MANAGERS = {
    "debian": "dpkg", "ubuntu": "dpkg",
    "alpine": "apk", "wolfi": "apk", "chainguard": "apk",
    **dict.fromkeys(("redhat", "centos", "rocky", "alma", "amazon", "oracle", "fedora", "photon",
                     "cbl-mariner", "azurelinux", "opensuse", "opensuse.leap", "opensuse.tumbleweed",
                     "suse linux enterprise server", "sles"), "rpm"),
}
# Trivy names a Debian or Ubuntu release by its number; patchpipe's Debian plans use the codename.
_CODENAMES = {
    "debian": {"8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"},
    "ubuntu": {"18.04": "bionic", "20.04": "focal", "22.04": "jammy", "24.04": "noble"},
}


@dataclass(frozen=True)
class TrivyReport:
    source: str  # the file (or name) the report was read from, for messages
    artifact: str  # ArtifactName: the image (or path) Trivy scanned
    os: OsRelease  # id: Metadata.OS.Family, version_id: Metadata.OS.Name
    package_count: int  # see "Package count" above
    packages_listed: bool  # True: counted from Results[].Packages; False: distinct vulnerable packages
    os_findings: tuple[Finding, ...]  # from os-pkgs results, sorted by package and id
    language_findings: tuple[Finding, ...]  # from lang-pkgs results: reported, never planned
    repo_digest: str | None = None  # the manifest digest in Metadata.RepoDigests, when Trivy recorded one
    purls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # package -> PkgIdentifier.PURL values

    @property
    def findings(self) -> list[Finding]:
        """Every finding: the OS packages' first, then the language packages'."""
        return [*self.os_findings, *self.language_findings]


def read_trivy_report(source: str | Path | bytes | Mapping[str, Any], name: str | None = None) -> TrivyReport:
    """Read a report from a file path, from its JSON text, or from the already parsed JSON document.

    A ``str`` starting with ``{`` or ``[`` is JSON text, any other ``str`` a path. ``name`` is what
    messages call it (default: the path, else ``Trivy report``).
    """
    if isinstance(source, Mapping):
        return parse_trivy_report(source, name or "Trivy report")
    if isinstance(source, bytes):
        text, name = source.decode("utf-8", "replace"), name or "Trivy report"
    elif isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        text, name = source, name or "Trivy report"
    else:
        path = Path(source)
        name = name or str(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise PatchpipeError(f"{name}: cannot read the Trivy report: {error.strerror or error}") from None
        except UnicodeDecodeError as error:
            raise PatchpipeError(f"{name}: not a Trivy JSON report (not UTF-8 text: {error.reason})") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise PatchpipeError(f"{name}: not a Trivy JSON report (invalid JSON: {error})") from None
    return parse_trivy_report(document, name)


def parse_trivy_report(document: Any, name: str) -> TrivyReport:
    """The report in a parsed Trivy JSON document; ``name`` is what messages call it."""
    if isinstance(document, list):
        raise PatchpipeError(f"{name}: a JSON list is Trivy's old report layout (before SchemaVersion 2, "
                             "Trivy 0.19 and older); produce the report with Trivy 0.20 or later")
    if not isinstance(document, dict):
        raise PatchpipeError(f"{name}: not a Trivy JSON report (expected a JSON object)")
    version = document.get("SchemaVersion")
    if version is None:
        raise PatchpipeError(f"{name}: no SchemaVersion: not a Trivy JSON report (`trivy image --format json`)")
    if version != SCHEMA_VERSION:
        raise PatchpipeError(f"{name}: SchemaVersion {version!r} is not supported; patchpipe reads Trivy's "
                             f"SchemaVersion {SCHEMA_VERSION} reports")
    reader = _Reader(name)
    metadata = reader.object(document, "Metadata", "Metadata", required=False) or {}
    os_block = reader.object(metadata, "OS", "Metadata.OS", required=False)
    if os_block is None:
        raise PatchpipeError(f"{name}: Metadata.OS: missing: Trivy found no operating system in "
                             f"{document.get('ArtifactName') or 'the artifact'}; patchpipe reads reports of "
                             "container images with OS packages")
    family = reader.text(os_block, "Family", "Metadata.OS").lower()
    release = reader.text(os_block, "Name", "Metadata.OS", required=False)
    os = OsRelease(id=family, version_id=release, version_codename=_codename(family, release),
                   pretty_name=" ".join(filter(None, (family, release))))

    os_findings: dict[tuple[str, str, str], Finding] = {}
    language_findings: dict[tuple[str, str, str], Finding] = {}
    listed: list[int] = []
    vulnerable_os_packages: set[tuple[str, str]] = set()
    purls: dict[str, list[str]] = {}
    for r, result in enumerate(reader.list(document, "Results", "", required=False)):
        where = f"Results[{r}]"
        if not isinstance(result, dict):
            raise PatchpipeError(f"{name}: {where}: not an object")
        kind = reader.text(result, "Class", where)
        if kind not in (OS_PACKAGES, LANGUAGE_PACKAGES):
            continue
        if kind == OS_PACKAGES and "Packages" in result:
            listed.append(len(reader.list(result, "Packages", where)))
        target = os_findings if kind == OS_PACKAGES else language_findings
        for v, raw in enumerate(reader.list(result, "Vulnerabilities", where, required=False)):
            entry = reader.entry(raw, f"{where}.Vulnerabilities[{v}]")
            if entry.finding is None:
                continue
            if entry.purl and entry.purl not in purls.setdefault(entry.package, []):
                purls[entry.package].append(entry.purl)
            if kind == OS_PACKAGES:
                vulnerable_os_packages.add((entry.package, entry.installed))
            target.setdefault((entry.id, entry.package, entry.installed), entry.finding)

    def ordered(found: dict) -> tuple[Finding, ...]:
        return tuple(sorted(found.values(), key=lambda f: (f.package, f.id, f.installed)))

    return TrivyReport(
        source=name,
        artifact=reader.text(document, "ArtifactName", "", required=False) or "",
        os=os,
        package_count=sum(listed) if listed else len(vulnerable_os_packages),
        packages_listed=bool(listed),
        os_findings=ordered(os_findings),
        language_findings=ordered(language_findings),
        repo_digest=_repo_digest(reader.list(metadata, "RepoDigests", "Metadata", required=False)),
        purls={package: tuple(found) for package, found in purls.items()},
    )


def package_manager(family: str) -> str:
    """The package manager (dpkg, apk, rpm) of a Trivy OS family, or PatchpipeError."""
    try:
        return _PACKAGE_MANAGERS[family.lower()]
    except KeyError:
        raise PatchpipeError(f"no package manager known for Trivy OS family {family!r} "
                             "(patchpipe knows debian, ubuntu, alpine and the rpm-based families)") from None


def trivy_patch_plan(report: TrivyReport, image: str, source_ref: str, source_digest: str,
                     release: str | None = None) -> PatchPlan:
    """The Copacetic-style plan: each OS package with a fixed version moves to its highest one.

    ``release`` defaults to the Debian/Ubuntu codename when the report's version names a known
    release, else to Trivy's OS version (``3.10.2``). A fixed version that is not above the installed
    one (a report of another build of the image) plans nothing for that package.
    """
    manager = package_manager(report.os.id)
    rules = version_rules(manager)
    fixable: dict[str, list[Finding]] = {}
    for finding in report.os_findings:
        if finding.fixed is not None:
            fixable.setdefault(finding.package, []).append(finding)
    upgrades = []
    for package in sorted(fixable):
        findings = fixable[package]
        installed = {f.installed for f in findings}
        if len(installed) > 1:
            raise PatchpipeError(f"{report.source}: package {package} is reported at several installed versions "
                                 f"({', '.join(sorted(installed))}); one patch plan cannot upgrade them all")
        (version,) = installed
        try:
            target = max((f.fixed for f in findings), key=cmp_to_key(lambda a, b: compare(rules, a, b)))
            newer = compare(rules, target, version) > 0
        except PatchpipeError as error:
            raise PatchpipeError(f"{report.source}: package {package}: {error}") from None
        if newer:
            upgrades.append(PackageUpgrade(name=package, installed=version, target=target,
                                           source=findings[0].source_package,
                                           fixes=sorted({f.id for f in findings})))
    return PatchPlan(
        image=image, source_ref=source_ref, source_digest=source_digest,
        release=release or report.os.version_codename or report.os.version_id or "",
        package_manager=manager, upgrades=upgrades,
    )


def with_exploit_data(findings: Iterable[Finding], engine: Engine) -> list[Finding]:
    """``findings`` with ``kev`` and ``epss`` filled from the advisory store, by their CVE ids."""
    findings = list(findings)
    kev, epss = exploit_data(engine, {i for f in findings for i in f.ids if i.startswith("CVE-")})
    enriched = []
    for finding in findings:
        cves = [i for i in finding.ids if i.startswith("CVE-")]
        enriched.append(replace(finding, kev=any(c in kev for c in cves),
                                epss=max((epss[c] for c in cves if c in epss), default=None)))
    return enriched


def vex_target(report: TrivyReport) -> VexTarget:
    """What the report scanned, in OpenVEX's terms: the image (when ``ArtifactName`` is a registry
    reference) and each vulnerable package's purl as Trivy wrote it (``PkgIdentifier.PURL``).

    Trivy's purls are used as they are, so a statement pinning a ``distro`` qualifier must use Trivy's
    form (``debian-12.7``, from debian_version) rather than os-release's (``debian-12``, what
    ``patchpipe sbom`` writes); statements without qualifiers, the usual case, apply to both."""
    from packageurl import PackageURL

    from patchpipe.images.reference import parse_reference
    from patchpipe.scan.vex_match import VexTarget, image_repository

    try:
        parse_reference(report.artifact)
        repository = image_repository(report.artifact)
    except PatchpipeError:  # a tar file, a directory: no image identity, only package statements apply
        repository = None
    packages = {}
    for package, purls in report.purls.items():
        try:
            packages[package] = tuple(PackageURL.from_string(purl) for purl in purls)
        except ValueError as error:
            raise PatchpipeError(f"{report.source}: package {package}: invalid PkgIdentifier.PURL: {error}") from None
    return VexTarget(repository, packages)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One vulnerability entry read; ``finding`` None when its Trivy status is one never reported."""

    id: str
    package: str
    installed: str
    purl: str | None
    finding: Finding | None


class _Reader:
    """Typed access to the JSON document; every failure names the file and the JSON path."""

    def __init__(self, name: str):
        self.name = name

    def fail(self, where: str, problem: str) -> PatchpipeError:
        return PatchpipeError(f"{self.name}: {where}: {problem}" if where else f"{self.name}: {problem}")

    @staticmethod
    def _path(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def text(self, data: dict, key: str, where: str, required: bool = True) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, f"missing {key}")
            return None
        if not isinstance(value, str):
            raise self.fail(self._path(where, key), f"expected a string, found {type(value).__name__}")
        if required and not value:
            raise self.fail(where, f"empty {key}")
        return value

    def object(self, data: dict, key: str, where: str, required: bool = True) -> dict | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, "missing")
            return None
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def list(self, data: dict, key: str, where: str, required: bool = True) -> list:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, f"missing {key}")
            return []
        if not isinstance(value, list):
            raise self.fail(self._path(where, key), f"expected a list, found {type(value).__name__}")
        return value

    def entry(self, entry: Any, where: str) -> _Entry:
        if not isinstance(entry, dict):
            raise self.fail(where, "not an object")
        vulnerability = self.text(entry, "VulnerabilityID", where)
        package = self.text(entry, "PkgName", where)
        installed = self.text(entry, "InstalledVersion", where)
        fixed = self.text(entry, "FixedVersion", where, required=False) or None
        trivy_status = self.text(entry, "Status", where, required=False)
        status = self._status(trivy_status, fixed, where)
        severity = self._severity(self.text(entry, "Severity", where, required=False), where)
        vendor_ids = self.list(entry, "VendorIDs", where, required=False)
        for i, alias in enumerate(vendor_ids):
            if not isinstance(alias, str) or not alias:
                raise self.fail(f"{where}.VendorIDs[{i}]", "expected a non-empty string")
        identifier = self.object(entry, "PkgIdentifier", f"{where}.PkgIdentifier", required=False) or {}
        purl = self.text(identifier, "PURL", f"{where}.PkgIdentifier", required=False) or None
        if status is None:
            return _Entry(vulnerability, package, installed, purl, None)
        finding = Finding(
            id=vulnerability,
            aliases=tuple(sorted(set(vendor_ids) - {vulnerability})),
            package=package,
            source_package=self.text(entry, "SrcName", where, required=False) or package,
            installed=installed,
            fixed=fixed,
            status=status,
            severity=severity,
            feeds=(FEED,),
        )
        return _Entry(vulnerability, package, installed, purl, finding)

    def _status(self, trivy_status: str | None, fixed: str | None, where: str) -> Status | None:
        if trivy_status in _NOT_REPORTED:
            return None
        if fixed is not None:
            return Status.FIXED
        if trivy_status == "fixed":
            raise self.fail(where, "Status fixed without a FixedVersion")
        if trivy_status is None:
            return Status.AFFECTED
        try:
            return _STATUS_WITHOUT_FIX[trivy_status]
        except KeyError:
            known = ", ".join(sorted({"fixed", *_STATUS_WITHOUT_FIX, *_NOT_REPORTED}))
            raise self.fail(f"{where}.Status", f"unknown status {trivy_status!r} (known: {known})") from None

    def _severity(self, severity: str | None, where: str) -> Severity:
        if severity is None:
            return Severity.UNKNOWN
        try:
            return _SEVERITY[severity]
        except KeyError:
            raise self.fail(f"{where}.Severity", f"unknown severity {severity!r} "
                            f"(known: {', '.join(_SEVERITY)})") from None


def _codename(family: str, release: str | None) -> str | None:
    names = _CODENAMES.get(family)
    if not names or not release:
        return None
    if family == "debian":
        return names.get(release.split(".")[0])
    return names.get(".".join(release.split(".")[:2]))


def _repo_digest(repo_digests: list) -> str | None:
    for entry in repo_digests:
        if isinstance(entry, str) and "@sha256:" in entry:
            return entry.split("@", 1)[1]
    return None
