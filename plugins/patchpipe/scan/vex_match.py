"""Which OpenVEX statement speaks for a finding: ``VexStatements(statements, target).latest(finding)``.

A statement applies to a finding when its vulnerability's name or one of its aliases is one of the
finding's ids (compared without case), and one of its products covers the finding:

- A product naming the scanned image covers every finding of the image, or, when it lists
  subcomponents, the findings in a package one of them names. It names the image when its ``@id``
  is the image reference, or a ``pkg:oci`` purl whose name is the repository's last part and whose
  ``repository_url``, when given, is the repository. Tag and digest are not compared: the fleet
  manifest already ties a policy's documents to one image, and patchpipe gives every patched image
  a new tag and digest, so a statement pinned to the build it was written for would silently stop
  applying the first time its image is patched.
- A product that is a package (``pkg:deb``, ``pkg:apk``, ``pkg:rpm``) covers the findings in that
  package in any image, as distributions publish VEX. Its subcomponents would be inside the
  package, where patchpipe does not look, so they are not consulted.
- A root filesystem has no image identity: only package products apply to it.

A package URL names a finding's package when its type and name are those of the installed
package's purl (as ``patchpipe sbom`` writes it), or its name is the finding's source package
(advisories, and so findings, are per source package), and every other part it gives (namespace,
version, each qualifier, subpath) equals that purl's: what it leaves out matches anything.

Later statements override earlier ones: of those that apply, the one with the latest timestamp
speaks, and of equal timestamps the last one read (documents in the order the policy lists them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packageurl import PackageURL

from patchpipe.scan.findings import Finding
from patchpipe.scan.vex import VexComponent, VexProduct, VexStatement

if TYPE_CHECKING:
    from patchpipe.packages.inventory import Inventory

__all__ = ["VexStatements", "VexTarget", "image_repository"]


def image_repository(reference: str) -> str:
    """``registry/repository`` of an image reference, without scheme, tag or digest, in lowercase."""
    name = reference.split("://", 1)[-1].split("@", 1)[0].rstrip("/")
    head, _, last = name.rpartition("/")
    if ":" in last:
        name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    return name.lower()


@dataclass(frozen=True)
class VexTarget:
    """What was scanned, in the terms VEX products use."""

    repository: str | None  # image_repository() of the image; None for a root filesystem
    packages: Mapping[str, tuple[PackageURL, ...]]  # installed package name -> its purls (one per architecture)

    @classmethod
    def of(cls, inventory: Inventory, image: str | None = None) -> VexTarget:
        """The target for ``inventory``, read from ``image`` (None: a root filesystem)."""
        from patchpipe.scan.sbom import package_purl

        packages: dict[str, tuple[PackageURL, ...]] = defaultdict(tuple)
        for package in inventory.packages:
            packages[package.name] += (package_purl(package, inventory.package_manager, inventory.os),)
        return cls(image_repository(image) if image else None, dict(packages))


class VexStatements:
    """Statements read from OpenVEX documents, bound to the target they are asked about."""

    def __init__(self, statements: Iterable[VexStatement], target: VexTarget):
        self.target = target
        self._by_name: dict[str, list[tuple[int, VexStatement]]] = defaultdict(list)
        for order, statement in enumerate(statements):
            for name in {name.casefold() for name in statement.names}:
                self._by_name[name].append((order, statement))

    def latest(self, finding: Finding) -> VexStatement | None:
        """The statement that speaks for ``finding`` (whatever its status), or None when none applies."""
        named = {order: s for i in finding.ids for order, s in self._by_name.get(i.casefold(), ())}
        applying = [(s.timestamp, order, s) for order, s in named.items()
                    if any(self._covers(product, finding) for product in s.products)]
        return max(applying, key=lambda candidate: candidate[:2])[2] if applying else None

    def _covers(self, product: VexProduct, finding: Finding) -> bool:
        if self._names_image(product):
            return not product.subcomponents or any(self._names_package(s, finding) for s in product.subcomponents)
        return self._names_package(product, finding)

    def _names_image(self, component: VexComponent) -> bool:
        repository = self.target.repository
        if repository is None:
            return False
        if component.id is not None and not component.id.startswith("pkg:") and "://" not in component.id:
            if image_repository(component.id) == repository:
                return True
        for purl in component.purls:
            if purl.type == "oci" and purl.name.lower() == repository.rsplit("/", 1)[-1]:
                url = (purl.qualifiers or {}).get("repository_url")
                if url is None or image_repository(url) == repository:
                    return True
        return False

    def _names_package(self, component: VexComponent, finding: Finding) -> bool:
        installed = self.target.packages.get(finding.package, ())
        return any(_same_package(given, have, finding.source_package)
                   for given in component.purls if given.type != "oci" for have in installed)


def _same_package(given: PackageURL, have: PackageURL, source_package: str) -> bool:
    if given.type != have.type or given.name not in (have.name, source_package):
        return False
    parts = [(given.namespace, have.namespace), (given.version, have.version), (given.subpath, have.subpath)]
    qualifiers = have.qualifiers or {}
    return (all(mine is None or mine == theirs for mine, theirs in parts)
            and all(qualifiers.get(key) == value for key, value in (given.qualifiers or {}).items()))
