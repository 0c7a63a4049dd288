"""The Alpine secdb source over the real v3.20/main excerpt (whole file and per package) and odd cases."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from patchpipe.advisories.alpine_secdb import AlpineSecdbSource, ids_in_entry
from patchpipe.advisories.records import Advisory, AffectedPackage, Status
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import DEFAULT_URLS, alpine_secdb_urls, get_source

REAL = Path("/work/shared/data/advisories/alpine-secdb")
WHOLE_FILE = REAL / "v3.20-main.json"
PER_PACKAGE_FILES = sorted(path for path in REAL.glob("*.json") if path != WHOLE_FILE)
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories" / "alpine-secdb"


def parse_file(path: Path) -> list:
    with path.open("rb") as payload:
        return list(AlpineSecdbSource().parse(payload, str(path)))


def advisories_by_id(records: list) -> dict[str, Advisory]:
    assert all(isinstance(r, Advisory) for r in records), records
    advisories = {r.id: r for r in records}
    assert len(advisories) == len(records)
    return advisories


def raw_fixes(path: Path) -> list[tuple[str, str, str]]:
    """(package, version, id) for every id string in a real secdb file, counted straight from the JSON."""
    document = json.loads(path.read_bytes())
    packages = [item["pkg"] for item in document["packages"]] if "packages" in document else [document]
    return [
        (package["name"], version, identifier)
        for package in packages
        for version, identifiers in package["secfixes"].items()
        for identifier in identifiers
    ]


@pytest.fixture(scope="module")
def whole() -> dict[str, Advisory]:
    return advisories_by_id(parse_file(WHOLE_FILE))


def test_one_advisory_per_id_with_one_entry_per_fix(whole: dict[str, Advisory]):
    fixes = raw_fixes(WHOLE_FILE)

    assert all(" " not in identifier for _, _, identifier in fixes)  # the real data has one id per entry
    assert len(whole) == len({identifier for _, _, identifier in fixes}) == 75
    assert sum(len(a.affected) for a in whole.values()) == len(fixes)
    for package, version, identifier in fixes:
        status = Status.NOT_AFFECTED if version == "0" else Status.FIXED
        fixed_version = None if version == "0" else version
        assert AffectedPackage("alpine", "v3.20", package, status, fixed_version) in whole[identifier].affected


def test_key_zero_means_not_affected(whole: dict[str, Advisory]):
    for cve in ("CVE-2021-42373", "CVE-2021-42376", "CVE-2021-42377"):
        (busybox,) = whole[cve].affected
        assert (busybox.package, busybox.status, busybox.fixed_version) == ("busybox", Status.NOT_AFFECTED, None)


def test_fixed_versions_of_known_cves(whole: dict[str, Advisory]):
    (expat,) = whole["CVE-2024-45490"].affected
    assert (expat.package, expat.release, expat.status, expat.fixed_version) == (
        "expat", "v3.20", Status.FIXED, "2.6.3-r0",
    )
    assert whole["CVE-2022-28391"].affected[0].fixed_version == "1.35.0-r7"
    assert {a.source for a in whole.values()} == {"alpine_secdb"}


def test_an_id_that_is_not_a_cve_is_kept_under_its_own_id(whole: dict[str, Advisory]):
    (busybox,) = whole["ALPINE-13661"].affected

    assert (busybox.package, busybox.fixed_version) == ("busybox", "1.35.0-r7")


@pytest.mark.parametrize("path", PER_PACKAGE_FILES, ids=lambda path: path.stem)
def test_a_per_package_file_gives_the_same_advisories_as_its_part_of_the_whole_file(
    path: Path, whole: dict[str, Advisory]
):
    advisories = advisories_by_id(parse_file(path))

    assert len(advisories) == len({identifier for _, _, identifier in raw_fixes(path)})
    for identifier, advisory in advisories.items():
        assert advisory == whole[identifier]


# --- hand-written odd secfixes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd() -> list:
    return parse_file(HAND_WRITTEN / "odd-secfixes.json")


def test_entries_with_extra_text_give_cves_with_aliases(odd: list):
    advisories = {r.id: r for r in odd if isinstance(r, Advisory)}

    assert sorted(advisories) == sorted(
        ["CVE-2099-2001", "CVE-2099-2002", "CVE-2099-2003", "CVE-2099-2004", "XSA-450"]
    )
    assert advisories["CVE-2099-2001"].aliases == ("XSA-444",)
    assert advisories["CVE-2099-2002"].aliases == ()
    assert [a.fixed_version for a in advisories["CVE-2099-2004"].affected] == ["4.18.0-r2"]  # was lower-case


def test_one_cve_under_two_versions_and_two_packages_keeps_every_entry(odd: list):
    advisory = next(r for r in odd if isinstance(r, Advisory) and r.id == "CVE-2099-2001")

    assert [(a.package, a.status, a.fixed_version) for a in advisory.affected] == [
        ("xen", Status.FIXED, "4.18.0-r1"),
        ("xen", Status.FIXED, "4.18.0-r3"),
        ("xen-tools", Status.NOT_AFFECTED, None),
    ]
    assert {a.release for a in advisory.affected} == {"v3.21"}


def test_malformed_packages_are_problems_and_the_rest_is_kept(odd: list):
    problems = [r for r in odd if isinstance(r, RecordProblem)]

    assert [p.record_id for p in problems] == ["broken", None]
    assert "secfixes['1.0-r0'] is not a list of strings" in problems[0].message
    assert "packages[4] has no pkg object" in problems[1].message
    assert not any(isinstance(r, Advisory) and r.id == "CVE-2099-2009" for r in odd)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("CVE-2021-1234", (["CVE-2021-1234"], [])),
        ("CVE-2021-1234 XSA-123", (["CVE-2021-1234"], ["XSA-123"])),
        ("CVE-2021-1234, cve-2021-5678", (["CVE-2021-1234", "CVE-2021-5678"], [])),
        ("ALPINE-13661", ([], ["ALPINE-13661"])),
        ("  ", ([], [])),
    ],
)
def test_ids_in_entry(entry: str, expected: tuple[list[str], list[str]]):
    assert ids_in_entry(entry) == expected


# --- whole-feed errors and the registry ----------------------------------------------------------


def test_a_file_without_distroversion_is_a_feed_error():
    with pytest.raises(FeedError, match="no distroversion"):
        parse_file(HAND_WRITTEN / "no-distroversion.json")


def test_invalid_json_is_a_feed_error_naming_the_origin():
    origin = "https://secdb.example/v3.20/main.json"
    with pytest.raises(FeedError, match=f"^{origin} is not valid JSON"):
        list(AlpineSecdbSource().parse(io.BytesIO(WHOLE_FILE.read_bytes()[:-10]), origin))


def test_json_that_is_not_secdb_is_a_feed_error():
    with pytest.raises(FeedError, match="neither a secdb file"):
        list(AlpineSecdbSource().parse(io.BytesIO(b'{"distroversion": "v3.20"}'), "x.json"))


def test_registered_with_main_and_community_urls_per_release():
    assert isinstance(get_source("alpine-secdb"), AlpineSecdbSource)
    assert DEFAULT_URLS["alpine_secdb"] == (
        "https://secdb.alpinelinux.org/v3.20/main.json",
        "https://secdb.alpinelinux.org/v3.20/community.json",
    )
    assert alpine_secdb_urls(["v3.19", "v3.20"], ["main"], base="http://mirror.local/secdb") == (
        "http://mirror.local/secdb/v3.19/main.json",
        "http://mirror.local/secdb/v3.20/main.json",
    )
