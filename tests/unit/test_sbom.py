"""The SBOM: package URLs for deb, apk and rpm, the CycloneDX 1.6 document, ``--rootfs`` reading and
the ``patchpipe sbom`` command on hand-made root filesystems."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from patchpipe.cli_sbom import add_sbom_command
from patchpipe.errors import PatchpipeError
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import INVENTORY_SELECTOR, Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.scan.rootfs import inventory_rootfs, read_rootfs_files
from patchpipe.scan.sbom import SbomSubject, build_sbom, package_purl, sbom_json, validate_sbom_json

DEBIAN = OsRelease(id="debian", version_id="12", version_codename="bookworm",
                   pretty_name="Debian GNU/Linux 12 (bookworm)")
ALPINE = OsRelease(id="alpine", version_id="3.19.1", pretty_name="Alpine Linux v3.19")
FEDORA = OsRelease(id="fedora", version_id="40", pretty_name="Fedora Linux 40 (Container Image)")
RHEL = OsRelease(id="rhel", version_id="9.4", pretty_name="Red Hat Enterprise Linux 9.4 (Plow)")
DIGEST = "sha256:" + "0123456789abcdef" * 4

LIBC6 = InstalledPackage("libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4")
BSDUTILS = InstalledPackage("bsdutils", "1:2.38.1-5+b1", "amd64", "util-linux", "2.38.1-5")
TZDATA = InstalledPackage("tzdata", "2024a-0+deb12u1", "all", "tzdata", "2024a-0+deb12u1")
LIBSTDCXX = InstalledPackage("libstdc++6", "12.2.0-14", "amd64", "gcc-12", "12.2.0-14")
DEBIAN_PACKAGES = [LIBC6, BSDUTILS, TZDATA, LIBSTDCXX]


# --- package URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("package, purl", [
    (LIBC6, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"),
    # The epoch stays in a deb version; a binNMU's source version differs, so upstream carries it.
    (BSDUTILS, "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux%402.38.1-5"),
    (TZDATA, "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"),
    (LIBSTDCXX, "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12"),
])
def test_deb_purls(package: InstalledPackage, purl: str):
    built = package_purl(package, "dpkg", DEBIAN)
    assert built.to_string() == purl
    assert PackageURL.from_string(purl).version == package.version
    assert built.validate() == []


def test_ubuntu_purl_uses_its_own_vendor_and_release():
    ubuntu = OsRelease(id="ubuntu", version_id="24.04", version_codename="noble", id_like=("debian",))
    package = InstalledPackage("openssl", "3.0.13-0ubuntu3.4", "amd64", "openssl", "3.0.13-0ubuntu3.4")
    assert str(package_purl(package, "dpkg", ubuntu)) == (
        "pkg:deb/ubuntu/openssl@3.0.13-0ubuntu3.4?arch=amd64&distro=ubuntu-24.04")


def test_codename_stands_in_for_a_missing_version_id():
    sid = OsRelease(id="debian", version_codename="trixie")
    assert str(package_purl(TZDATA, "dpkg", sid)) == (
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-trixie")
    assert str(package_purl(TZDATA, "dpkg", OsRelease(id="debian"))) == (
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all")


@pytest.mark.parametrize("package, purl", [
    (InstalledPackage("musl", "1.2.4_git20230717-r4", "x86_64", "musl", "1.2.4_git20230717-r4"),
     "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"),
    (InstalledPackage("libcrypto3", "3.1.4-r5", "x86_64", "openssl", "3.1.4-r5"),
     "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"),
    (InstalledPackage("py3-Pygments", "2.17.2-r0", "noarch", "py3-pygments", "2.17.2-r0"),
     "pkg:apk/alpine/py3-pygments@2.17.2-r0?arch=noarch&distro=alpine-3.19.1&upstream=py3-pygments"),
])
def test_apk_purls(package: InstalledPackage, purl: str):
    built = package_purl(package, "apk", ALPINE)
    assert built.to_string() == purl
    assert built.validate() == []


@pytest.mark.parametrize("os, package, purl", [
    # The rpm type moves the epoch into a qualifier; names keep their case.
    (FEDORA, InstalledPackage("libhello", "2:1.2.3-4.fc40", "x86_64", "hello-tool", "2:1.2.3-4.fc40"),
     "pkg:rpm/fedora/libhello@1.2.3-4.fc40?arch=x86_64&distro=fedora-40&epoch=2&upstream=hello-tool"),
    (FEDORA, InstalledPackage("perl-Time-Local", "2:1.350-5.fc40", "noarch", "perl-Time-Local", "2:1.350-5.fc40"),
     "pkg:rpm/fedora/perl-Time-Local@1.350-5.fc40?arch=noarch&distro=fedora-40&epoch=2"),
    (FEDORA, InstalledPackage("tzdata", "2024a-5.fc40", "noarch", "tzdata", "2024a-5.fc40"),
     "pkg:rpm/fedora/tzdata@2024a-5.fc40?arch=noarch&distro=fedora-40"),
    (RHEL, InstalledPackage("openssl-libs", "1:3.0.7-27.el9", "x86_64", "openssl", "1:3.0.7-27.el9"),
     "pkg:rpm/redhat/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1&upstream=openssl"),
])
def test_rpm_purls(os: OsRelease, package: InstalledPackage, purl: str):
    built = package_purl(package, "rpm", os)
    assert built.to_string() == purl
    assert built.validate() == []


# --- the CycloneDX document --------------------------------------------------------------------


def _document(inventory: Inventory | None = None, subject: SbomSubject | None = None) -> dict:
    inventory = inventory or Inventory(DEBIAN, "dpkg", DEBIAN_PACKAGES)
    subject = subject or SbomSubject("127.0.0.1:5000/demo/web:1.0", DIGEST)
    return json.loads(sbom_json(build_sbom(inventory, subject)))


def test_document_is_valid_cyclonedx_1_6():
    subject = SbomSubject("127.0.0.1:5000/demo/web:1.0", DIGEST)
    text = sbom_json(build_sbom(Inventory(DEBIAN, "dpkg", DEBIAN_PACKAGES), subject))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")


def test_one_component_per_package_with_purl_and_source():
    document = _document()
    packages = [c for c in document["components"] if c["type"] == "library"]
    assert sorted((c["name"], c["version"]) for c in packages) == sorted((p.name, p.version) for p in DEBIAN_PACKAGES)
    bsdutils = next(c for c in packages if c["name"] == "bsdutils")
    assert bsdutils["purl"] == str(package_purl(BSDUTILS, "dpkg", DEBIAN))
    assert bsdutils["bom-ref"] == bsdutils["purl"]
    assert bsdutils["properties"] == [{"name": "patchpipe:package:source_name", "value": "util-linux"},
                                      {"name": "patchpipe:package:source_version", "value": "2.38.1-5"}]


def test_metadata_names_the_image_its_digest_and_the_tool():
    metadata = _document()["metadata"]
    image = metadata["component"]
    assert (image["type"], image["name"], image["version"]) == ("container", "127.0.0.1:5000/demo/web:1.0", DIGEST)
    assert image["purl"] == f"pkg:oci/web@{DIGEST}?repository_url=127.0.0.1:5000/demo/web&tag=1.0"
    assert image["hashes"] == [{"alg": "SHA-256", "content": DIGEST.removeprefix("sha256:")}]
    assert [(t["name"], t["type"]) for t in metadata["tools"]["components"]] == [("patchpipe", "application")]
    assert metadata["properties"] == [{"name": "patchpipe:package_manager", "value": "dpkg"}]


def test_operating_system_component_and_dependency_graph():
    document = _document()
    (system,) = [c for c in document["components"] if c["type"] == "operating-system"]
    assert (system["name"], system["version"], system["description"]) == ("debian", "12", DEBIAN.pretty_name)
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph[document["metadata"]["component"]["bom-ref"]] == {system["bom-ref"]}
    assert graph[system["bom-ref"]] == {c["bom-ref"] for c in document["components"] if c["type"] == "library"}


def test_local_image_subject_carries_the_engine_image_id():
    image_id = "sha256:" + "fedcba9876543210" * 4
    image = _document(subject=SbomSubject("demo/web:1.0", None, image_id=image_id))["metadata"]["component"]
    assert image == {"bom-ref": "image:demo/web:1.0", "name": "demo/web:1.0", "type": "container",
                     "properties": [{"name": "patchpipe:image:id", "value": image_id}]}


def test_rootfs_subject():
    image = _document(subject=SbomSubject("/srv/rootfs", kind="rootfs"))["metadata"]["component"]
    assert (image["type"], image["name"]) == ("file", "/srv/rootfs")
    assert "version" not in image and "purl" not in image


def test_rpm_and_apk_documents_validate():
    libhello = InstalledPackage("libhello", "2:1.2.3-4.fc40", "x86_64", "hello-tool", "2:1.2.3-4.fc40")
    rpm = Inventory(FEDORA, "rpm", [libhello])
    apk = Inventory(ALPINE, "apk", [InstalledPackage("musl", "1.2.4-r2", "x86_64", "musl", "1.2.4-r2")])
    assert [c["purl"] for c in _document(rpm)["components"] if c["type"] == "library"] == [
        "pkg:rpm/fedora/libhello@1.2.3-4.fc40?arch=x86_64&distro=fedora-40&epoch=2&upstream=hello-tool"]
    assert [c["purl"] for c in _document(apk)["components"] if c["type"] == "library"] == [
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"]


def test_fixed_serial_and_timestamp_make_the_document_reproducible():
    inventory = Inventory(DEBIAN, "dpkg", DEBIAN_PACKAGES)
    subject = SbomSubject("127.0.0.1:5000/demo/web:1.0", DIGEST)
    serial, when = UUID("12345678-1234-5678-1234-567812345678"), datetime(2024, 5, 1, tzinfo=timezone.utc)
    first = sbom_json(build_sbom(inventory, subject, serial_number=serial, timestamp=when))
    reordered = Inventory(DEBIAN, "dpkg", DEBIAN_PACKAGES[::-1])
    second = sbom_json(build_sbom(reordered, subject, serial_number=serial, timestamp=when))
    assert first == second
    assert json.loads(first)["serialNumber"] == f"urn:uuid:{serial}"


def test_validation_rejects_what_the_schema_forbids():
    document = _document()
    document["components"][0]["type"] = "package"  # not a CycloneDX component type
    with pytest.raises(ValueError, match="not a valid CycloneDX 1.6 document"):
        validate_sbom_json(json.dumps(document))
    document = _document()
    document["metadata"]["scanner"] = "patchpipe"  # the strict schema allows no unknown properties
    with pytest.raises(ValueError, match="scanner"):
        validate_sbom_json(json.dumps(document))


# --- --rootfs ----------------------------------------------------------------------------------

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
STATUS = (b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n"
          b"Version: 2.36-9+deb12u4\n\n"
          b"Package: bsdutils\nStatus: install ok installed\nArchitecture: amd64\nSource: util-linux (2.38.1-5)\n"
          b"Version: 1:2.38.1-5+b1\n\n"
          b"Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n")


def _debian_tree(root: Path) -> Path:
    """A merged-/usr Debian root as debootstrap lays it out: etc/os-release an absolute link."""
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/os-release").write_bytes(OS_RELEASE)
    (root / "etc/os-release").symlink_to("/usr/lib/os-release")
    (root / "var/lib/dpkg/status").write_bytes(STATUS)
    return root


def test_rootfs_inventory(tmp_path: Path):
    inventory = inventory_rootfs(_debian_tree(tmp_path))
    assert (inventory.os, inventory.package_manager) == (DEBIAN, "dpkg")
    assert inventory.packages == [LIBC6, BSDUTILS]


def test_rootfs_absolute_links_stay_inside_the_root(tmp_path: Path):
    root = _debian_tree(tmp_path / "root")
    # The host's /usr/lib/os-release must never be read in place of the rootfs's own.
    (root / "usr/lib/os-release").write_bytes(b"ID=inside\n")
    files = read_rootfs_files(root, INVENTORY_SELECTOR)
    assert files["etc/os-release"] == b"ID=inside\n"
    assert files["usr/lib/os-release"] == b"ID=inside\n"
    assert "lib/apk/db/installed" not in files


def test_rootfs_status_d_through_a_linked_directory(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_bytes(OS_RELEASE)
    (tmp_path / "data/status.d").mkdir(parents=True)
    (tmp_path / "data/status.d/tzdata").write_bytes(b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")
    (tmp_path / "data/status.d/tzdata.md5sums").write_bytes(b"0123  usr/share/zoneinfo/UTC\n")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status.d").symlink_to("/data/status.d")
    assert inventory_rootfs(tmp_path).packages == [TZDATA]


def test_rootfs_link_out_of_the_root_is_refused(tmp_path: Path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "os-release").write_bytes(OS_RELEASE)
    (root / "etc/os-release").symlink_to("../../os-release")
    with pytest.raises(PatchpipeError, match=f"rootfs {root}: resolving /etc/os-release leaves the root"):
        inventory_rootfs(root)


def test_rootfs_link_loop(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("os-release")
    with pytest.raises(PatchpipeError, match="too many levels of symbolic links resolving /etc/os-release"):
        inventory_rootfs(tmp_path)


def test_rootfs_fifo_is_not_read(tmp_path: Path):
    root = _debian_tree(tmp_path)
    (root / "var/lib/dpkg/status").unlink()
    os.mkfifo(root / "var/lib/dpkg/status")
    outcome: list[BaseException] = []
    # A blocking open would hang the test forever: run it aside and give up on it after a while.
    reader = threading.Thread(target=lambda: _capture(outcome, inventory_rootfs, root), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], PatchpipeError)
    assert "no dpkg or apk database in image rootfs" in str(outcome[0])


def test_rootfs_missing_or_not_a_directory(tmp_path: Path):
    with pytest.raises(PatchpipeError, match=f"rootfs {tmp_path / 'nope'} does not exist"):
        inventory_rootfs(tmp_path / "nope")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PatchpipeError, match=f"rootfs {tmp_path / 'file'} is not a directory"):
        inventory_rootfs(tmp_path / "file")


def test_rootfs_without_os_release(tmp_path: Path):
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_bytes(STATUS)
    with pytest.raises(PatchpipeError, match=f"no os-release in image rootfs {tmp_path}"):
        inventory_rootfs(tmp_path)


def test_rootfs_oversized_database(tmp_path: Path):
    root = _debian_tree(tmp_path)
    with pytest.raises(PatchpipeError, match="/var/lib/dpkg/status is .* bytes, more than the 100-byte limit"):
        read_rootfs_files(root, INVENTORY_SELECTOR, max_file_size=100)


@pytest.fixture
def shared_dir():
    """A directory under /tmp that an unprivileged user can enter (pytest's own are private to us)."""
    path = Path(tempfile.mkdtemp(prefix="patchpipe-rootfs-"))
    path.chmod(0o755)
    yield path
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path)


