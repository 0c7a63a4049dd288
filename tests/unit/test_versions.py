"""Debian version ordering agrees with dpkg itself, and the ecosystem dispatch is explicit."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.packages.versions import check_deb, compare, compare_deb, newer, newer_deb

# (a, b, expected sign of a - b). Each row is also put to `dpkg --compare-versions`.
DPKG_CASES = [
    ("1.0", "1.0", 0),
    ("1.0", "1.00", 0),  # numeric parts compare as numbers
    ("1.0.0", "1.0", 1),
    ("4.0.6-1~deb12u1", "4.0.17-0+deb12u3", -1),  # 17 > 6 numerically, not as text
    ("1.2.3-1", "1.2.3-10", -1),
    ("1:0.1", "2.0", 1),  # the epoch wins over everything
    ("0:1.0", "1.0", 0),  # a missing epoch is 0
    ("1:2.38.1-5+deb12u1", "2.38.1-5+deb12u3", 1),
    ("2:2.4-2", "1:9.9-9", 1),
    ("1.0~rc1", "1.0", -1),  # ~ sorts before the end of the string
    ("1.0~~", "1.0~", -1),
    ("1.0~rc1", "1.0~rc1+b1", -1),
    ("1.0-1~bpo12+1", "1.0-1", -1),
    ("9.18.49-1~deb12u3", "9.18.49-1", -1),
    ("2.0-1", "2.0-1+deb12u1", -1),
    ("5.36.0-7+deb12u1", "5.36.0-7+deb12u4", -1),
    ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1),
    ("10.42-1", "10.42-1+deb12u2", -1),
    ("0.17+2.4-2", "0.17+2.4-2+deb12u3", -1),
    ("1.0-1", "1.0.1-1", -1),
    ("1.0a", "1.0", 1),  # letters sort after the end of the string
    ("1.0a", "1.0+", -1),  # letters sort before non-letters
    ("1.0a", "1.0b", -1),
    ("1.0-a", "1.0-1", 1),  # in a revision too
    ("2026a-0+deb12u1", "2025b-0+deb12u1", 1),  # tzdata
    ("2026f-0+deb12u1", "2026a-0+deb12u1", 1),
    ("6.1.192-1", "6.1.192-2", -1),
    ("1.0+dfsg-1", "1.0-1", 1),
    ("22.01+really26.02+dfsg-0+deb12u1", "22.01+dfsg-1", 1),
]


def dpkg_says(a: str, b: str) -> int:
    def holds(relation: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, relation, b], check=False).returncode == 0

    if holds("eq"):
        return 0
    return -1 if holds("lt") else 1


@pytest.fixture(scope="module")
def dpkg() -> None:
    if shutil.which("dpkg") is None:
        pytest.fail("dpkg is needed to check version ordering against the real tool")


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_CASES)
def test_compare_deb_matches_dpkg(dpkg: None, a: str, b: str, expected: int) -> None:
    assert dpkg_says(a, b) == expected, "the table itself disagrees with dpkg"
    assert compare_deb(a, b) == expected
    assert compare_deb(b, a) == -expected


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_CASES)
def test_newer_deb_returns_the_newer_version(a: str, b: str, expected: int) -> None:
    assert newer_deb(a, b) == (b if expected < 0 else a)
    assert newer_deb(b, a) == (a if expected > 0 else b)


def test_compare_dispatches_on_ecosystem() -> None:
    assert compare("deb", "1:1.0", "2.0") == 1
    assert newer("deb", "1.0~rc1", "1.0") == "1.0"


def test_unknown_ecosystem_is_refused_by_name() -> None:
    with pytest.raises(PatchpipeError, match=r"no version rules for ecosystem 'apk' yet \(known: deb\)"):
        compare("apk", "1.0-r0", "1.0-r1")


@pytest.mark.parametrize("bad", ["", "1.0 beta", "a:1.0", "1.0_1"])
def test_invalid_deb_version_names_the_text(bad: str) -> None:
    with pytest.raises(PatchpipeError, match="is not a valid Debian version"):
        compare_deb(bad, "1.0")
    with pytest.raises(PatchpipeError, match="is not a valid Debian version"):
        check_deb(bad)


def test_check_deb_returns_valid_versions_unchanged() -> None:
    assert check_deb("1:2.38.1-5+deb12u1") == "1:2.38.1-5+deb12u1"
