"""What an image has installed: its distribution and its packages, read without running it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, Mapping

from patchpipe.errors import PatchpipeError
from patchpipe.images.layers import FileSelector, ImageFiles, read_image_files
from patchpipe.images.local import read_local_image_files
from patchpipe.images.reference import ImageReference, parse_reference
from patchpipe.packages.apk import parse_apk_installed
from patchpipe.packages.dpkg import InstalledPackage, parse_dpkg_status, parse_status_d
from patchpipe.packages.os_release import OsRelease, parse_os_release
from patchpipe.packages.rpm import parse_rpmdb

if TYPE_CHECKING:
    import docker

    from patchpipe.images.registry import RegistryClient

__all__ = ["Inventory", "InstalledPackage", "INVENTORY_SELECTOR", "inventory_from_files",
           "inventory_registry_image", "inventory_local_image"]

PackageManager = Literal["dpkg", "apk", "rpm"]

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")  # in the order the specification reads them
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_INSTALLED = "lib/apk/db/installed"
# rpm's sqlite database: var/lib/rpm on RHEL 9 and its rebuilds; Fedora 36+ and openSUSE moved it to
# usr/lib/sysimage/rpm and left var/lib/rpm as a link there. The reader would follow that link, but
# gives up on links once another database path is settled, so the new home is named too.
RPMDB_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

INVENTORY_SELECTOR = FileSelector(
    paths=(*OS_RELEASE_PATHS, DPKG_STATUS, APK_INSTALLED, *RPMDB_PATHS),
    prefixes=(DPKG_STATUS_D,),
    # Enough once /etc/os-release (which takes precedence over the usr/lib one) and one package
    # database are found; reading can then stop early.
    enough=((OS_RELEASE_PATHS[0],), (DPKG_STATUS, APK_INSTALLED, DPKG_STATUS_D, *RPMDB_PATHS)),
)


@dataclass(frozen=True)
class Inventory:
    os: OsRelease
    package_manager: PackageManager
    packages: list[InstalledPackage]

    def to_dict(self) -> dict:
        """Plain JSON types, for Airflow XCom."""
        return {"os": self.os.to_dict(), "package_manager": self.package_manager,
                "packages": [asdict(p) for p in self.packages]}

    @classmethod
    def from_dict(cls, data: dict) -> "Inventory":
        return cls(
            os=OsRelease.from_dict(data["os"]),
            package_manager=data["package_manager"],
            packages=[InstalledPackage(**p) for p in data["packages"]],
        )


def inventory_from_files(files: Mapping[str, bytes] | ImageFiles, image: str) -> Inventory:
    """Build the inventory from the files INVENTORY_SELECTOR read out of ``image`` (named in messages)."""
    if isinstance(files, ImageFiles):
        files = files.files
    os_release = next((files[p] for p in OS_RELEASE_PATHS if p in files), None)
    if os_release is None:
        raise PatchpipeError(f"no os-release in image {image} (looked for /etc/os-release and /usr/lib/os-release)")
    status_d = {path: data for path, data in files.items() if path.startswith(DPKG_STATUS_D)}
    dpkg = None
    if DPKG_STATUS in files or status_d:
        dpkg = parse_dpkg_status(files[DPKG_STATUS], f"{image}:/{DPKG_STATUS}") if DPKG_STATUS in files else []
        known = {(p.name, p.architecture) for p in dpkg}
        dpkg += [p for p in parse_status_d(status_d) if (p.name, p.architecture) not in known]
    apk = parse_apk_installed(files[APK_INSTALLED], f"{image}:/{APK_INSTALLED}") if APK_INSTALLED in files else None
    rpmdb = next((p for p in RPMDB_PATHS if p in files), None)
    rpm = parse_rpmdb(files[rpmdb], f"{image}:/{rpmdb}") if rpmdb else None
    found: dict[PackageManager, list[InstalledPackage]] = {
        manager: packages for manager, packages in (("dpkg", dpkg), ("apk", apk), ("rpm", rpm)) if packages is not None
    }
    if not found:
        looked = ", ".join(f"/{p}" for p in (DPKG_STATUS, DPKG_STATUS_D, APK_INSTALLED, *RPMDB_PATHS))
        raise PatchpipeError(f"no dpkg or apk database in image {image}, and no rpm sqlite database "
                             f"(looked for {looked})")
    # An empty database beside a full one is a leftover (a Debian image with apk-tools installed,
    # say); two with packages leave no way to tell which one manages the system.
    populated = [manager for manager, packages in found.items() if packages]
    if len(populated) > 1:
        databases = " and ".join(_A_DATABASE[m] for m in populated)
        raise PatchpipeError(f"image {image} has {'both ' if len(populated) == 2 else ''}{databases} database "
                             "with packages; patchpipe cannot tell which one manages the system")
    manager = populated[0] if populated else next(iter(found))
    return Inventory(parse_os_release(os_release), manager, found[manager])


_A_DATABASE = {"dpkg": "a dpkg", "apk": "an apk", "rpm": "an rpm"}


def inventory_registry_image(
    client: "RegistryClient", ref: ImageReference | str, platform: str = "linux/amd64"
) -> tuple[str, Inventory]:
    """The digest ``ref`` resolves to (the index's, for a multi-platform image) and the inventory of
    that exact image, read straight from the registry (each layer once per process: see ``layers``)."""
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    digest = client.get_manifest(ref).digest
    # Pinned, so a tag that moves meanwhile cannot mix two images.
    files = read_image_files(client.image_layers(ref.with_digest(digest), platform), INVENTORY_SELECTOR)
    return digest, inventory_from_files(files, str(ref))


def inventory_local_image(api: "docker.APIClient", image: str) -> Inventory:
    """The inventory of an image in the local Docker Engine (through ``docker save``)."""
    return inventory_from_files(read_local_image_files(api, image, INVENTORY_SELECTOR), image)
