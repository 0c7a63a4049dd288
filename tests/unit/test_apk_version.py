"""Alpine version ordering against a hand-checked table: each case names the apk rule it exercises.

The rules are apk-tools' (src/version.c, ``apk_version_compare``), which follow Gentoo's version
specification for ``digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}`` with two differences
noted below (R4 and R11). Each expected sign was worked out by hand from the rule, not by running
the code.
"""

from __future__ import annotations

import random
from functools import cmp_to_key

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.packages.apk_version import check_apk, compare_apk
from patchpipe.packages.versions import compare, newer

RULES = {
    # R1: dot-separated numbers compare as integers, not as text.
    "R1": "numbers compare as integers",
    # R2: when every compared part is equal, a version with one more number is newer.
    "R2": "one more number is newer",
    # R3: the first number is always an integer, even with leading zeros (apk's TOKEN_INITIAL_DIGIT).
    "R3": "the first number ignores leading zeros",
    # R4: a later number that starts with 0 (on either side) compares as text, like a decimal
    # fraction: 1.01 < 1.1. Gentoo strips trailing zeros first; apk does not, so 1.0 < 1.00.
    "R4": "a leading zero makes a fraction",
    # R5: one lowercase letter may follow the numbers; having one is newer than none, and letters
    # compare alphabetically.
    "R5": "a letter after the numbers",
    # R6: pre-release suffixes sort before the plain version: _alpha < _beta < _pre < _rc < (none).
    "R6": "pre-release suffixes",
    # R7: post-release suffixes sort after it: (none) < _cvs < _svn < _git < _hg < _p.
    "R7": "post-release suffixes",
    # R8: a suffix's number compares as an integer; a suffix without one is older than with one.
    "R8": "suffix numbers",
    # R9: suffixes chain; a further pre-release suffix makes the version older than without it.
    "R9": "chained suffixes",
    # R10: when the versions diverge in kind, a pre-release suffix is older; otherwise the side whose
    # next part comes first in the grammar (number, letter, suffix, ~hash, -rN, end) is newer.
    "R10": "diverging kinds follow the grammar order",
    # R11: an optional ~commit hash (lowercase hex, apk 2.14+) compares as text.
    "R11": "commit hashes",
    # R12: the -rN revision compares as an integer after everything else; any revision, even -r0,
    # is newer than none.
    "R12": "the -rN revision",
    # R13: versions that spell the same parts are equal.
    "R13": "equal versions",
}

# (rule, a, b, sign of a - b)
CASES = [
    ("R1", "1.10", "1.9", 1),
    ("R1", "2.0", "10.0", -1),
    ("R1", "1.2.10", "1.2.9", 1),
    ("R1", "7.0.174", "7.0.17", 1),
    ("R1", "20060720", "3.0.20060720", 1),
    ("R2", "1.2.1", "1.2", 1),
    ("R2", "1.0.0", "1.0", 1),
    ("R2", "1.2", "1.2.0.0", -1),
    ("R3", "006", "1.0.0", 1),
    ("R3", "010", "9", 1),
    ("R3", "01.2", "1.2", 0),
    ("R4", "1.01", "1.1", -1),
    ("R4", "1.09", "1.1", -1),
    ("R4", "1.001", "1.01", -1),
    ("R4", "1.05", "1.011", 1),
    ("R4", "1.10", "1.010", 1),
    ("R4", "1.0", "1.00", -1),
    ("R4", "8.2.0015", "8.2.002", -1),
    ("R5", "1.0a", "1.0", 1),
    ("R5", "1.0a", "1.0b", -1),
    ("R5", "2.3.0b-r1", "2.3.0a-r9", 1),
    ("R6", "1.0_alpha", "1.0_beta", -1),
    ("R6", "1.0_beta", "1.0_pre", -1),
    ("R6", "1.0_pre", "1.0_rc", -1),
    ("R6", "1.0_rc", "1.0", -1),
    ("R6", "1.0_alpha", "1.0", -1),
    ("R7", "1.0", "1.0_cvs", -1),
    ("R7", "1.0_cvs", "1.0_svn", -1),
    ("R7", "1.0_svn", "1.0_git", -1),
    ("R7", "1.0_git", "1.0_hg", -1),
    ("R7", "1.0_hg", "1.0_p", -1),
    ("R7", "1.0_rc9", "1.0_p0", -1),
    ("R8", "1.0_rc2", "1.0_rc10", -1),
    ("R8", "1.0_p", "1.0_p1", -1),
    ("R8", "1.0_alpha", "1.0_alpha0", -1),
    ("R8", "1.0_p01", "1.0_p1", 0),
    ("R8", "1.0.0_pre20191002222144", "1.0.0_pre20210530193627", -1),
    ("R9", "1.0_alpha_pre2", "1.0_alpha", -1),
    ("R9", "1.0_p1_pre2", "1.0_p1", -1),
    ("R9", "1.0_p1_pre2", "1.0_p0", 1),
    ("R9", "1.0_git20240101_p1", "1.0_git20240101", 1),
    ("R10", "1.0a", "1.0.1", -1),
    ("R10", "1.0_alpha", "1.0.1", -1),
    ("R10", "1.0_p1", "1.0.1", -1),
    ("R10", "1.0a", "1.0_p1", 1),
    ("R10", "1.0_p1", "1.0~abc", 1),
    ("R10", "1.0~abc", "1.0-r1", 1),
    ("R11", "1.0~1234", "1.0~2345", -1),
    ("R11", "1.0~12", "1.0~1234", -1),
    ("R11", "1.0~f", "1.0~10", 1),
    ("R11", "1.0", "1.0~abc", -1),
    ("R12", "1.0-r1", "1.0-r2", -1),
    ("R12", "1.0-r9", "1.0-r10", -1),
    ("R12", "1.0", "1.0-r0", -1),
    ("R12", "1.0.1-r0", "1.0-r5", 1),
    ("R12", "1.0_rc1-r9", "1.0-r0", -1),
    ("R12", "1.0_p1-r0", "1.0-r9", 1),
    ("R12", "1.0~1234-r1", "1.0~1234-r0", 1),
    ("R13", "1.2.3_rc1-r0", "1.2.3_rc1-r0", 0),
    ("R13", "1.0-r0", "1.0-r00", 0),
]

