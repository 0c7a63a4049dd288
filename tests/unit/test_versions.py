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




@pytest.mark.parametrize("bad", ["", "1.0 beta", "a:1.0", "1.0_1"])
def test_invalid_deb_version_names_the_text(bad: str) -> None:
    with pytest.raises(PatchpipeError, match="is not a valid Debian version"):
        compare_deb(bad, "1.0")
    with pytest.raises(PatchpipeError, match="is not a valid Debian version"):
        check_deb(bad)


def test_check_deb_returns_valid_versions_unchanged() -> None:
    assert check_deb("1:2.38.1-5+deb12u1") == "1:2.38.1-5+deb12u1"


# --- apk and rpm next to deb, dpkg's own refusals, and `patchpipe vercmp` ------------------------

from patchpipe.cli import main  # noqa: E402  (this section was appended to the file)
from patchpipe.packages.versions import ECOSYSTEMS, check  # noqa: E402


def test_unknown_ecosystem_is_refused_with_the_known_ones() -> None:
    with pytest.raises(PatchpipeError, match=r"no version rules for ecosystem 'pypi' yet \(known: deb, apk, rpm\)"):
        compare("pypi", "1.0", "2.0")
    with pytest.raises(PatchpipeError, match="no version rules for ecosystem 'pypi'"):
        check("pypi", "1.0")


@pytest.mark.parametrize(
    ("ecosystem", "a", "b", "expected"),
    [
        ("deb", "1.0~rc1", "1.0", -1),
        ("apk", "1.0_rc1-r0", "1.0-r0", -1),
        ("rpm", "1.0~rc1-1", "1.0-1", -1),
        ("deb", "1.0a", "1.0", 1),
        ("apk", "1.01", "1.1", -1),  # apk's leading-zero rule; dpkg and rpm see 1 == 1 here
        ("deb", "1.01", "1.1", 0),
        ("rpm", "1.01", "1.1", 0),
    ],
)
def test_each_ecosystem_keeps_its_own_rules(ecosystem: str, a: str, b: str, expected: int) -> None:
    assert compare(ecosystem, a, b) == expected
    assert ECOSYSTEMS == ("deb", "apk", "rpm")


@pytest.mark.parametrize(
    ("ecosystem", "bad", "message"),
    [
        ("deb", "1.0 beta", "is not a valid Debian version"),
        ("apk", "1.0-1", "is not a valid Alpine version"),
        ("rpm", "1.0-1-1", "is not a valid RPM version"),
    ],
)
def test_check_dispatches_and_names_the_version(ecosystem: str, bad: str, message: str) -> None:
    assert check(ecosystem, "1.0") == "1.0"
    with pytest.raises(PatchpipeError, match=f"'{bad}' {message}"):
        check(ecosystem, bad)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("a1.0", "the upstream version must start with a digit"),
        ("1:-1", "the upstream version must start with a digit"),
        ("1.0-", "the revision after the last '-' is empty"),
        ("2147483648:1.0", "the epoch is larger than 2147483647"),
    ],
)
def test_deb_refuses_what_dpkg_refuses_or_warns_about(bad: str, reason: str) -> None:
    # python-debian parses these; dpkg does not (test_version_agreement.py asks dpkg itself)
    with pytest.raises(PatchpipeError, match=f"is not a valid Debian version: {reason}"):
        check_deb(bad)


@pytest.mark.parametrize(
    ("argv", "printed"),
    [
        (["deb", "1:2.38.1-5+deb12u1", "2.38.1-5+deb12u3"], "1"),
        (["deb", "1.0", "1.00"], "0"),
        (["apk", "1.2.3_rc1-r0", "1.2.3-r0"], "-1"),
        (["rpm", "1.0^git1-1", "1.0-1"], "1"),
    ],
)
def test_vercmp_command_prints_the_sign(argv: list[str], printed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vercmp", *argv]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (printed + "\n", "")


def test_vercmp_command_names_a_bad_version_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vercmp", "apk", "1.0-r0", "1.0_foo"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "patchpipe: error: '1.0_foo' is not a valid Alpine version: unknown suffix '_foo' " \
                  "(known: _alpha, _beta, _pre, _rc, _cvs, _svn, _git, _hg, _p)\n"


def test_vercmp_command_refuses_an_unknown_ecosystem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vercmp", "pypi", "1.0", "2.0"]) == 2
    assert "invalid choice: 'pypi'" in capsys.readouterr().err
