"""Reading rpm's sqlite database, checked against databases rpm itself writes.

The fixture builds a few empty packages with ``rpmbuild`` from the specs below (an epoch, a subpackage
whose source rpm has another name, noarch, a ``+`` in the name, ``~`` and ``^`` in the version),
registers them in a fresh database with ``rpm --initdb`` and ``rpm -i --justdb``, and imports an
OpenPGP key, which rpm records as a ``gpg-pubkey`` row. Needs Debian's ``rpm`` package (rpm, rpmbuild).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import sqlite3
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.images.layers import Layer, read_image_files
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import INVENTORY_SELECTOR, inventory_from_files
from patchpipe.packages.rpm import RpmHeader, RpmHeaderError, parse_rpm_header, parse_rpmdb, split_source_rpm
from patchpipe.scan.rootfs import inventory_rootfs

SPECS = {
    "hello-tool": """\
Name: hello-tool
Epoch: 2
Version: 1.2.3
Release: 4.fc40
Summary: A tool and its library
License: MIT
%description
A tool.
%package -n libhello
Summary: The library
%description -n libhello
The library.
%files
%files -n libhello
""",
    "tzdata-lab": """\
Name: tzdata-lab
Version: 2024a
Release: 1.fc40
Summary: Data, for every architecture
License: Public Domain
BuildArch: noarch
%description
Sch\u00f6ne Daten.
%files
""",
    "libstdc++-lab": """\
Name: libstdc++-lab
Version: 1.0~rc1^git2
Release: 0.1.fc40
Summary: Plus signs, a tilde and a caret
License: MIT
%description
x
%files
""",
}

# An Ed25519 public key made for these tests with `gpg --quick-gen-key`; its secret half was discarded.
PUBLIC_KEY = """\
-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEawUkABYJKwYBBAHaRw8BAQdAtdpbpqVBJ7X9+nZtWXpsKqEDF5j+V+svt50a
5ktGSna0K3BhdGNocGlwZSB0ZXN0IGtleSA8dGVzdEBwYXRjaHBpcGUuaW52YWxp
ZD6IkAQTFggAOBYhBHMdeyMK1tEVO75vQNEW/15b4AfWBQJrBSQAAhsDBQsJCAcC
BhUKCQgLAgQWAgMBAh4BAheAAAoJENEW/15b4AfWSd4A/RjVpQHq1HMcBm5esILG
n46zGkXGboDZukNgF0Bo0ppPAP94BaW4rOdNs8I4gWlrKZuGWrDuVhcfuS6hXOTa
MX/WAw==
=iLz4
-----END PGP PUBLIC KEY BLOCK-----
"""

FEDORA_OS_RELEASE = b'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Container Image)"\n'
DEBIAN_OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'

EXPECTED = [
    InstalledPackage("hello-tool", "2:1.2.3-4.fc40", "x86_64", "hello-tool", "2:1.2.3-4.fc40"),
    InstalledPackage("libhello", "2:1.2.3-4.fc40", "x86_64", "hello-tool", "2:1.2.3-4.fc40"),
    InstalledPackage("libstdc++-lab", "1.0~rc1^git2-0.1.fc40", "x86_64", "libstdc++-lab", "1.0~rc1^git2-0.1.fc40"),
    InstalledPackage("tzdata-lab", "2024a-1.fc40", "noarch", "tzdata-lab", "2024a-1.fc40"),
]

# Header tags and types, as rpmtag.h numbers them.
NAME, EPOCH, STRING, INT32 = 1000, 1003, 6, 4


def _run(*command: str | Path) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real rpmdb.sqlite holding the SPECS' packages and one gpg-pubkey."""
    work = tmp_path_factory.mktemp("rpm")
    topdir, dbpath = work / "rpmbuild", work / "db"
    for name, spec in SPECS.items():
        (work / f"{name}.spec").write_text(spec)
        target = [] if "BuildArch: noarch" in spec else ["--target", "x86_64"]
        _run("rpmbuild", "-bb", *target, "--define", f"_topdir {topdir}", "--define", "_build_id_links none",
             work / f"{name}.spec")
    dbpath.mkdir()
    _run("rpm", "--dbpath", dbpath, "--initdb")
    _run("rpm", "--dbpath", dbpath, "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos",
         *sorted((topdir / "RPMS").glob("*/*.rpm")))
    (work / "key.asc").write_text(PUBLIC_KEY)
    _run("rpm", "--dbpath", dbpath, "--import", work / "key.asc")
    return dbpath / "rpmdb.sqlite"


