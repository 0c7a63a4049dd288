"""Reading dpkg's database: the status file (a real Debian 12 excerpt) and distroless status.d."""

from __future__ import annotations

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.packages.dpkg import InstalledPackage, parse_dpkg_status, parse_status_d

# Verbatim from /var/lib/dpkg/status of a Debian 12 (bookworm) system.
DEBIAN_STATUS_EXCERPT = """\
Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: bash (5.2.15-2)
Version: 5.2.15-2+b8
Replaces: bash-completion (<< 20060301-0), bash-doc (<= 2.05-1)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Recommends: bash-completion (>= 20060301-0)
Suggests: bash-doc
Conflicts: bash-completion (<< 20060301-0)
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d
 /etc/skel/.bash_logout 22bfb8c1dd94b5f3813a2b25da67463f
 /etc/skel/.bashrc ee35a240758f374832e809ae0ea4883a
 /etc/skel/.profile f4e81ade7d6f9fb342541152d08e7a97
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter that executes
 commands read from the standard input or from a file.  Bash also
 incorporates useful features from the Korn and C shells (ksh and csh).
 .
 Bash is ultimately intended to be a conformant implementation of the
 IEEE POSIX Shell and Tools specification (IEEE Working Group 1003.2).
 .
 The Programmable Completion Code, by Ian Macdonald, is now found in
 the bash-completion package.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 13001
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u14
Replaces: libc6-amd64
Depends: libgcc-s1
Recommends: libidn2-0 (>= 2.0.5~)
Suggests: glibc-doc, debconf | debconf-2.0, libc-l10n, locales, libnss-nis, libnss-nisplus
Breaks: aide (<< 0.17.3-4+b3), busybox (<< 1.30.1-6), chrony (<< 4.2-3~), fakechroot (<< 2.19-3.5), firefox (<< 91~), firefox-esr (<< 91~), gnumach-image-1.8-486 (<< 2:1.8+git20210923~), gnumach-image-1.8-486-dbg (<< 2:1.8+git20210923~), gnumach-image-1.8-xen-486 (<< 2:1.8+git20210923~), gnumach-image-1.8-xen-486-dbg (<< 2:1.8+git20210923~), hurd (<< 1:0.9.git20220301-2), ioquake3 (<< 1.36+u20200211.f2c61c1~dfsg-2~), iraf-fitsutil (<< 2018.07.06-4), libgegl-0.4-0 (<< 0.4.18), libtirpc1 (<< 0.2.3), locales (<< 2.36), locales-all (<< 2.36), macs (<< 2.2.7.1-3~), nocache (<< 1.1-1~), nscd (<< 2.36), openarena (<< 0.8.8+dfsg-4~), openssh-server (<< 1:8.1p1-5), python3-iptables (<< 1.0.0-2), r-cran-later (<< 0.7.5+dfsg-2), tinydns (<< 1:1.05-14), valgrind (<< 1:3.19.0-1~), wcc (<< 0.0.2+dfsg-3)
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system. This package includes shared versions of the standard C library
 and the standard math library, as well as many others.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: tzdata
Status: install ok installed
Priority: required
Section: localization
Installed-Size: 2565
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Multi-Arch: foreign
Version: 2025b-0+deb12u2
Provides: tzdata-bookworm
Depends: debconf (>= 0.5) | debconf-2.0
Description: time zone and daylight-saving time data
 This package contains data required for the implementation of
 standard local time for many representative locations around the
 globe. It is updated periodically to reflect changes made by
 political bodies to time zone boundaries, UTC offsets, and
 daylight-saving rules.
Homepage: https://www.iana.org/time-zones

"""


def test_real_status_excerpt():
    packages = parse_dpkg_status(DEBIAN_STATUS_EXCERPT.encode())
    assert packages == [
        InstalledPackage("bash", "5.2.15-2+b8", "amd64", "bash", "5.2.15-2"),
        InstalledPackage("libc6", "2.36-9+deb12u14", "amd64", "glibc", "2.36-9+deb12u14"),
        InstalledPackage("tzdata", "2025b-0+deb12u2", "all", "tzdata", "2025b-0+deb12u2"),
    ]


def test_source_with_its_own_version():
    status = b"""Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14+deb12u1
"""
    [package] = parse_dpkg_status(status)
    assert (package.source_name, package.source_version) == ("gcc-12", "12.2.0-14")
    assert package.version == "12.2.0-14+deb12u1"


def test_only_installed_packages_count():
    status = b"""Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: broken
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0

Package: unpacked
Status: install ok unpacked
Architecture: amd64
Version: 3.0

Package: here
Status: install ok installed
Architecture: amd64
Version: 4.0
"""
    assert [p.name for p in parse_dpkg_status(status)] == ["here"]


def test_installed_package_without_version_names_file_and_package():
    status = b"Package: libfoo\nStatus: install ok installed\nArchitecture: amd64\n"
    with pytest.raises(PatchpipeError, match=r"img:/var/lib/dpkg/status: package libfoo has no Version field"):
        parse_dpkg_status(status, "img:/var/lib/dpkg/status")


def test_paragraph_without_status_is_malformed():
    with pytest.raises(PatchpipeError, match="package libfoo has no Status field"):
        parse_dpkg_status(b"Package: libfoo\nVersion: 1\nArchitecture: amd64\n")


def test_garbage_line_is_reported_not_dropped():
    status = b"Package: libfoo\nStatus: install ok installed\nthis line is damaged\nVersion: 1\nArchitecture: all\n"
    with pytest.raises(PatchpipeError, match=r"status: line 3 \(package libfoo\) is not a 'Field: value' line"):
        parse_dpkg_status(status, "status")


def test_malformed_source_field():
    status = b"Package: x\nStatus: install ok installed\nVersion: 1\nArchitecture: all\nSource: a b c\n"
    with pytest.raises(PatchpipeError, match="package x has a malformed Source field 'a b c'"):
        parse_dpkg_status(status)


def test_empty_status_file_has_no_packages():
    assert parse_dpkg_status(b"") == []


def test_distroless_status_d():
    files = {
        "var/lib/dpkg/status.d/libc6": b"Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n",
        "var/lib/dpkg/status.d/libc6.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  lib/x86_64-linux-gnu/libc.so.6\n",
        "var/lib/dpkg/status.d/base": b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n",
    }
    assert parse_status_d(files) == [
        InstalledPackage("base-files", "12.4+deb12u5", "amd64", "base-files", "12.4+deb12u5"),
        InstalledPackage("libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9+deb12u4"),
    ]


def test_distroless_file_without_architecture_names_the_file():
    with pytest.raises(PatchpipeError, match="var/lib/dpkg/status.d/tzdata: package tzdata has no Architecture field"):
        parse_status_d({"var/lib/dpkg/status.d/tzdata": b"Package: tzdata\nVersion: 2024a-0+deb12u1\n"})
