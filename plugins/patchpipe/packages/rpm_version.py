"""RPM version ordering: ``rpmvercmp`` for one version or release string, and epoch:version-release.

``rpmvercmp`` walks both strings segment by segment. A segment is a run of ASCII digits or a run of
ASCII letters; everything else (``.``, ``_``, ``+``) only separates segments and is ignored, so
``1.0 == 1_0``. Two digit segments compare as numbers (leading zeros dropped); two letter segments as
strings; a digit segment is newer than a letter segment. ``~`` sorts before everything, even the end
of the string (``1.0~rc1 < 1.0``); ``^`` sorts after the end of the string but before anything else
(``1.0 < 1.0^git1 < 1.0.1``). When every segment matched, the string with segments left is newer.

A full EVR compares as rpm 4.18's ``rpmverCmp`` (what ``rpm.vercmp`` answers): epoch (missing is 0),
then version, then release, where a missing release sorts before any release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patchpipe.errors import PatchpipeError

_ASCII_DIGITS = "0123456789"
_ASCII_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = frozenset(_ASCII_DIGITS + _ASCII_LETTERS)
_DIGIT_RUN = re.compile(r"[0-9]*")
_LETTER_RUN = re.compile(r"[A-Za-z]*")
# What rpmbuild accepts in Version and Release, less the macro characters (%, {, }).
_VERSION_PART = re.compile(r"[A-Za-z0-9._+~^]+")


@dataclass(frozen=True)
class EVR:
    """An RPM ``[epoch:]version[-release]``; ``epoch`` and ``release`` are None when absent."""

    epoch: str | None
    version: str
    release: str | None

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        release = f"-{self.release}" if self.release is not None else ""
        return f"{epoch}{self.version}{release}"


def compare_rpm(a: str, b: str) -> int:
    """-1, 0 or 1 as RPM ``[epoch:]version[-release]`` ``a`` sorts before, equal to or after ``b``."""
    left, right = parse_evr(a), parse_evr(b)
    return (
        rpmvercmp(left.epoch or "0", right.epoch or "0")
        or rpmvercmp(left.version, right.version)
        or _compare_releases(left.release, right.release)
    )


def check_rpm(text: str) -> str:
    """``text`` unchanged if it is a valid RPM ``[epoch:]version[-release]``, else PatchpipeError."""
    parse_evr(text)
    return text


def parse_evr(text: str) -> EVR:
    """Split ``[epoch:]version[-release]`` as rpm does: the epoch ends at a ``:`` after leading digits,
    the release starts after the last ``-``."""
    if not isinstance(text, str):
        raise PatchpipeError(f"{text!r} is not a valid RPM version: not a string")
    if not text:
        raise PatchpipeError("'' is not a valid RPM version: it is empty")
    epoch_end = len(text) - len(text.lstrip(_ASCII_DIGITS))
    epoch = None
    rest = text
    if text[epoch_end:epoch_end + 1] == ":":
        epoch, rest = text[:epoch_end], text[epoch_end + 1:]
        if not epoch:
            raise PatchpipeError(f"{text!r} is not a valid RPM version: the epoch before ':' is empty")
    version, dash, release = rest.rpartition("-")
    if not dash:
        version, release = rest, None
    for part, what in ((version, "version"), (release, "release")):
        if part is not None and not _VERSION_PART.fullmatch(part):
            raise PatchpipeError(
                f"{text!r} is not a valid RPM version: the {what} {part!r} must be non-empty ASCII letters, "
                "digits and . _ + ~ ^ (one ':' after the epoch, one '-' before the release)"
            )
    return EVR(epoch, version, release)


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as version (or release) string ``a`` sorts before, equal to or after ``b``."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        i, j = _skip_separators(a, i), _skip_separators(b, j)
        left, right = a[i:i + 1], b[j:j + 1]
        if left == "~" or right == "~":
            if left != right:
                return -1 if left == "~" else 1
            i, j = i + 1, j + 1
            continue
        if left == "^" or right == "^":
            # ^ (a post-release snapshot) beats the end of the other string, loses to anything else.
            if not left:
                return -1
            if not right:
                return 1
            if left != right:
                return -1 if left == "^" else 1
            i, j = i + 1, j + 1
            continue
        if not (left and right):
            break
        numeric = left in _ASCII_DIGITS
        run = _DIGIT_RUN if numeric else _LETTER_RUN
        one, two = run.match(a, i).group(), run.match(b, j).group()
        if not two:
            return 1 if numeric else -1  # a number is newer than letters
        i, j = i + len(one), j + len(two)
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and text[position] not in _ALNUM and text[position] not in "~^":
        position += 1
    return position


def _compare_releases(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    return rpmvercmp(a, b)
