"""Alpine's version ordering, as apk-tools' ``apk_version_compare`` defines it.

A version is ``digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}``. Both versions are split
into tokens and compared token by token while the token kinds agree:

- the first number compares numerically, as do suffix numbers and the ``-rN`` revision;
- a later number compares numerically too, unless either side starts with ``0``: then the two compare
  as strings, like decimal fractions (``1.01 < 1.1``, ``1.001 < 1.01``, ``1.0 < 1.00``);
- a letter compares by character; a suffix by rank:
  ``_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p``;
- a ``~hash`` (a commit, lowercase hex) compares as a string.

When one side runs out or the kinds differ, a pre-release suffix (alpha..rc) sorts first; otherwise
the side whose next token comes earlier in the grammar (a number before a letter before a suffix
before a hash before a revision before the end) is the newer one. So ``1.0 < 1.0-r0 < 1.0.1``.

Unlike apk, which orders even malformed strings somehow, an invalid version is refused: ordering a
typo would give a confident wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from patchpipe.errors import PatchpipeError

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdef")

# apk's rank of each suffix; 0 is the absent suffix, the pivot between pre- and post-releases.
_SUFFIX_RANK = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}


class _Kind(IntEnum):
    """Token kinds in grammar order; when two versions diverge, the earlier kind is the newer side."""

    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    COMMIT_HASH = 5
    REVISION_NO = 6
    END = 7

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    _Kind.INITIAL_DIGIT: "number", _Kind.DIGIT: "number", _Kind.LETTER: "letter", _Kind.SUFFIX: "suffix",
    _Kind.SUFFIX_NO: "suffix number", _Kind.COMMIT_HASH: "commit hash", _Kind.REVISION_NO: "revision",
}


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str = ""

    @property
    def number(self) -> int:
        return int(self.text)


def compare_apk(a: str, b: str) -> int:
    """-1, 0 or 1 as Alpine version ``a`` sorts before, equal to or after ``b`` (apk rules)."""
    for left, right in zip(_tokens(a), _tokens(b)):
        if left.kind != right.kind:
            return _diverged(left, right)
        order = _compare_tokens(left, right)
        if order:
            return order
    return 0


def check_apk(text: str) -> str:
    """``text`` unchanged if it is a valid Alpine version, else PatchpipeError."""
    _tokens(text)
    return text


def _diverged(left: _Token, right: _Token) -> int:
    if left.kind is _Kind.SUFFIX and _SUFFIX_RANK[left.text] < 0:
        return -1
    if right.kind is _Kind.SUFFIX and _SUFFIX_RANK[right.text] < 0:
        return 1
    return -1 if left.kind > right.kind else 1


def _compare_tokens(left: _Token, right: _Token) -> int:
    kind = left.kind
    if kind is _Kind.DIGIT and (left.text[0] == "0" or right.text[0] == "0"):
        return _sign_of_order(left.text, right.text)  # the leading-zero (fraction) rule
    if kind in (_Kind.INITIAL_DIGIT, _Kind.DIGIT, _Kind.SUFFIX_NO, _Kind.REVISION_NO):
        return _sign_of_order(left.number, right.number)
    if kind is _Kind.SUFFIX:
        return _sign_of_order(_SUFFIX_RANK[left.text], _SUFFIX_RANK[right.text])
    return _sign_of_order(left.text, right.text)  # LETTER, COMMIT_HASH, END


def _sign_of_order(left: str | int, right: str | int) -> int:
    return (left > right) - (left < right)


def _tokens(text: str) -> list[_Token]:
    if not isinstance(text, str):
        raise PatchpipeError(f"{text!r} is not a valid Alpine version: not a string")
    tokens = []
    position = _span(text, 0, _DIGITS)
    if position == 0:
        raise _invalid(text, "it must start with a digit")
    tokens.append(_Token(_Kind.INITIAL_DIGIT, text[:position]))
    while position < len(text):
        token, position = _next_token(text, position, tokens[-1].kind)
        tokens.append(token)
    tokens.append(_Token(_Kind.END))
    return tokens


def _next_token(text: str, position: int, previous: _Kind) -> tuple[_Token, int]:
    """The token at ``position``, checked against the grammar order after ``previous``."""
    char = text[position]
    if char in _LOWER:
        if previous > _Kind.DIGIT:
            raise _invalid(text, f"a letter may only follow a number (at {position + 1})")
        return _Token(_Kind.LETTER, char), position + 1
    if char == "." or char in _DIGITS:
        if char == "." and previous > _Kind.DIGIT:
            raise _invalid(text, f"'.' may only follow a number (at {position + 1})")
        kind = {_Kind.INITIAL_DIGIT: _Kind.DIGIT, _Kind.DIGIT: _Kind.DIGIT, _Kind.SUFFIX: _Kind.SUFFIX_NO}.get(previous)
        if kind is None:
            raise _invalid(text, f"a number cannot follow a {previous.description} (at {position + 1})")
        start = position + (char == ".")
        end = _span(text, start, _DIGITS)
        if end == start:
            raise _invalid(text, f"'.' must be followed by a number (at {position + 1})")
        return _Token(kind, text[start:end]), end
    if char == "_":
        if previous > _Kind.SUFFIX_NO:
            raise _invalid(text, f"a '_' suffix cannot follow a {previous.description} (at {position + 1})")
        end = _span(text, position + 1, _LOWER)
        name = text[position + 1:end]
        if name not in _SUFFIX_RANK:
            known = ", ".join(f"_{suffix}" for suffix in _SUFFIX_RANK)
            raise _invalid(text, f"unknown suffix '_{name}' (known: {known})")
        return _Token(_Kind.SUFFIX, name), end
    if char == "~":
        if previous >= _Kind.COMMIT_HASH:
            raise _invalid(text, f"'~' cannot follow a {previous.description} (at {position + 1})")
        end = _span(text, position + 1, _HEX)
        if end == position + 1:
            raise _invalid(text, f"'~' must be followed by a lowercase hex commit (at {position + 1})")
        return _Token(_Kind.COMMIT_HASH, text[position + 1:end]), end
    if char == "-":
        if previous >= _Kind.REVISION_NO:
            raise _invalid(text, f"a second revision (at {position + 1})")
        end = _span(text, position + 2, _DIGITS)
        if text[position + 1:position + 2] != "r" or end == position + 2:
            raise _invalid(text, f"'-' must start a revision '-rN' (at {position + 1})")
        return _Token(_Kind.REVISION_NO, text[position + 2:end]), end
    raise _invalid(text, f"unexpected character {char!r} (at {position + 1})")


def _span(text: str, start: int, allowed: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in allowed:
        end += 1
    return end


def _invalid(text: str, reason: str) -> PatchpipeError:
    return PatchpipeError(f"{text!r} is not a valid Alpine version: {reason}")
