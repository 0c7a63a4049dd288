"""OpenVEX documents (``patchpipe.scan.vex``) and which statement speaks for a finding (``scan.vex_match``).

The fixtures in tests/fixtures/vex are shaped like the specification's examples: one distribution-style
document about a Debian package, one about the demo web image with subcomponents and a later
statement that takes an earlier one back.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from patchpipe.advisories.records import Severity, Status
from patchpipe.errors import PatchpipeError
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.scan.findings import Finding
from patchpipe.scan.vex import load_vex, parse_vex
from patchpipe.scan.vex_match import VexStatements, VexTarget, image_repository

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vex"
WEB = FIXTURES / "demo-web.openvex.json"
CHROMIUM = FIXTURES / "chromium.openvex.json"
PATCHED_WEB = "127.0.0.1:5000/demo/web:1.0-patch.20261124.1"

INVENTORY = Inventory(
    os=OsRelease(id="debian", version_id="12", version_codename="bookworm"),
    package_manager="dpkg",
    packages=[
        InstalledPackage("chromium", "97.0.4692.99-1", "amd64", "chromium", "97.0.4692.99-1"),
        InstalledPackage("chromium-common", "97.0.4692.99-1", "amd64", "chromium", "97.0.4692.99-1"),
        InstalledPackage("libsope1", "5.8.0-1+deb12u1+b1", "amd64", "sope", "5.8.0-1+deb12u1"),
        InstalledPackage("bash", "5.2.15-2+b2", "amd64", "bash", "5.2.15-2+b2"),
    ],
)


def finding(id: str, package: str, *, aliases: tuple[str, ...] = ()) -> Finding:
    installed = next(p for p in INVENTORY.packages if p.name == package)
    return Finding(id=id, aliases=aliases, package=package, source_package=installed.source_name,
                   installed=installed.version, fixed=None, status=Status.AFFECTED, severity=Severity.HIGH)


def statements_for(image: str | None, *paths: Path, documents: tuple[dict[str, Any], ...] = ()) -> VexStatements:
    statements = load_vex(paths)
    for n, document in enumerate(documents):
        statements += parse_vex(json.dumps(document), f"inline-{n}.json")
    return VexStatements(statements, VexTarget.of(INVENTORY, image))


def document(*statements: dict[str, Any], timestamp: str = "2026-11-01T00:00:00Z") -> dict[str, Any]:
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://openvex.dev/docs/public/vex-test",
            "author": "tests", "timestamp": timestamp, "version": 1, "statements": list(statements)}


def statement(vulnerability: str, *products: Any, status: str = "not_affected", **fields: Any) -> dict[str, Any]:
    if status == "not_affected":
        fields.setdefault("justification", "component_not_present")
    return {"vulnerability": {"name": vulnerability}, "products": [p if isinstance(p, dict) else {"@id": p}
                                                                   for p in products], "status": status, **fields}


# --- reading documents ---------------------------------------------------------------------------


def test_a_document_reads_into_statements_with_inherited_and_own_timestamps() -> None:
    first, second, third = load_vex([WEB])
    assert (first.vulnerability, first.aliases, first.status) == ("CVE-2025-53603", ("DLA-4280-1",), "not_affected")
    assert first.justification == "vulnerable_code_cannot_be_controlled_by_adversary"
    assert first.impact_statement is None
    assert first.document_id == "https://openvex.dev/docs/example/vex-patchpipe-demo-web-3"
    assert first.author == "Demo Web Team <web@example.org>"
    assert first.where == f"{WEB} statements[0]"
    assert first.timestamp == datetime(2026, 11, 1, 18, 0, tzinfo=timezone.utc)  # the document's, -06:00
    (product,) = first.products
    assert product.purls[0].qualifiers == {"repository_url": "127.0.0.1:5000/demo/web"}
    assert [s.purls[0].name for s in product.subcomponents] == ["libsope1"]
    assert second.impact_statement == "The web image never starts chromium." and second.justification is None
    assert (third.status, third.timestamp) == ("under_investigation", datetime(2026, 11, 10, 8, tzinfo=timezone.utc))
    assert len(third.products[0].purls) == 2  # the @id and identifiers.purl


def test_go_style_nanosecond_timestamps_are_cut_to_microseconds() -> None:
    (only,) = load_vex([CHROMIUM])
    assert only.timestamp == datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=timezone.utc)


def test_documents_are_read_in_the_order_given() -> None:
    assert [s.source for s in load_vex([CHROMIUM, WEB])] == [str(CHROMIUM)] + [str(WEB)] * 3


def test_a_missing_document_is_named() -> None:
    with pytest.raises(PatchpipeError, match="OpenVEX document not found: .*nope.json"):
        load_vex([FIXTURES / "nope.json"])


MALFORMED = [
    ("no status", lambda d: d["statements"][0].pop("status"),
     r"statements\[0\]\.status: must be one of not_affected, affected, fixed, under_investigation, got None"),
    ("unknown status", lambda d: d["statements"][1].update(status="resolved"),
     r"statements\[1\]\.status: .*got 'resolved'"),
    ("not_affected without a why", lambda d: d["statements"][0].pop("justification"),
     r"statements\[0\]: a not_affected statement needs a justification or an impact_statement"),
    ("unknown justification", lambda d: d["statements"][0].update(justification="not_reachable"),
     r"statements\[0\]\.justification: must be one of component_not_present, .*got 'not_reachable'"),
    ("no vulnerability name", lambda d: d["statements"][1]["vulnerability"].pop("name"),
     r"statements\[1\]\.vulnerability\.name: field required"),
    ("no products", lambda d: d["statements"][1].update(products=[]), r"statements\[1\]\.products: must list at least one"),
    ("bad purl", lambda d: d["statements"][0]["products"][0]["subcomponents"][0].update({"@id": "pkg:deb"}),
     r"statements\[0\]\.products\[0\]\.subcomponents\[0\]\.@id: not a valid package URL"),
    ("unidentified product", lambda d: d["statements"][1].update(products=[{"subcomponents": []}]),
     r"statements\[1\]\.products\[0\]: needs an @id, identifiers or hashes"),
    ("bad statement timestamp", lambda d: d["statements"][2].update(timestamp="2026-11-10 08:00"),
     r"statements\[2\]\.timestamp: must be an RFC 3339 time with an offset"),
    ("no author", lambda d: d.pop("author"), r"author: field required"),
    ("no document timestamp", lambda d: d.pop("timestamp"), r"timestamp: field required"),
    ("not OpenVEX", lambda d: d.update({"@context": "http://cyclonedx.org/schema/bom-1.6.schema.json"}),
     r"@context: must be an OpenVEX context .*not an OpenVEX document"),
    ("version as text", lambda d: d.update(version="3"), r"version: must be an integer, got '3'"),
]


@pytest.mark.parametrize(("mutate", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_document_names_the_file_and_the_field(mutate: Any, message: str) -> None:
    data = copy.deepcopy(json.loads(WEB.read_text()))
    mutate(data)
    with pytest.raises(PatchpipeError, match=f"^web.json: {message}"):
        parse_vex(json.dumps(data), "web.json")


def test_text_that_is_not_json_names_line_and_column() -> None:
    with pytest.raises(PatchpipeError, match=r"^broken.json: not valid JSON: Expecting ',' delimiter at line 3"):
        parse_vex('{\n  "@context": "https://openvex.dev/ns/v0.2.0"\n  "author": "x"\n}', "broken.json")


# --- which statement speaks for a finding --------------------------------------------------------


def test_image_repository_drops_scheme_tag_and_digest() -> None:
    assert image_repository("127.0.0.1:5000/Demo/web:1.0@sha256:" + "a" * 64) == "127.0.0.1:5000/demo/web"
    assert image_repository("https://ghcr.io/aquasecurity/trivy/") == "ghcr.io/aquasecurity/trivy"
    assert image_repository("demo/web") == "demo/web"


def test_an_image_product_applies_to_every_tag_of_its_repository() -> None:
    vex = statements_for(PATCHED_WEB, WEB)
    speaking = vex.latest(finding("CVE-2022-0456", "chromium"))  # statement 1 names 127.0.0.1:5000/demo/web:1.0
    assert speaking is not None and (speaking.index, speaking.status) == (1, "not_affected")
    assert statements_for("127.0.0.1:5000/other/web:1.0", WEB).latest(finding("CVE-2022-0456", "chromium")) is None


def test_subcomponents_narrow_an_image_statement_to_their_packages() -> None:
    vex = statements_for(PATCHED_WEB, WEB)
    assert vex.latest(finding("CVE-2025-53603", "libsope1")).index == 0
    assert vex.latest(finding("CVE-2025-53603", "bash")) is None


def test_a_later_statement_overrides_an_earlier_one_for_the_same_vulnerability_and_package() -> None:
    vex = statements_for(PATCHED_WEB, WEB)
    assert vex.latest(finding("CVE-2022-0456", "chromium-common")).status == "under_investigation"
    assert vex.latest(finding("CVE-2022-0456", "chromium")).status == "not_affected"  # not in the later one


def test_time_decides_before_reading_order_and_reading_order_breaks_ties() -> None:
    earlier = document(statement("CVE-1", "pkg:deb/debian/bash", status="affected", action_statement="upgrade"),
                       timestamp="2026-01-01T00:00:00Z")
    later = document(statement("CVE-1", "pkg:deb/debian/bash"), timestamp="2026-02-01T00:00:00Z")
    assert statements_for(None, documents=(later, earlier)).latest(finding("CVE-1", "bash")).status == "not_affected"
    same_time = document(statement("CVE-1", "pkg:deb/debian/bash", status="fixed"), timestamp="2026-02-01T00:00:00Z")
    assert statements_for(None, documents=(later, same_time)).latest(finding("CVE-1", "bash")).status == "fixed"


def test_a_statement_may_name_one_of_the_findings_aliases_in_any_case() -> None:
    vex = statements_for(None, documents=(document(statement("dla-4280-1", "pkg:deb/debian/libsope1")),))
    assert vex.latest(finding("CVE-2025-53603", "libsope1", aliases=("DLA-4280-1",))) is not None
    assert vex.latest(finding("CVE-2025-53603", "libsope1")) is None


def test_a_package_product_applies_in_any_image_and_in_a_root_filesystem() -> None:
    for image in (None, PATCHED_WEB, "127.0.0.1:5000/other/app:2"):
        vex = statements_for(image, CHROMIUM)
        assert vex.latest(finding("CVE-2024-7965", "chromium")) is not None
        assert vex.latest(finding("CVE-2024-7965", "chromium-common")) is not None  # built from source chromium
        assert vex.latest(finding("CVE-2024-7965", "bash")) is None


def test_an_image_product_does_not_apply_to_a_root_filesystem() -> None:
    assert statements_for(None, WEB).latest(finding("CVE-2022-0456", "chromium")) is None


@pytest.mark.parametrize(("purl", "applies"), [
    ("pkg:deb/debian/libsope1", True),
    ("pkg:deb/libsope1", True),  # no namespace: any
    ("pkg:deb/debian/libsope1@5.8.0-1%2Bdeb12u1%2Bb1", True),
    ("pkg:deb/debian/libsope1@5.8.0-1", False),
    ("pkg:deb/debian/libsope1?arch=amd64&distro=debian-12", True),
    ("pkg:deb/debian/libsope1?arch=arm64", False),
    ("pkg:deb/ubuntu/libsope1", False),
    ("pkg:apk/debian/libsope1", False),
    ("pkg:deb/debian/sope", True),  # the source package
    ("pkg:deb/debian/libsope1-dev", False),
])
def test_a_package_url_matches_on_every_part_it_gives(purl: str, applies: bool) -> None:
    vex = statements_for(None, documents=(document(statement("CVE-2025-53603", purl)),))
    assert (vex.latest(finding("CVE-2025-53603", "libsope1")) is not None) is applies


@pytest.mark.parametrize(("product", "applies"), [
    ("pkg:oci/web", True),
    ("pkg:oci/web?repository_url=127.0.0.1%3A5000%2Fdemo%2Fweb&tag=0.9", True),  # tags are not compared
    ("pkg:oci/web@sha256%3A" + "b" * 64, True),  # nor digests
    ("pkg:oci/web?repository_url=registry.example.org/demo/web", False),
    ("pkg:oci/app", False),
    ("127.0.0.1:5000/demo/web@sha256:" + "c" * 64, True),
    ("127.0.0.1:5000/demo/web-admin:1.0", False),
    ("https://example.org/products/web", False),
])
def test_an_image_is_named_by_its_repository(product: str, applies: bool) -> None:
    vex = statements_for(PATCHED_WEB, documents=(document(statement("CVE-1", product)),))
    assert (vex.latest(finding("CVE-1", "bash")) is not None) is applies


def test_every_timestamp_offset_is_compared_as_an_instant() -> None:
    tokyo = document(statement("CVE-1", "pkg:deb/debian/bash"), timestamp="2026-02-01T08:00:00+09:00")
    utc = document(statement("CVE-1", "pkg:deb/debian/bash", status="affected"), timestamp="2026-01-31T23:30:00Z")
    speaking = statements_for(None, documents=(utc, tokyo)).latest(finding("CVE-1", "bash"))
    assert speaking.status == "affected"  # 23:30Z is after 08:00+09:00 (23:00Z), though read first
    assert speaking.timestamp == datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)