# Versions apk-tools' apk_version_validate refuses, each with the part the message names.
INVALID = [
    ("", "must start with a digit"),
    ("v1.0", "must start with a digit"),
    (".1", "must start with a digit"),
    ("1.", "'.' must be followed by a number"),
    ("1..0", "'.' must be followed by a number"),
    ("1.0a1", "a number cannot follow a letter"),
    ("1.0ab", "a letter may only follow a number"),
    ("1.0a.1", "'.' may only follow a number"),
    ("1.0_alpha.1", "'.' may only follow a number"),
    ("1.0A", "unexpected character 'A'"),
    ("1.0 ", "unexpected character ' '"),
    ("1.\u0663", "'.' must be followed by a number"),  # an Arabic-Indic three is no ASCII digit
    ("1.0_foo", "unknown suffix '_foo'"),
    ("1.0_", "unknown suffix '_'"),
    ("1.0__alpha", "unknown suffix '_'"),
    ("1.0_1_alpha", "unknown suffix '_'"),
    ("1.0_pr", "unknown suffix '_pr'"),
    ("1.0-1", "'-' must start a revision '-rN'"),
    ("1.0-r", "'-' must start a revision '-rN'"),
    ("1.0-rc1", "'-' must start a revision '-rN'"),
    ("1.0-r1-r2", "a second revision"),
    ("1.0-r1_p1", "a '_' suffix cannot follow a revision"),
    ("1.0-r1.1", "'.' may only follow a number"),
    ("1.0-r1~abc", "'~' cannot follow a revision"),
    ("1.0~", "'~' must be followed by a lowercase hex commit"),
    ("1.0~xyz", "'~' must be followed by a lowercase hex commit"),
    ("1.0~ABC", "'~' must be followed by a lowercase hex commit"),
    ("1.0~abc_p1", "a '_' suffix cannot follow a commit hash"),
    ("1:1.0-r0", "unexpected character ':'"),
]


def _case_id(case: tuple[str, str, str, int]) -> str:
    rule, a, b, _ = case
    return f"{rule}:{a}~vs~{b}"


def test_the_table_covers_every_rule_and_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert {rule for rule, *_ in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_apk_ordering(case: tuple[str, str, str, int]) -> None:
    _, a, b, expected = case
    assert compare_apk(a, b) == expected
    assert compare_apk(b, a) == -expected


def test_a_release_series_sorts_in_release_order() -> None:
    series = [
        "1.0_alpha", "1.0_alpha1", "1.0_beta1", "1.0_pre1", "1.0_rc1", "1.0_rc1-r1", "1.0", "1.0-r0",
        "1.0-r1", "1.0_cvs", "1.0_svn", "1.0_git20240101", "1.0_hg", "1.0_p1", "1.0_p1-r3", "1.0_p2",
        "1.0a", "1.0b", "1.00", "1.01", "1.02a", "1.1", "1.1.0", "1.1.1_rc1", "1.1.1", "1.2", "1.10", "2",
    ]
    shuffled = series[:]
    random.Random(5).shuffle(shuffled)
    assert sorted(shuffled, key=cmp_to_key(compare_apk)) == series


@pytest.mark.parametrize(("version", "reason"), INVALID)
def test_invalid_versions_are_refused_with_the_version_and_the_reason(version: str, reason: str) -> None:
    with pytest.raises(PatchpipeError) as error:
        check_apk(version)
    message = str(error.value)
    assert message.startswith(f"{version!r} is not a valid Alpine version: ")
    assert reason in message
    with pytest.raises(PatchpipeError, match="is not a valid Alpine version"):
        compare_apk("1.0-r0", version)


def test_check_apk_returns_valid_versions_unchanged() -> None:
    for version in ("1.2.3-r0", "0.1_pre2~1234abcd-r1", "1.0_p1_pre2", "2.3.0b-r4"):
        assert check_apk(version) == version


def test_compare_dispatches_apk() -> None:
    assert compare("apk", "1.2.3_rc1-r0", "1.2.3-r0") == -1
    assert newer("apk", "3.0.15-r0", "3.0.15-r1") == "3.0.15-r1"
