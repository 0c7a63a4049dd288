"""The security archive source against a real HTTP server serving a recorded excerpt of bookworm-security."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from support.http_server import LocalHTTPServer, closed_port_url, serve_directory

from patchpipe.advisories.security_archive import (
    DEBIAN_SECURITY_MIRROR,
    UBUNTU_SECURITY_MIRROR,
    SecurityVersion,
    fetch_security_index,
    fetch_security_index_for,
    security_source_for,
)
from patchpipe.advisories.store import newest_security_versions, save_security_index, security_index_info
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "security-archive"
SUITE = "dists/bookworm-security"
PACKAGES_XZ = f"{SUITE}/main/binary-amd64/Packages.xz"
RELEASE = f"{SUITE}/Release"


@pytest.fixture
def mirror() -> LocalHTTPServer:
    with serve_directory(RECORDED) as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def recorded_packages_text() -> bytes:
    return lzma.decompress((RECORDED / PACKAGES_XZ).read_bytes())


def write_mirror(root: Path, indexes: dict[str, bytes], codename: str = "bookworm-security") -> Path:
    """A mirror under ``root`` holding ``indexes`` (path below the suite -> bytes) and a Release listing them."""
    suite_dir = root / "dists" / codename
    lines = []
    for name, data in indexes.items():
        (suite_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (suite_dir / name).write_bytes(data)
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>8} {name}")
    header = (RECORDED / RELEASE).read_text().split("SHA256:\n")[0].replace("bookworm-security", codename)
    (suite_dir / "Release").write_text(header + "SHA256:\n" + "\n".join(lines) + "\n")
    return root


def test_reads_the_recorded_suite(mirror: LocalHTTPServer) -> None:
    index = fetch_security_index("bookworm", mirror=mirror.base_url)

    assert index.release == "bookworm"
    assert index.suite == "bookworm-security"
    assert index.mirror == mirror.base_url
    assert index.release_date == datetime(2026, 11, 21, 0, 53, 2, tzinfo=timezone.utc)
    assert index.fetched_at.tzinfo is not None
    assert len(index.packages) == 38
    assert index.packages["perl-base"] == SecurityVersion("5.36.0-7+deb12u4", "perl")
    assert index.packages["liblzma5"] == SecurityVersion("5.4.1-1+deb12u2", "xz-utils")
    assert index.packages["libpcre2-8-0"] == SecurityVersion("10.42-1+deb12u2", "pcre2")
    assert index.packages["libapt-pkg6.0"] == SecurityVersion("2.6.2", "apt")
    assert index.packages["tzdata"] == SecurityVersion("2026f-0+deb12u1", "tzdata")
    assert mirror.requested_paths() == [RELEASE, PACKAGES_XZ]


def test_newest_version_wins_by_dpkg_rules(mirror: LocalHTTPServer) -> None:
    packages = fetch_security_index("bookworm", mirror=mirror.base_url).packages

    # Recorded order 4.0.6 then 4.0.17: the text comparison would keep 4.0.6.
    assert packages["wireshark-doc"].version == "4.0.17-0+deb12u3"
    # Stored newest first (see the fixture's README): "last paragraph wins" would keep 6.1.187-1.
    assert packages["linux-source"].version == "6.1.192-2"
    # Five versions, all with ~deb12u revisions.
    assert packages["linux-doc-6.12"] == SecurityVersion("6.12.117-1~deb12u1", "linux-6.12")


def test_source_names_drop_the_source_version(mirror: LocalHTTPServer) -> None:
    packages = fetch_security_index("bookworm", mirror=mirror.base_url).packages

    # "Source: util-linux (2.38.1-5+deb12u1)" on a binary with an epoch of its own.
    assert packages["bsdutils"] == SecurityVersion("1:2.38.1-5+deb12u1", "util-linux")
    # "Source: inetutils (2:2.4-2+deb12u3)"
    assert packages["telnet"] == SecurityVersion("0.17+2.4-2+deb12u3", "inetutils")
    # No Source field: the source is the binary's own name.
    assert packages["openssl"].source == "openssl"


@pytest.mark.parametrize(
    ("variant", "compress"),
    [("Packages.gz", lambda data: gzip.compress(data, mtime=0)), ("Packages", lambda data: data)],
)
def test_falls_back_to_the_variants_release_lists(tmp_path: Path, variant: str, compress) -> None:
    root = write_mirror(tmp_path, {f"main/binary-amd64/{variant}": compress(recorded_packages_text())})

    with serve_directory(root) as server:
        index = fetch_security_index("bookworm", mirror=server.base_url)

    assert server.requested_paths() == [RELEASE, f"{SUITE}/main/binary-amd64/{variant}"]
    assert index.packages["perl-base"].version == "5.36.0-7+deb12u4"
    assert len(index.packages) == 38


def test_newest_version_across_components(tmp_path: Path) -> None:
    contrib = b"Package: perl-base\nSource: perl\nVersion: 5.36.0-7+deb12u5\n\nPackage: apt\nVersion: 2.6.1\n"
    root = write_mirror(
        tmp_path,
        {
            "main/binary-amd64/Packages.xz": (RECORDED / PACKAGES_XZ).read_bytes(),
            "contrib/binary-amd64/Packages.xz": lzma.compress(contrib),
        },
    )

    with serve_directory(root) as server:
        packages = fetch_security_index("bookworm", mirror=server.base_url, components=["main", "contrib"]).packages

    assert packages["perl-base"].version == "5.36.0-7+deb12u5"
    assert packages["apt"].version == "2.6.2"


def test_missing_release_names_the_url(mirror: LocalHTTPServer) -> None:
    with pytest.raises(PatchpipeError) as error:
        fetch_security_index("nosuch", mirror=mirror.base_url)

    assert str(error.value) == f"{mirror.url('dists/nosuch-security/Release')} answered HTTP 404 Not Found"


def test_missing_index_names_the_url(mirror: LocalHTTPServer) -> None:
    mirror.respond_with(PACKAGES_XZ, 404)

    with pytest.raises(PatchpipeError, match=f"^{mirror.url(PACKAGES_XZ)} answered HTTP 404"):
        fetch_security_index("bookworm", mirror=mirror.base_url)


def test_server_error_names_the_url_and_status(mirror: LocalHTTPServer) -> None:
    mirror.respond_with(RELEASE, 503)

    with pytest.raises(PatchpipeError, match=f"^{mirror.url(RELEASE)} answered HTTP 503"):
        fetch_security_index("bookworm", mirror=mirror.base_url)


def test_truncated_index_is_refused_and_the_store_keeps_the_last_good_index(mirror: LocalHTTPServer, engine) -> None:
    good = fetch_security_index("bookworm", mirror=mirror.base_url)
    save_security_index(engine, good)
    mirror.truncate(PACKAGES_XZ, keep_bytes=4000)

    with pytest.raises(PatchpipeError) as error:
        save_security_index(engine, fetch_security_index("bookworm", mirror=mirror.base_url))

    assert str(error.value).startswith(f"{mirror.url(PACKAGES_XZ)} is 4000 bytes but Release lists 9244")
    assert security_index_info(engine, "bookworm").fetched_at == good.fetched_at
    assert newest_security_versions(engine, "bookworm", ["perl-base"]) == {"perl-base": "5.36.0-7+deb12u4"}


def test_connection_cut_mid_download_names_the_url(mirror: LocalHTTPServer) -> None:
    mirror.truncate(PACKAGES_XZ, keep_bytes=4000, declare_full_length=True)

    with pytest.raises(PatchpipeError, match=f"^download of {mirror.url(PACKAGES_XZ)} broke off"):
        fetch_security_index("bookworm", mirror=mirror.base_url)


def test_tampered_index_of_the_right_size_fails_the_checksum(tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    shutil.copytree(RECORDED, root)
    index_file = root / PACKAGES_XZ
    data = bytearray(index_file.read_bytes())
    data[5000] ^= 0xFF
    index_file.write_bytes(bytes(data))

    with serve_directory(root) as server, pytest.raises(PatchpipeError) as error:
        fetch_security_index("bookworm", mirror=server.base_url)

    assert str(error.value).startswith(f"{server.url(PACKAGES_XZ)} has SHA256 {hashlib.sha256(data).hexdigest()}")
    assert "5fe93de49050688c17a13cd664abdcb37c03dc9b40c983cb885e73e7dda15b39" in str(error.value)


def test_index_larger_than_release_says_is_cut_short(tmp_path: Path) -> None:
    root = write_mirror(tmp_path, {"main/binary-amd64/Packages.xz": (RECORDED / PACKAGES_XZ).read_bytes()})
    release = root / RELEASE
    release.write_text(release.read_text().replace(" 9244 main/", " 1000 main/"))

    with serve_directory(root) as server, pytest.raises(PatchpipeError) as error:
        fetch_security_index("bookworm", mirror=server.base_url)

    assert str(error.value) == f"{server.url(PACKAGES_XZ)} is larger than the 1000 bytes Release lists"


def test_corrupt_xz_that_matches_release_names_the_url(tmp_path: Path) -> None:
    corrupt = bytearray((RECORDED / PACKAGES_XZ).read_bytes())
    corrupt[200:260] = bytes(60)
    root = write_mirror(tmp_path, {"main/binary-amd64/Packages.xz": bytes(corrupt)})

    with serve_directory(root) as server, pytest.raises(PatchpipeError) as error:
        fetch_security_index("bookworm", mirror=server.base_url)

    assert str(error.value).startswith(f"{server.url(PACKAGES_XZ)} does not decompress")


def test_release_of_another_suite_is_refused(tmp_path: Path) -> None:
    root = write_mirror(tmp_path, {"main/binary-amd64/Packages.xz": b""}, codename="trixie-security")
    (root / "dists" / "bookworm-security").mkdir()
    shutil.copy(root / "dists" / "trixie-security" / "Release", root / RELEASE)

    with serve_directory(root) as server, pytest.raises(PatchpipeError, match="not 'bookworm-security'"):
        fetch_security_index("bookworm", mirror=server.base_url)


def test_component_missing_from_release_is_named(mirror: LocalHTTPServer) -> None:
    expected = f"{mirror.url(RELEASE)} lists no Packages index for non-free/binary-amd64"
    with pytest.raises(PatchpipeError, match=expected):
        fetch_security_index("bookworm", mirror=mirror.base_url, components=["main", "non-free"])


def test_unreachable_mirror_names_the_url() -> None:
    base = closed_port_url()

    with pytest.raises(PatchpipeError, match=f"^cannot reach the security mirror at {base}/{RELEASE}"):
        fetch_security_index("bookworm", mirror=base, timeout=5)


def test_uses_the_session_it_is_given(mirror: LocalHTTPServer) -> None:
    session = requests.Session()
    session.headers["User-Agent"] = "patchpipe-test"

    fetch_security_index("bookworm", mirror=mirror.base_url, session=session)

    assert {request.headers["User-Agent"] for request in mirror.requests} == {"patchpipe-test"}


def test_debian_and_ubuntu_images_map_to_their_security_suites(mirror: LocalHTTPServer) -> None:
    debian = security_source_for("debian", "bookworm", "12")
    ubuntu = security_source_for("ubuntu", "noble", "24.04")

    assert (debian.suite, debian.mirror) == ("bookworm-security", DEBIAN_SECURITY_MIRROR)
    assert (ubuntu.suite, ubuntu.mirror) == ("noble-security", UBUNTU_SECURITY_MIRROR)
    local = security_source_for("debian", "bookworm", mirror=mirror.base_url + "/")
    assert fetch_security_index_for(local).packages["apt"].version == "2.6.2"


@pytest.mark.parametrize(
    ("os_id", "codename", "version_id", "message"),
    [
        ("alpine", None, "3.19.1", "no security archive source for alpine 3.19.1 yet"),
        ("rhel", None, "9.4", "no security archive source for rhel 9.4 yet"),
        ("debian", None, "13", "has no VERSION_CODENAME"),
        ("debian", "sid", None, "debian sid has no security suite"),
        ("debian", "buster", "10", "no security archive source for debian buster"),
    ],
)
def test_images_without_a_security_suite_are_refused(os_id, codename, version_id, message) -> None:
    with pytest.raises(PatchpipeError, match=message):
        security_source_for(os_id, codename, version_id)


@pytest.mark.integration
def test_live_debian_mirror_still_parses() -> None:
    index = fetch_security_index("bookworm", mirror=DEBIAN_SECURITY_MIRROR, timeout=(10, 60))

    assert len(index.packages) > 1000
    assert index.packages["perl-base"].source == "perl"
    assert index.release_date is not None
