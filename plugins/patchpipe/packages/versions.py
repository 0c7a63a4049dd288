"""Package version ordering, one set of rules per ecosystem: ``deb``, ``apk`` and ``rpm``.

Debian versions use python-debian's implementation of dpkg's algorithm (epochs, ``~`` sorting
before everything, revisions), never string comparison. Alpine's rules live in ``apk_version``, RPM's
in ``rpm_version``. To add an ecosystem, write its ``compare_<ecosystem>`` and register it in
``_COMPARATORS``; ``compare``, ``newer`` and ``patchpipe vercmp`` pick it up.
"""

from __future__ import annotations

from typing import Callable

from debian.debian_support import Version

from patchpipe.errors import PatchpipeError
from patchpipe.packages.apk_version import check_apk, compare_apk
from patchpipe.packages.rpm_version import check_rpm, compare_rpm

__all__ = [
    "ECOSYSTEMS", "check", "check_apk", "check_deb", "check_rpm", "compare", "compare_apk", "compare_deb",
    "compare_rpm", "newer", "newer_deb",
]

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
    "apk": compare_apk,
    "rpm": compare_rpm,
}

_CHECKERS: dict[str, Callable[[str], str]] = {
    "deb": check_deb,
    "apk": check_apk,
    "rpm": check_rpm,
}

ECOSYSTEMS: tuple[str, ...] = tuple(_COMPARATORS)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b`` under ``ecosystem``'s rules."""
    return _comparator(ecosystem)(a, b)


def check(ecosystem: str, text: str) -> str:
    """``text`` unchanged if it is a valid version under ``ecosystem``'s rules, else PatchpipeError."""
    _known(ecosystem)
    return _CHECKERS[ecosystem](text)


def newer(ecosystem: str, a: str, b: str) -> str:
    """The newer of ``a`` and ``b`` under ``ecosystem``'s rules; ``a`` when they are equal."""
    return b if compare(ecosystem, a, b) < 0 else a


def _comparator(ecosystem: str) -> Comparator:
    _known(ecosystem)
    return _COMPARATORS[ecosystem]


def _known(ecosystem: str) -> None:
    if ecosystem not in _COMPARATORS:
        known = ", ".join(ECOSYSTEMS)
        raise PatchpipeError(f"no version rules for ecosystem {ecosystem!r} yet (known: {known})")


_DPKG_MAX_EPOCH = 2**31 - 1  # dpkg keeps the epoch in a C int


def _deb_version(text: str) -> Version:
    try:
        version = Version(text)
    except (ValueError, TypeError):
        raise PatchpipeError(f"{text!r} is not a valid Debian version") from None
    # python-debian accepts a few strings that dpkg refuses or warns about; refuse them like dpkg.
    if version.upstream_version[0] not in "0123456789":
        raise PatchpipeError(f"{text!r} is not a valid Debian version: the upstream version must start with a digit")
    if text.endswith("-"):
        raise PatchpipeError(f"{text!r} is not a valid Debian version: the revision after the last '-' is empty")
    if version.epoch is not None and int(version.epoch) > _DPKG_MAX_EPOCH:
        raise PatchpipeError(f"{text!r} is not a valid Debian version: the epoch is larger than {_DPKG_MAX_EPOCH}")
    return version