def test_unreadable_rootfs(shared_dir: Path):
    root = shared_dir / "root"
    root.mkdir(mode=0o000)
    assert _unprivileged(inventory_rootfs, root) == f"rootfs {root} is not readable (permission denied)"


def test_unreadable_database_in_a_rootfs(shared_dir: Path):
    root = _debian_tree(shared_dir / "root")
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    (root / "usr/lib/os-release").chmod(0o644)
    (root / "var/lib/dpkg/status").chmod(0o000)
    assert _unprivileged(inventory_rootfs, root) == (
        f"rootfs {root}: cannot read /var/lib/dpkg/status: Permission denied")


def _unprivileged(function, *args) -> str:
    """The PatchpipeError message of ``function(*args)`` run in a child process that file modes bind
    (root gives up its privileges there, becoming nobody); "" when it succeeds."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                function(*args)
                message = ""
            except PatchpipeError as error:
                message = str(error)
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        message = stream.read().decode()
    assert os.waitpid(pid, 0)[1] == 0
    return message


def _capture(outcome: list, function, *args) -> None:
    try:
        outcome.append(function(*args))
    except BaseException as error:  # noqa: BLE001 - handed to the test thread
        outcome.append(error)


# --- the command -------------------------------------------------------------------------------


def _sbom_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="patchpipe")
    add_sbom_command(parser.add_subparsers())
    args = parser.parse_args(["sbom", *argv])
    return args.command(args)


def test_command_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = _debian_tree(tmp_path)
    assert _sbom_command("--rootfs", str(root), "--format", "table") == 0
    assert capsys.readouterr().out == (
        f"{root}: debian 12 (bookworm), dpkg, 2 packages\n"
        "NAME      VERSION         ARCH   SOURCE\n"
        "bsdutils  1:2.38.1-5+b1   amd64  util-linux 2.38.1-5\n"
        "libc6     2.36-9+deb12u4  amd64  glibc\n"
    )


def test_command_cyclonedx(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = _debian_tree(tmp_path)
    assert _sbom_command("--rootfs", str(root)) == 0
    text = capsys.readouterr().out
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["metadata"]["component"]["name"] == str(root)
    assert sorted(c["purl"] for c in document["components"] if c["type"] == "library") == [
        "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux%402.38.1-5",
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
    ]


def test_command_errors(tmp_path: Path):
    with pytest.raises(PatchpipeError, match="--local reads an IMAGE from the Docker Engine"):
        _sbom_command("--rootfs", str(tmp_path), "--local")
    with pytest.raises(PatchpipeError, match="--platform .* does not apply to --local or --rootfs"):
        _sbom_command("--rootfs", str(tmp_path), "--platform", "linux/arm64")
    with pytest.raises(PatchpipeError, match="is not a registry host; write it in full"):
        _sbom_command("demo/web:1.0")
    with pytest.raises(SystemExit):
        _sbom_command("127.0.0.1:5000/demo/web:1.0", "--rootfs", str(tmp_path))  # one or the other
    with pytest.raises(SystemExit):
        _sbom_command()


def test_command_local_without_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    with pytest.raises(PatchpipeError, match="the Docker Engine could not inspect image demo/web:1.0"):
        _sbom_command("--local", "demo/web:1.0")
