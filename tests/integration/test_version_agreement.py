"""patchpipe's version rules agree with the distributions' own tools, pair for pair.

deb is checked against `dpkg --compare-versions`, rpm against rpm's own `rpm.vercmp` (rpm 4.18's
epoch:version-release comparison), run through `rpm --eval` and its Lua interpreter. The pairs come
from real version strings (tests/fixtures/versions/debian-versions.txt, see the README there): every
two versions of one source package, and each package with the next one in name order. rpm gets the
same versions rewritten as epoch:version-release, plus snapshot (^) and pre-release (~) variants and
hand-picked corner cases. Seeded random versions built around the same corner cases come on top.

dpkg answers one relation per call and each call is a process (about a millisecond), so deb is
checked through dpkg's order rather than pair by pair: the versions sorted by patchpipe are put to
dpkg neighbour by neighbour (about 11,500 calls, in a small shell loop per CPU), which fixes dpkg's
rank of every version by transitivity; every pair is then checked against those ranks. rpm is fast
enough through one Lua loop to be asked every pair, both ways round.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cmp_to_key
from itertools import combinations
from pathlib import Path

import pytest
from debian.debian_support import Version

from patchpipe.errors import PatchpipeError
from patchpipe.packages.rpm_version import check_rpm, compare_rpm
from patchpipe.packages.versions import check_deb, compare_deb

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "versions" / "debian-versions.txt"
MIN_REAL_PAIRS = 10_000

Pair = tuple[str, str]
_RELATION = {-1: "lt", 0: "eq", 1: "gt"}

# Reads "A RELATION B" lines; prints each line dpkg does not confirm, then how many it checked.
_DPKG_LOOP = """\
n=0
while read -r a op b; do
  n=$((n + 1))
  dpkg --compare-versions "$a" "$op" "$b" || printf '%s %s %s\\n' "$a" "$op" "$b"