def _by_name(packages: list[InstalledPackage]) -> list[InstalledPackage]:
    return sorted(packages, key=lambda p: p.name)


def test_reads_what_rpm_registered(rpmdb: Path):
    assert _by_name(parse_rpmdb(rpmdb.read_bytes())) == EXPECTED


def test_agrees_with_rpm_query(rpmdb: Path):
    query = _run("rpm", "--dbpath", rpmdb.parent, "-qa", "--qf", "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}\n")
    rows = [line.split("|") for line in query.splitlines()]
    assert sum(1 for row in rows if row[0] == "gpg-pubkey") == 1  # the key is really there, and left out
    expected = sorted(
        (name, (f"{epoch}:" if epoch != "(none)" else "") + f"{version}-{release}", arch)
        for name, epoch, version, release, arch in rows if name != "gpg-pubkey"
    )
    assert sorted((p.name, p.version, p.architecture) for p in parse_rpmdb(rpmdb.read_bytes())) == expected


def test_header_fields(rpmdb: Path):
    headers = {h.name: h for h in map(parse_rpm_header, _blobs(rpmdb).values())}
    assert headers["libhello"] == RpmHeader("libhello", "1.2.3", "4.fc40", 2, "x86_64",
                                            "hello-tool-1.2.3-4.fc40.src.rpm")
    assert headers["tzdata-lab"].epoch is None
    assert headers["tzdata-lab"].evr == "2024a-1.fc40"
    pubkey = next(h for h in headers.values() if h.name == "gpg-pubkey")
    assert (pubkey.version, pubkey.arch) == ("5be007d6", None)  # the key id; a key has no architecture


def test_source_rpm_names():
    assert split_source_rpm("bash-5.2.26-3.fc40.src.rpm") == ("bash", "5.2.26-3.fc40")
    assert split_source_rpm("python-requests-oauthlib-1.3.1-6.el9.src.rpm") == (
        "python-requests-oauthlib", "1.3.1-6.el9")
    assert split_source_rpm("kernel-5.14.0-427.el9.nosrc.rpm") == ("kernel", "5.14.0-427.el9")
    assert split_source_rpm("(none)") is None
    assert split_source_rpm("bash.src.rpm") is None


def test_inventory_of_an_rpm_image_with_fedoras_layout(rpmdb: Path):
    # Fedora keeps the database in usr/lib/sysimage/rpm and links var/lib/rpm to it.
    layer = _layer([
        ("file", "etc/os-release", FEDORA_OS_RELEASE),
        ("dir", "var/lib", b""),
        ("symlink", "var/lib/rpm", "../../usr/lib/sysimage/rpm"),
        ("file", "usr/lib/sysimage/rpm/rpmdb.sqlite", rpmdb.read_bytes()),
    ])
    inventory = inventory_from_files(read_image_files([layer], INVENTORY_SELECTOR), "fedora")
    assert (inventory.os.id, inventory.package_manager) == ("fedora", "rpm")
    assert _by_name(inventory.packages) == EXPECTED


def test_a_whiteout_deletes_the_database(rpmdb: Path):
    top = _layer([("file", "var/lib/rpm/.wh.rpmdb.sqlite", b"")])
    base = _layer([("file", "etc/os-release", FEDORA_OS_RELEASE),
                   ("file", "var/lib/rpm/rpmdb.sqlite", rpmdb.read_bytes())])
    with pytest.raises(PatchpipeError, match="no dpkg or apk database in image img, and no rpm sqlite database"):
        inventory_from_files(read_image_files([top, base], INVENTORY_SELECTOR), "img")


