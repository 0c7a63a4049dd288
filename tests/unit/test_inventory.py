"""An image's inventory: os-release, the package database it has, and the JSON that travels through XCom."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.images.layers import Layer, read_image_files
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import INVENTORY_SELECTOR, Inventory, inventory_from_files
from patchpipe.packages.os_release import OsRelease, parse_os_release

DEBIAN_OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""
ALPINE_OS_RELEASE = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""
STATUS = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n"


def test_debian_os_release():
    assert parse_os_release(DEBIAN_OS_RELEASE) == OsRelease(
        id="debian", version_id="12", version_codename="bookworm", pretty_name="Debian GNU/Linux 12 (bookworm)"
    )


def test_alpine_os_release():
    assert parse_os_release(ALPINE_OS_RELEASE) == OsRelease(
        id="alpine", version_id="3.19.1", pretty_name="Alpine Linux v3.19"
    )


def test_os_release_quoting_comments_and_id_like():
    text = """# written by hand
ID='ubuntu'
ID_LIKE="debian  linux"
PRETTY_NAME="Ubuntu \\"Noble\\" 24.04 # not a comment"
VERSION_ID=24.04 # a comment
BROKEN LINE
VERSION_CODENAME="noble
"""
    assert parse_os_release(text) == OsRelease(
        id="ubuntu", version_id="24.04", version_codename="noble",
        pretty_name='Ubuntu "Noble" 24.04 # not a comment', id_like=("debian", "linux"),
    )


def test_os_release_without_id_defaults_to_linux():
    assert parse_os_release(b"NAME=Something\n").id == "linux"


def test_dpkg_inventory():
    inventory = inventory_from_files({"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": STATUS}, "img")
    assert inventory.package_manager == "dpkg"
    assert inventory.os.version_codename == "bookworm"
    assert inventory.packages == [InstalledPackage("libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4")]


def test_usr_lib_os_release_is_the_fallback():
    files = {"usr/lib/os-release": ALPINE_OS_RELEASE, "lib/apk/db/installed": b"P:musl\nV:1.2.4-r2\nA:x86_64\n"}
    inventory = inventory_from_files(files, "img")
    assert (inventory.os.id, inventory.package_manager, [p.name for p in inventory.packages]) == ("alpine", "apk", ["musl"])


def test_no_package_database():
    with pytest.raises(PatchpipeError, match="no dpkg or apk database in image 127.0.0.1:5000/app:1"):
        inventory_from_files({"etc/os-release": DEBIAN_OS_RELEASE}, "127.0.0.1:5000/app:1")


def test_no_os_release():
    with pytest.raises(PatchpipeError, match="no os-release in image img"):
        inventory_from_files({"var/lib/dpkg/status": STATUS}, "img")


def test_two_package_databases_with_packages_are_refused():
    files = {"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": STATUS, "lib/apk/db/installed": b"P:a\nV:1\n"}
    with pytest.raises(PatchpipeError, match="both a dpkg and an apk database"):
        inventory_from_files(files, "img")


def test_an_empty_second_database_does_not_count():
    files = {"etc/os-release": ALPINE_OS_RELEASE, "var/lib/dpkg/status": b"", "lib/apk/db/installed": b"P:a\nV:1\n"}
    assert inventory_from_files(files, "img").package_manager == "apk"


def test_package_errors_name_the_image():
    files = {"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": b"Package: x\nStatus: install ok installed\n"}
    with pytest.raises(PatchpipeError, match="reg/app:1:/var/lib/dpkg/status: package x has no Version"):
        inventory_from_files(files, "reg/app:1")


def test_inventory_survives_json():
    inventory = inventory_from_files({"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": STATUS}, "img")
    assert Inventory.from_dict(json.loads(json.dumps(inventory.to_dict()))) == inventory


def _layer(files: dict[str, bytes], whiteouts: tuple[str, ...] = ()) -> Layer:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [*files.items(), *((_wh(w), b"") for w in whiteouts)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = gzip.compress(buffer.getvalue())
    return Layer("sha256:" + hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))


def _wh(path: str) -> str:
    parent, _, base = path.rpartition("/")
    return f"{parent}/.wh.{base}"


def test_distroless_image_merges_status_d_across_layers():
    top = _layer({"var/lib/dpkg/status.d/tzdata": b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"},
                 whiteouts=("var/lib/dpkg/status.d/openssl",))
    base = _layer({
        "etc/os-release": DEBIAN_OS_RELEASE,
        "var/lib/dpkg/status.d/libc6": b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n",
        "var/lib/dpkg/status.d/openssl": b"Package: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n",
    })
    files = read_image_files([top, base], INVENTORY_SELECTOR)
    inventory = inventory_from_files(files, "distroless")
    assert inventory.package_manager == "dpkg"
    assert sorted(p.name for p in inventory.packages) == ["libc6", "tzdata"]
    assert files.summary() == "read 2 of 2 layers"
