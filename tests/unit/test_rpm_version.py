"""RPM version ordering against a hand-checked table: each case names the rpmvercmp or EVR rule it
exercises. tests/integration/test_version_agreement.py puts the same rules to the real rpm."""

from __future__ import annotations

import random
from functools import cmp_to_key

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.packages.rpm_version import EVR, check_rpm, compare_rpm, parse_evr, rpmvercmp
from patchpipe.packages.versions import compare, newer

RULES = {
    # V1: a string splits into runs of ASCII digits and runs of ASCII letters; digit runs compare
    # as integers (leading zeros dropped, so any length works).
    "V1": "digit segments compare as integers",
    # V2: letter runs compare as text, byte by byte, so upper case sorts before lower case.
    "V2": "letter segments compare as text",
    # V3: a digit segment is newer than a letter segment in the same place.
    "V3": "numbers beat letters",
    # V4: every other character only separates segments: which one, and how many, does not matter.
    "V4": "separators are ignored",
    # V5: when every segment matched, the string with segments left over is newer.
    "V5": "more segments are newer",
    # V6: ~ sorts before everything, even the end of the string (pre-releases).
    "V6": "tilde",
    # V7: ^ sorts after the end of the string but before anything else (post-release snapshots).
    "V7": "caret",
    # E1: the epoch decides first; a missing epoch is 0.
    "E1": "epoch first",
    # E2: then the version, then the release; a missing release sorts before any release.
    "E2": "version, then release",
}

# (rule, a, b, sign of a - b)
CASES = [
    ("V1", "1.10", "1.9", 1),
    ("V1", "010", "10", 0),
    ("V1", "1.002", "1.1", 1),
    ("V1", "99999999999999999999", "100000000000000000000", -1),
    ("V2", "1.0a", "1.0b", -1),
    ("V2", "1.0A", "1.0a", -1),
    ("V2", "abc", "abd", -1),
    ("V2", "abc", "abcd", -1),
    ("V3", "1.0.1", "1.0.a", 1),
    ("V3", "1a", "a1", 1),
    ("V3", "2.0rc1", "2.0.1", -1),
    ("V4", "1.0", "1_0", 0),
    ("V4", "1.0", "1..0", 0),
    ("V4", "1.0", "1.0.", 0),
    ("V4", "1+0", "1.0", 0),
    ("V5", "1.0", "1.0.0", -1),
    ("V5", "1.0a", "1.0", 1),
    ("V5", "2.38.1", "2.38", 1),
    ("V6", "1.0~rc1", "1.0", -1),
    ("V6", "1.0~rc1", "1.0~rc2", -1),
    ("V6", "1.0~~", "1.0~", -1),
    ("V6", "1.0~", "1.0", -1),
    ("V6", "1.0~rc1", "1.0rc1", -1),
    ("V7", "1.0^", "1.0", 1),
    ("V7", "1.0^git1", "1.0", 1),
    ("V7", "1.0^git1", "1.0.1", -1),
    ("V7", "1.0^git1", "1.0a", -1),
    ("V7", "1.0^git1", "1.0^git2", -1),
    ("V7", "1.0^", "1.0~", 1),
    ("V7", "1.0^~", "1.0^", -1),
    ("E1", "1:1.0-1", "2.0-1", 1),
    ("E1", "0:1.0-1", "1.0-1", 0),
    ("E1", "01:1.0", "1:1.0", 0),
    ("E1", "10:1", "9:2", 1),
    ("E1", "2.38.1-5.el9", "1:2.38.1-1.el9", -1),
    ("E2", "1.0-2", "1.0-10", -1),
    ("E2", "1.0-1", "1.0-1.el8", -1),
    ("E2", "1.0-1.el8", "1.0-1.el8_9", -1),
    ("E2", "4.18.0-553.el8_10", "4.18.0-477.10.1.el8_8", 1),
    ("E2", "1.0", "1.0-1", -1),
    ("E2", "1.0.1", "1.0-99", 1),
    ("E2", "1.0-1~rc", "1.0-1", -1),
]

INVALID = [
    ("", "it is empty"),
    ("1.0-", "the release ''"),
    ("-1", "the version ''"),
    ("1:", "the version ''"),
    (":1.0", "the epoch before ':' is empty"),
    ("a:1.0", "the version 'a:1.0'"),
    ("1:2:3", "the version '2:3'"),
    ("1.0-1-1", "the version '1.0-1'"),
    ("1.0 beta", "the version '1.0 beta'"),
    ("1.0%{dist}", "the version '1.0%{dist}'"),
    ("1.0-1\n", "the release '1\\n'"),
    ("1.\u0663", "the version '1.\u0663'"),
]


def _case_id(case: tuple[str, str, str, int]) -> str:
    rule, a, b, _ = case
    return f"{rule}:{a}~vs~{b}"


def test_the_table_covers_every_rule() -> None:
    assert {rule for rule, *_ in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rpm_ordering(case: tuple[str, str, str, int]) -> None:
    _, a, b, expected = case
    assert compare_rpm(a, b) == expected
    assert compare_rpm(b, a) == -expected


def test_a_release_series_sorts_in_release_order() -> None:
    series = [
        "1.0~alpha1-1", "1.0~beta1-1", "1.0~rc1-1", "1.0", "1.0-1", "1.0-1.el9", "1.0-2", "1.0^20240101git1-1",
        "1.0^20240202git1-1", "1.0a-1", "1.0.1-1", "1.2-1", "1.10-1", "0:2.0-1", "1:0.1-1", "2:0.0.1",
    ]
    shuffled = series[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=cmp_to_key(compare_rpm)) == series


def test_rpmvercmp_compares_one_string_without_splitting_it() -> None:
    assert rpmvercmp("1.0-1", "1.0-2") == -1  # '-' is only a separator here
    assert rpmvercmp("1:2", "2:1") == -1  # and ':' too: 1 < 2 decides
    assert rpmvercmp("1.0\u00e9", "1.0") == 0  # non-ASCII bytes separate, as in rpm
    assert rpmvercmp("", "") == 0
    assert rpmvercmp("", "1") == -1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0", EVR(None, "1.0", None)),
        ("2:8.2.2637-20.el9_1", EVR("2", "8.2.2637", "20.el9_1")),
        ("0:1.0~rc1-0.1", EVR("0", "1.0~rc1", "0.1")),
        ("1.0^git1", EVR(None, "1.0^git1", None)),
    ],
)
def test_parse_evr_splits_as_rpm_does(text: str, expected: EVR) -> None:
    assert parse_evr(text) == expected
    assert str(parse_evr(text)) == text


@pytest.mark.parametrize(("version", "reason"), INVALID)
def test_invalid_versions_are_refused_with_the_version_and_the_part(version: str, reason: str) -> None:
    with pytest.raises(PatchpipeError) as error:
        check_rpm(version)
    message = str(error.value)
    assert message.startswith(f"{version!r} is not a valid RPM version: ")
    assert reason in message
    with pytest.raises(PatchpipeError, match="is not a valid RPM version"):
        compare_rpm("1.0-1", version)


def test_compare_dispatches_rpm() -> None:
    assert compare("rpm", "1:1.0-1", "2.0-1") == 1
    assert newer("rpm", "1.0^git1-1", "1.0-1") == "1.0^git1-1"
