"""A CycloneDX 1.6 SBOM of an inventory: one component per installed package, each with its package
URL and its source package.

Package URLs follow the purl specification's ``deb``, ``apk`` and ``rpm`` types: the namespace is the
vendor (os-release ``ID``), the version is the package manager's own (a Debian epoch stays in it,
``1:2.38.1-5``; an rpm epoch moves to the ``epoch`` qualifier, as the rpm type says), ``arch`` is the
package architecture and ``distro`` is ``<ID>-<VERSION_ID>`` (``debian-12``, ``alpine-3.19.1``).
``upstream`` names the source package when it differs from the binary package, as Syft writes it:
``upstream=glibc``, or ``upstream=gcc-12@12.2.0-14`` when the version differs too.

The document also holds the image (``metadata.component``, with its manifest digest) and its
operating system as a component of its own; the dependency graph reads image -> operating system
-> packages, which is how Trivy shapes it and what the CycloneDX library expects of a complete graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version as distribution_version
from typing import Literal
from uuid import UUID

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import Inventory, PackageManager
from patchpipe.packages.os_release import OsRelease

__all__ = ["SbomSubject", "build_sbom", "package_purl", "sbom_json", "validate_sbom_json",
           "SOURCE_NAME_PROPERTY", "SOURCE_VERSION_PROPERTY", "PACKAGE_MANAGER_PROPERTY", "IMAGE_ID_PROPERTY"]

SOURCE_NAME_PROPERTY = "patchpipe:package:source_name"
SOURCE_VERSION_PROPERTY = "patchpipe:package:source_version"
PACKAGE_MANAGER_PROPERTY = "patchpipe:package_manager"
IMAGE_ID_PROPERTY = "patchpipe:image:id"

_PURL_TYPES: dict[str, str] = {"dpkg": "deb", "apk": "apk", "rpm": "rpm"}
# Red Hat publishes its own purls (security data, VEX) under the vendor name, not the os-release ID.
_VENDORS = {"rhel": "redhat"}


@dataclass(frozen=True)
class SbomSubject:
    """What an SBOM describes: an image (its reference, the manifest digest it resolved to and, for an
    image of the local engine, its image id), or an unpacked root filesystem (its path)."""

    name: str
    digest: str | None = None
    kind: Literal["image", "rootfs"] = "image"
    image_id: str | None = None


def package_purl(package: InstalledPackage, manager: PackageManager, os: OsRelease) -> PackageURL:
    """The package URL of an installed package of ``os``, managed by ``manager``."""
    purl_type = _PURL_TYPES[manager]
    qualifiers = {"arch": package.architecture} if package.architecture else {}
    version = package.version
    if purl_type == "rpm":
        epoch, version = _split_epoch(version)
        if epoch is not None:
            qualifiers["epoch"] = epoch
    if distro := _distro(os):
        qualifiers["distro"] = distro
    if upstream := _upstream(package):
        qualifiers["upstream"] = upstream
    return PackageURL(type=purl_type, namespace=_VENDORS.get(os.id, os.id).lower(),
                      name=_purl_name(purl_type, package.name), version=version, qualifiers=qualifiers)


def build_sbom(inventory: Inventory, subject: SbomSubject, *, serial_number: UUID | None = None,
               timestamp: datetime | None = None) -> Bom:
    """The SBOM of ``inventory``, read from ``subject``. A fixed ``serial_number`` and ``timestamp``
    make the document reproducible; by default each call gets a fresh one and now."""
    os_component = _os_component(inventory.os)
    packages = [_package_component(p, inventory) for p in inventory.packages]
    root = _subject_component(subject)
    metadata = BomMetaData(component=root, timestamp=timestamp,
                           properties=[Property(name=PACKAGE_MANAGER_PROPERTY, value=inventory.package_manager)])
    metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="patchpipe", version=_patchpipe_version()))
    bom = Bom(components=[os_component, *packages], metadata=metadata, serial_number=serial_number)
    bom.register_dependency(root, [os_component])
    bom.register_dependency(os_component, packages)
    return bom


def sbom_json(bom: Bom) -> str:
    """The CycloneDX 1.6 JSON of ``bom``, checked against the 1.6 schema before it is handed out."""
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    validate_sbom_json(text)
    return text


def validate_sbom_json(text: str) -> None:
    """Raise ValueError listing what does not conform to the strict CycloneDX 1.6 JSON schema."""
    errors = _validator().validate_str(text, all_errors=True)
    if errors:
        raise ValueError("not a valid CycloneDX 1.6 document:\n" + "\n".join(f"  {e}" for e in errors))


@cache
def _validator():
    # jsonschema takes a while to import and the schema to load: only when a document is written.
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def _package_component(package: InstalledPackage, inventory: Inventory) -> Component:
    purl = package_purl(package, inventory.package_manager, inventory.os)
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=purl,
        bom_ref=purl.to_string(),
        properties=[Property(name=SOURCE_NAME_PROPERTY, value=package.source_name),
                    Property(name=SOURCE_VERSION_PROPERTY, value=package.source_version)],
    )


def _os_component(os: OsRelease) -> Component:
    return Component(type=ComponentType.OPERATING_SYSTEM, name=os.id, version=os.version_id or os.version_codename,
                     description=os.pretty_name, bom_ref=f"os:{_distro(os) or os.id}")


def _subject_component(subject: SbomSubject) -> Component:
    if subject.kind == "rootfs":
        return Component(type=ComponentType.FILE, name=subject.name, bom_ref=f"rootfs:{subject.name}")
    purl = _oci_purl(subject) if subject.digest else None
    hashes = []
    if subject.digest and subject.digest.startswith("sha256:"):
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=subject.digest.removeprefix("sha256:")))
    properties = [Property(name=IMAGE_ID_PROPERTY, value=subject.image_id)] if subject.image_id else []
    return Component(type=ComponentType.CONTAINER, name=subject.name, version=subject.digest, purl=purl,
                     hashes=hashes, properties=properties,
                     bom_ref=purl.to_string() if purl else f"image:{subject.name}")


def _oci_purl(subject: SbomSubject) -> PackageURL:
    # pkg:oci/<last path part>@<digest>?repository_url=<registry/repository>&tag=<tag> (purl's oci type)
    name, tag = subject.name.split("@", 1)[0], None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    qualifiers = {"repository_url": name}
    if tag:
        qualifiers["tag"] = tag
    return PackageURL(type="oci", name=name.rsplit("/", 1)[-1].lower(), version=subject.digest, qualifiers=qualifiers)


def _distro(os: OsRelease) -> str | None:
    release = os.version_id or os.version_codename
    return f"{os.id}-{release}" if release else None


def _upstream(package: InstalledPackage) -> str | None:
    if package.source_version != package.version:
        return f"{package.source_name}@{package.source_version}"
    if package.source_name != package.name:
        return package.source_name
    return None


def _split_epoch(version: str) -> tuple[str | None, str]:
    epoch, colon, rest = version.partition(":")
    return (epoch, rest) if colon and epoch.isdigit() else (None, version)


def _purl_name(purl_type: str, name: str) -> str:
    # deb and apk names are case-insensitive and lowercase in a purl; rpm names keep their case.
    return name if purl_type == "rpm" else name.lower()


def _patchpipe_version() -> str:
    try:
        return distribution_version("patchpipe")
    except PackageNotFoundError:
        return "unknown"
