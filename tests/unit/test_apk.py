"""Reading apk's installed database."""

from __future__ import annotations

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.packages.apk import parse_apk_installed
from patchpipe.packages.dpkg import InstalledPackage

# Shaped like lib/apk/db/installed of Alpine 3.19 (file lines shortened).
APK_INSTALLED = b"""C:Q1SFqXwmLCeqtjP0wwXK/9Ba27eDI=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407329
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>
t:1705426541
c:5d8d3ffb8e2d1d2bc7b1a4bf0ac22cd4ed4d8bb5
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1kIxG4hTBHvTDdDDvPnzo7uvlSq4=
R:libc.musl-x86_64.so.1

C:Q1mCVfv6rZcMbNRfaEm6x4vDm8RVE=
P:libcrypto3
V:3.1.4-r5
A:x86_64
S:1794542
I:4820992
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1706544361
D:so:libc.musl-x86_64.so.1
F:lib
R:libcrypto.so.3

C:Q1Nb0GNyuUvYuXOUbIsPqKcdXkt3A=
P:alpine-baselayout-data
V:3.4.3-r2
A:x86_64
o:alpine-baselayout
"""


def test_installed_database():
    assert parse_apk_installed(APK_INSTALLED) == [
        InstalledPackage("musl", "1.2.4_git20230717-r4", "x86_64", "musl", "1.2.4_git20230717-r4"),
        InstalledPackage("libcrypto3", "3.1.4-r5", "x86_64", "openssl", "3.1.4-r5"),
        InstalledPackage("alpine-baselayout-data", "3.4.3-r2", "x86_64", "alpine-baselayout", "3.4.3-r2"),
    ]


def test_package_without_origin_is_its_own_source():
    [package] = parse_apk_installed(b"P:busybox\nV:1.36.1-r15\nA:x86_64\n")
    assert (package.source_name, package.source_version) == ("busybox", "1.36.1-r15")


def test_blank_lines_between_and_around_packages():
    assert [p.name for p in parse_apk_installed(b"\n\nP:a\nV:1\n\n\n\nP:b\nV:2\n\n")] == ["a", "b"]


def test_package_without_version_names_file_and_package():
    with pytest.raises(PatchpipeError, match=r"img:/lib/apk/db/installed: package musl has no V: \(version\) line"):
        parse_apk_installed(b"P:musl\nA:x86_64\n", "img:/lib/apk/db/installed")


def test_package_without_name_names_its_line():
    with pytest.raises(PatchpipeError, match="the package starting at line 4 has no P: \\(name\\) line"):
        parse_apk_installed(b"P:a\nV:1\n\nV:2\nA:x86_64\n")


def test_damaged_line():
    with pytest.raises(PatchpipeError, match=r"line 2 \(package musl\) is not an 'X:value' line: 'garbage'"):
        parse_apk_installed(b"P:musl\ngarbage\nV:1\n")