def test_rpm_rootfs_with_fedoras_layout(rpmdb: Path, tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/sysimage/rpm").mkdir(parents=True)
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_bytes(FEDORA_OS_RELEASE)
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    shutil.copy(rpmdb, tmp_path / "usr/lib/sysimage/rpm/rpmdb.sqlite")
    (tmp_path / "var/lib/rpm").symlink_to("/usr/lib/sysimage/rpm")  # absolute: resolved inside the rootfs
    inventory = inventory_rootfs(tmp_path)
    assert (inventory.os.id, inventory.package_manager, _by_name(inventory.packages)) == ("fedora", "rpm", EXPECTED)


def test_an_empty_rpm_database_beside_dpkg_does_not_count(tmp_path: Path):
    dbpath = tmp_path / "db"
    dbpath.mkdir()
    _run("rpm", "--dbpath", dbpath, "--initdb")
    files = {"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/rpm/rpmdb.sqlite": (dbpath / "rpmdb.sqlite").read_bytes(),
             "var/lib/dpkg/status": b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"}
    assert inventory_from_files(files, "img").package_manager == "dpkg"


def test_rpm_and_dpkg_databases_with_packages_are_refused(rpmdb: Path):
    files = {"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/rpm/rpmdb.sqlite": rpmdb.read_bytes(),
             "var/lib/dpkg/status": b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"}
    with pytest.raises(PatchpipeError, match="image img has both a dpkg and an rpm database with packages"):
        inventory_from_files(files, "img")


# --- malformed databases and headers -----------------------------------------------------------


def _blobs(rpmdb: Path) -> dict[int, bytes]:
    with sqlite3.connect(f"file:{rpmdb}?mode=ro", uri=True) as connection:
        return dict(connection.execute("SELECT hnum, blob FROM Packages"))


def _row_of(rpmdb: Path, name: str) -> tuple[int, bytes]:
    return next((hnum, blob) for hnum, blob in _blobs(rpmdb).items() if parse_rpm_header(blob).name == name)


def _with_blob(rpmdb: Path, tmp_path: Path, hnum: int, blob: bytes | str) -> bytes:
    """The database with row ``hnum``'s blob replaced (a copy; rpm's own file is left alone)."""
    copy = tmp_path / "rpmdb.sqlite"
    shutil.copy(rpmdb, copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (blob, hnum))
    connection.close()
    return copy.read_bytes()


def _entry(blob: bytes, tag: int) -> tuple[int, int, int, int, int]:
    """(position in the index, tag, type, offset, count) of ``tag``'s index entry."""
    entries = struct.unpack_from(">I", blob)[0]
    for position in range(entries):
        fields = struct.unpack_from(">4I", blob, 8 + 16 * position)
        if fields[0] == tag:
            return (position, *fields)
    raise AssertionError(f"tag {tag} not in the header")


def _set_entry(blob: bytes, which: int, **changes: int) -> bytes:
    position, *fields = _entry(blob, which)
    current = dict(zip(("tag", "type", "offset", "count"), fields))
    current.update(changes)
    data = bytearray(blob)
    struct.pack_into(">4I", data, 8 + 16 * position, *current.values())
    return bytes(data)


def _data_start(blob: bytes) -> int:
    return 8 + 16 * struct.unpack_from(">I", blob)[0]


def test_malformed_header_names_the_row_and_package(rpmdb: Path, tmp_path: Path):
    hnum, blob = _row_of(rpmdb, "libhello")
    broken = _set_entry(blob, EPOCH, type=STRING)
    with pytest.raises(RpmHeaderError) as caught:
        parse_rpmdb(_with_blob(rpmdb, tmp_path, hnum, broken), "fedora:/var/lib/rpm/rpmdb.sqlite")
    assert str(caught.value) == (f"fedora:/var/lib/rpm/rpmdb.sqlite: Packages row {hnum} (package libhello): "
                                 "EPOCH has type 6 and count 1, not one 32-bit integer")


def test_truncated_header_names_the_row(rpmdb: Path, tmp_path: Path):
    hnum, blob = _row_of(rpmdb, "tzdata-lab")
    with pytest.raises(RpmHeaderError, match=rf"rpmdb.sqlite: Packages row {hnum}: the header is {len(blob) - 9} bytes "
                       rf"but its intro says {len(blob)}"):
        parse_rpmdb(_with_blob(rpmdb, tmp_path, hnum, blob[:-9]))


def test_a_row_that_is_not_a_blob(rpmdb: Path, tmp_path: Path):
    hnum, _ = _row_of(rpmdb, "tzdata-lab")
    with pytest.raises(RpmHeaderError, match=f"Packages row {hnum} holds str, not a header blob"):
        parse_rpmdb(_with_blob(rpmdb, tmp_path, hnum, "not a header"))


@pytest.mark.parametrize("change, message", [
    (lambda b: b[:5], "the header is 5 bytes, too short for its 8-byte intro"),
    (lambda b: struct.pack(">2I", 0, 0), "the header claims 0 index entries and 0 bytes of data"),
    (lambda b: struct.pack(">2I", 0x10000, 0) + b[8:], "the header claims 65536 index entries"),
    (lambda b: _set_entry(b, NAME, type=12), r"index entry \d+ \(tag 1000\) has unknown type 12"),
    (lambda b: _set_entry(b, NAME, offset=1 << 20), r"index entry \d+ \(tag 1000\) points at offset 1048576, count 1, "
                                                    r"outside the \d+-byte data store"),
    (lambda b: _set_entry(b, NAME, count=0), r"index entry \d+ \(tag 1000\) points at offset \d+, count 0"),
    (lambda b: _set_entry(b, EPOCH, offset=_entry(b, EPOCH)[3] + 1), r"\(tag 1003\) is not aligned to 4 bytes"),
    (lambda b: _set_entry(b, EPOCH, count=1 << 20), r"\(tag 1003\) runs past the end of the \d+-byte data store"),
    (lambda b: _set_entry(b, NAME, tag=999), "the header has no NAME"),
    (lambda b: _set_entry(b, NAME, type=INT32, offset=0), "NAME has type 4, not a string"),
    (lambda b: _set_entry(b, 63, count=8), r"\(tag 63\) is a malformed region marker"),
])
def test_malformed_headers(rpmdb: Path, change, message: str):
    _, blob = _row_of(rpmdb, "libhello")
    with pytest.raises(RpmHeaderError, match=message):
        parse_rpm_header(change(blob))


def test_a_string_without_its_terminator(rpmdb: Path):
    _, blob = _row_of(rpmdb, "libhello")
    end = len(blob) - _data_start(blob)
    # The data store ends with integers; make its last four bytes text and point NAME at them.
    broken = _set_entry(blob[:-4] + b"abcd", NAME, offset=end - 4)
    with pytest.raises(RpmHeaderError, match=f"NAME at offset {end - 4} has no terminating NUL"):
        parse_rpm_header(broken)


def test_a_name_that_is_not_utf8(rpmdb: Path):
    _, blob = _row_of(rpmdb, "libhello")
    start = _data_start(blob) + _entry(blob, NAME)[3]
    assert blob[start:start + 8] == b"libhello"
    broken = blob[:start] + b"\xff" + blob[start + 1:]
    with pytest.raises(RpmHeaderError, match="NAME is not valid UTF-8"):
        parse_rpm_header(broken)


def test_a_package_without_arch(rpmdb: Path, tmp_path: Path):
    hnum, blob = _row_of(rpmdb, "libhello")
    broken = _set_entry(blob, 1022, tag=998)
    with pytest.raises(RpmHeaderError, match=f"Packages row {hnum} \\(package libhello\\) has no ARCH"):
        parse_rpmdb(_with_blob(rpmdb, tmp_path, hnum, broken))


def test_not_an_sqlite_file():
    with pytest.raises(PatchpipeError, match="img:/var/lib/rpm/rpmdb.sqlite is not an SQLite database"):
        parse_rpmdb(b"\x00\x06\x15\x61 Berkeley DB", "img:/var/lib/rpm/rpmdb.sqlite")


def test_sqlite_without_a_packages_table(tmp_path: Path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    with pytest.raises(PatchpipeError, match="other.sqlite has no Packages table: not an rpm database"):
        parse_rpmdb(path.read_bytes(), "other.sqlite")


def test_truncated_database(rpmdb: Path):
    with pytest.raises(PatchpipeError, match="rpmdb.sqlite is not a readable SQLite database"):
        parse_rpmdb(rpmdb.read_bytes()[:8192])


# --- helpers -----------------------------------------------------------------------------------


def _layer(entries: list[tuple[str, str, bytes | str]]) -> Layer:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, content in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    data = gzip.compress(buffer.getvalue())
    return Layer("sha256:" + hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))
