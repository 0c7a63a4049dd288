"""Package version ordering, one set of rules per ecosystem.

Debian versions use python-debian's implementation of dpkg's algorithm (epochs, ``~`` sorting
before everything, revisions), never string comparison. To add an ecosystem (apk, rpm), write its
``compare_<ecosystem>`` and register it in ``_COMPARATORS``; ``compare`` and ``newer`` pick it up.
"""

from __future__ import annotations

from typing import Callable

from debian.debian_support import Version

from patchpipe.errors import PatchpipeError

Comparator = Callable[[str, str], int]


def compare_deb(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version ``a`` sorts before, equal to or after ``b`` (dpkg rules)."""
    left, right = _deb_version(a), _deb_version(b)
    if left < right:
        return -1
    if left > right:
        return 1
    return 0


def check_deb(text: str) -> str:
    """``text`` unchanged if it is a valid Debian version, else PatchpipeError."""
    _deb_version(text)
    return text


def newer_deb(a: str, b: str) -> str:
    """The newer of two Debian versions; ``a`` when they are equal."""
    return newer("deb", a, b)


_COMPARATORS: dict[str, Comparator] = {
    "deb": compare_deb,
}


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b`` under ``ecosystem``'s rules."""
    return _comparator(ecosystem)(a, b)


def newer(ecosystem: str, a: str, b: str) -> str:
    """The newer of ``a`` and ``b`` under ``ecosystem``'s rules; ``a`` when they are equal."""
    return b if compare(ecosystem, a, b) < 0 else a


def _comparator(ecosystem: str) -> Comparator:
    try:
        return _COMPARATORS[ecosystem]
    except KeyError:
        known = ", ".join(sorted(_COMPARATORS))
        raise PatchpipeError(f"no version rules for ecosystem {ecosystem!r} yet (known: {known})") from None


def _deb_version(text: str) -> Version:
    try:
        return Version(text)
    except (ValueError, TypeError):
        raise PatchpipeError(f"{text!r} is not a valid Debian version") from None