done < "$1"
echo "checked $n"
"""

# Prints rpm.vercmp(A, B) for each "A B" line of the file named by $PATCHPIPE_RPM_PAIRS.
_RPM_LUA = """%{lua:
local out = {}
for line in io.lines(os.getenv("PATCHPIPE_RPM_PAIRS")) do
  local a, b = line:match("^(%S+) (%S+)$")
  out[#out + 1] = tostring(rpm.vercmp(a, b))
end
print(table.concat(out, "\\n"))
}"""

# Corner cases of rpmvercmp and of the epoch:version-release split.
RPM_CORNER_CASES: list[Pair] = [
    ("1.0", "1.0"), ("1.0", "1.0.0"), ("1.0", "1_0"), ("1.0", "1.0."), ("1..0", "1.0"), ("1.0", "1+0"),
    ("010", "10"), ("0010", "9"), ("000", "0"), ("1.0a", "1.0"), ("1.0a", "1.0.1"), ("1.0a", "1.0.a"),
    ("a", "b"), ("A", "a"), ("Z", "a"), ("1.0A", "1.0a"), ("abc", "abcd"), ("1a", "1.a"), ("a1", "1a"),
    ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"), ("1.0~rc1", "1.0~"), ("1.0~~", "1.0~"), ("1.0~", "1.0"),
    ("1.0~rc1", "1.0rc1"), ("1.0~1", "1.0~a"), ("~", "0"), ("~~1", "~1"),
    ("1.0^", "1.0"), ("1.0^git1", "1.0"), ("1.0^git1", "1.0.1"), ("1.0^git1", "1.0^git2"),
    ("1.0^git1", "1.0~rc1"), ("1.0^", "1.0~"), ("1.0^~", "1.0^"), ("1.0~^", "1.0~"), ("1.0^^", "1.0^"),
    ("1.0^1", "1.0a"), ("1.0^1", "1.0+1"), ("^", "~"), ("1.0^git1~rc", "1.0^git1"),
    ("1:1.0", "2.0"), ("0:1.0", "1.0"), ("00:1.0", "0:1.0"), ("1:1.0", "01:1.0"), ("10:1", "9:1"),
    ("1.0", "1.0-1"), ("1.0-1", "1.0-1.el8"), ("1.0-1.el8", "1.0-1.el8_9"), ("1.0-2", "1.0-10"),
    ("1.0-1.fc39", "1.0-1.fc40"), ("2.38.1-5.el9", "1:2.38.1-1.el9"), ("1.0-0.1.rc1", "1.0-1"),
    ("1.0-1~", "1.0-1"), ("1.0-1^", "1.0-1"), ("4.18.0-553.el8_10", "4.18.0-477.10.1.el8_8"),
    ("2:8.2.2637-20.el9_1", "2:8.2.2637-20.el9"), ("3.0.7-27.el9.0.2", "3.0.7-27.el9"),
    ("99999999999999999999", "100000000000000000000"), ("18446744073709551616", "18446744073709551615"),
]


@pytest.fixture(scope="module")
def dpkg() -> str:
    path = shutil.which("dpkg")
    if path is None:
        pytest.fail("dpkg is needed to check deb version ordering against the real tool (apt-get install dpkg)")
    return path


@pytest.fixture(scope="module")
def rpm() -> str:
    path = shutil.which("rpm")
    if path is None:
        pytest.fail("rpm is needed to check rpm version ordering against the real tool (apt-get install rpm)")
    return path


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    """The recorded versions, one list per source package, in name order."""
    groups = [line.split()[1:] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sum(map(len, groups)) > 10_000, f"{CORPUS} looks truncated"
    return groups


def neighbour_pairs(groups: Sequence[Sequence[str]]) -> list[Pair]:
    """Every two versions of one package, and each package with the next one (version by version)."""
    pairs: list[Pair] = []
    for versions in groups:
        pairs.extend(combinations(versions, 2))
    for this, following in zip(groups, groups[1:]):
        pairs.extend(zip(this, following))
    return list(dict.fromkeys(pairs))


# --- deb -------------------------------------------------------------------------------------------


def test_deb_agrees_with_dpkg_on_real_versions(dpkg: str, corpus: list[list[str]], tmp_path: Path) -> None:
    versions = [version for group in corpus for version in group]
    pairs = neighbour_pairs(corpus)
    assert len(pairs) >= MIN_REAL_PAIRS
    assert any(":" in a or ":" in b for a, b in pairs) and any("~" in a or "~" in b for a, b in pairs)
    _assert_dpkg_agrees(versions, pairs, tmp_path, "real Debian versions")


def test_deb_agrees_with_dpkg_on_generated_versions(dpkg: str, tmp_path: Path) -> None:
    rng = random.Random(20261124)
    pairs = []
    for _ in range(1000):
        version = _random_deb_version(rng)
        pairs.append((version, _mutate(rng, version, _random_deb_version, check_deb)))
    _assert_dpkg_agrees([version for pair in pairs for version in pair], pairs, tmp_path, "generated Debian versions")


# dpkg refuses these (an error) or warns that their syntax is bad; patchpipe refuses them all.
DPKG_REJECTS = [
    "1.0 1", ":1.0", "1:", "a:1.0", "1.0:1", "1:-1", "1.0-", "2147483648:1", "a1.0", "1:a", "~1",
    "1.0_1", "1.0-a_b", "1.0#", "1.0-1/2", "1.0\u00e9",
]
DPKG_ACCEPTS = ["0", "0:0", "1.0a", "1.0-1-1", "1.0~", "1.0-+", "1:1.0--1", "1:1.0:2-3", "2147483647:1", "0a~"]
# dpkg takes these without a word (an empty version sorts first; blanks around a version are trimmed;
# the epoch goes through strtol). In a package database or an advisory they are mistakes: refused.
STRICTER_THAN_DPKG = ["", " 1.0", "1.0 ", "+1:1.0"]


@pytest.mark.parametrize("version", DPKG_REJECTS + DPKG_ACCEPTS + STRICTER_THAN_DPKG)
def test_deb_validity_matches_dpkg(dpkg: str, version: str) -> None:
    result = subprocess.run(["dpkg", "--compare-versions", "--", version, "eq", version],
                            capture_output=True, text=True, check=False)
    dpkg_accepts = result.returncode == 0 and not result.stderr
    assert dpkg_accepts == (version not in DPKG_REJECTS), f"the table is wrong about {version!r}: {result.stderr}"
    if version in DPKG_ACCEPTS:
        assert check_deb(version) == version
    else:
        with pytest.raises(PatchpipeError, match="is not a valid Debian version"):
            check_deb(version)


def _assert_dpkg_agrees(versions: list[str], pairs: list[Pair], tmp_path: Path, what: str) -> None:
    """dpkg orders ``versions`` as patchpipe does, and so agrees with it on every one of ``pairs``.

    Sorted by patchpipe, each version is put to dpkg against the next one ("lt" or "eq"); dpkg's order
    is transitive, so when it confirms every step it orders the whole list the same way, and each
    version's step count is its rank under dpkg. Every pair is then checked against those ranks.
    """
    started = time.monotonic()
    ordered = sorted(dict.fromkeys(versions), key=cmp_to_key(compare_deb))
    steps = [(a, _RELATION[compare_deb(a, b)], b) for a, b in zip(ordered, ordered[1:])]
    assert all(op != "gt" for _, op, _ in steps), "patchpipe's deb ordering is not a total order"
    refuted = _dpkg_refutes(steps, tmp_path)
    seconds = time.monotonic() - started
    assert not refuted, f"dpkg disagrees on {len(refuted)} of {len(steps)} neighbouring versions, e.g.:\n" + "\n".join(
        f"  patchpipe says {a} {op} {b}; dpkg says {_dpkg_relation(a, b)}" for a, op, b in refuted[:20]
    )
    rank = {ordered[0]: 0}
    for a, op, b in steps:
        rank[b] = rank[a] + (op == "lt")
    differing = [(a, b) for a, b in pairs if compare_deb(a, b) != _sign(rank[a] - rank[b])]
    agreement = 100 * (len(pairs) - len(differing)) / len(pairs)
    print(f"\ndeb, {what}: {len(steps)} comparisons by dpkg order {len(ordered)} versions; "
          f"{len(pairs)} pairs, {agreement:.3f}% agreement, {seconds:.1f} s")
    assert not differing, f"patchpipe disagrees with dpkg's order on {len(differing)} pairs, e.g. {differing[:5]}"


def _dpkg_refutes(claims: list[tuple[str, str, str]], tmp_path: Path) -> list[tuple[str, str, str]]:
    """The claims ``(a, relation, b)`` that dpkg does not confirm, checked in one shell loop per CPU."""
    workers = max(1, min(4, os.cpu_count() or 1))
    chunks = [claims[i::workers] for i in range(workers)]
    paths = []
    for index, chunk in enumerate(chunks):
        path = tmp_path / f"dpkg-claims-{index}.txt"
        path.write_text("".join(f"{a} {op} {b}\n" for a, op, b in chunk), encoding="utf-8")
        paths.append(path)

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", _DPKG_LOOP, "dpkg-loop", str(path)],
                              capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, paths))
    refuted = []
    for chunk, result in zip(chunks, results):
        assert result.returncode == 0 and not result.stderr, f"the dpkg loop failed: {result.stderr[:2000]}"
        *lines, tally = result.stdout.splitlines()
        assert tally == f"checked {len(chunk)}", f"the dpkg loop checked {tally!r} of {len(chunk)} claims"
        refuted += [tuple(line.split(" ")) for line in lines]
    return refuted


def _sign(number: int) -> int:
    return (number > 0) - (number < 0)


def _dpkg_relation(a: str, b: str) -> str:
    for relation in ("lt", "eq", "gt"):
        if subprocess.run(["dpkg", "--compare-versions", a, relation, b], check=False).returncode == 0:
            return relation
    return "nothing (an error)"


def _random_deb_version(rng: random.Random) -> str:
    epoch = rng.choice(["", "", "", "0:", "1:", "2:", "10:"])
    upstream = rng.choice("0123456789") + _random_text(rng, "0123456789..+~~ab", 0, 7)
    revision = rng.choice(["", "", "-" + _random_text(rng, "0123456789.+~~ab", 1, 5)])
    if revision and rng.random() < 0.2:
        upstream += "-" + _random_text(rng, "0123456789.ab", 1, 3)  # a '-' inside the upstream version
    return epoch + upstream + revision


# --- rpm -------------------------------------------------------------------------------------------


def test_rpm_agrees_with_rpm_on_real_versions(rpm: str, corpus: list[list[str]], tmp_path: Path) -> None:
    groups = [[_rpm_style(version) for version in versions] for versions in corpus]
    pairs = neighbour_pairs(groups)
    real = len(pairs)
    assert real >= MIN_REAL_PAIRS
    for versions in groups:  # a snapshot and a pre-release of each package's first version
        version, dash, release = versions[0].rpartition("-") if "-" in versions[0] else (versions[0], "", "")
        snapshot = f"{version}^20240101git1a2b3c{dash}{release}"
        prerelease = f"{version}~rc1{dash}{release}"
        pairs += [(snapshot, other) for other in versions] + [(prerelease, snapshot), (prerelease, versions[0])]
    _assert_rpm_agrees(pairs, tmp_path, f"{real} pairs of real versions as epoch:version-release "
                                        f"and {len(pairs) - real} snapshot or pre-release variants")


def test_rpm_agrees_with_rpm_on_corner_cases_and_generated_versions(rpm: str, tmp_path: Path) -> None:
    rng = random.Random(20261124)
    pairs = list(RPM_CORNER_CASES)
    for _ in range(5000):
        version = _random_rpm_version(rng)
        pairs.append((version, _mutate(rng, version, _random_rpm_version, check_rpm)))
    _assert_rpm_agrees(pairs, tmp_path, "corner cases and generated versions")


def _assert_rpm_agrees(pairs: list[Pair], tmp_path: Path, what: str) -> None:
    unique = len(pairs)
    pairs = pairs + [(b, a) for a, b in pairs]  # both ways round: the order must be antisymmetric too
    started = time.monotonic()
    ours = [compare_rpm(a, b) for a, b in pairs]
    theirs = _rpm_vercmp(pairs, tmp_path)
    seconds = time.monotonic() - started
    differing = [(a, b, mine, real) for (a, b), mine, real in zip(pairs, ours, theirs) if mine != real]
    agreement = 100 * (len(pairs) - len(differing)) / len(pairs)
    print(f"\nrpm, {what}: {unique} pairs asked both ways, {agreement:.3f}% agreement with rpm, {seconds:.1f} s")
    assert not differing, f"rpm disagrees on {len(differing)} of {len(pairs)} pairs, e.g.:\n" + "\n".join(
        f"  {a} vs {b}: patchpipe {mine}, rpm {real}" for a, b, mine, real in differing[:20]
    )


def _rpm_vercmp(pairs: list[Pair], tmp_path: Path) -> list[int]:
    path = tmp_path / "rpm-pairs.txt"
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs), encoding="utf-8")
    result = subprocess.run(["rpm", "--eval", _RPM_LUA], capture_output=True, text=True, check=False,
                            env={**os.environ, "PATCHPIPE_RPM_PAIRS": str(path)})
    assert result.returncode == 0 and not result.stderr, f"rpm --eval failed: {result.stderr[:2000]}"
    answers = [int(line) for line in result.stdout.split()]
    assert len(answers) == len(pairs), f"rpm answered {len(answers)} of {len(pairs)} pairs"
    return answers


def _rpm_style(deb: str) -> str:
    """A Debian version as an RPM epoch:version-release (rpm allows neither '-' nor ':' in a version)."""
    parsed = Version(deb)
    epoch = f"{parsed.epoch}:" if parsed.epoch is not None else ""
    version = parsed.upstream_version.replace("-", "_").replace(":", ".")
    release = f"-{parsed.debian_revision}" if parsed.debian_revision else ""
    return f"{epoch}{version}{release}"


def _random_rpm_version(rng: random.Random) -> str:
    epoch = rng.choice(["", "", "", "0:", "1:", "01:", "2:"])
    version = _random_text(rng, "0123456789..aZ~^_+", 1, 8)
    release = rng.choice(["", "-" + _random_text(rng, "0123456789.a~^_", 1, 5)])
    return epoch + version + release


# --- shared ----------------------------------------------------------------------------------------


def _random_text(rng: random.Random, alphabet: str, shortest: int, longest: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(shortest, longest)))


def _mutate(rng: random.Random, version: str, fresh: Callable[[random.Random], str],
            valid: Callable[[str], str]) -> str:
    """A close relative of ``version`` (one character changed, added or dropped) that is still valid,
    so most pairs share a long prefix and differ where the rules are subtle."""
    for _ in range(20):
        position = rng.randrange(len(version) + 1)
        insert = rng.choice("0123456789.~^+ab")
        candidate = rng.choice([
            version[:position] + insert + version[position:],
            version[:position] + insert + version[position + 1:],
            version[:position] + version[position + 1:],
        ])
        if _is_valid(valid, candidate):
            return candidate
    return fresh(rng)


def _is_valid(valid: Callable[[str], str], text: str) -> bool:
    try:
        valid(text)
    except PatchpipeError:
        return False
    return True
