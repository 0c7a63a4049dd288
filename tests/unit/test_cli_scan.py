"""``patchpipe scan`` (``patchpipe.cli_scan``) on an unpacked root filesystem and a real SQLite store.

The store holds the real Debian tracker file, KEV catalog and EPSS sample from shared/data/advisories,
plus one made-up record (feed ``hand``): Chromium's CVE-2024-7965 for bookworm, a real KEV entry with a
real EPSS score, with an invented Debian fix version.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.cli_scan import add_scan_command
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import ManifestError, PatchpipeError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
AT = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
BOOKWORM_OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                       'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
STATUS = """\
Package: chromium
Status: install ok installed
Architecture: amd64
Version: 97.0.4692.99-1

Package: chromium-common
Status: install ok installed
Architecture: amd64
Source: chromium
Version: 97.0.4692.99-1

Package: libsope1
Status: install ok installed
Architecture: amd64
Source: sope (5.8.0-1)
Version: 5.8.0-1+deb12u1+b1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
"""
CHROMIUM_KEV = Advisory("CVE-2024-7965", "hand", affected=(
    AffectedPackage("debian", "bookworm", "chromium", Status.FIXED, "128.0.6613.84-1~deb12u1",
                    severity=Severity.HIGH),))


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'patchpipe.db'}"
    engine = make_engine(url)
    create_schema(engine)
    for feed, source, path in [
        ("debian-tracker", "debian_tracker", DATA / "debian-security-tracker" / "debian.json"),
        ("kev", "kev", DATA / "cisa-kev" / "known_exploited_vulnerabilities.json"),
        ("epss", "epss", DATA / "epss" / "epss_scores-current.sample.csv"),
    ]:
        with path.open("rb") as payload:
            replace_feed(engine, feed, FeedOrigin(source, str(path)), SOURCES[source].parse(payload, str(path)), at=AT)
    replace_feed(engine, "hand", FeedOrigin("hand", "test_cli_scan.py"), [CHROMIUM_KEV], at=AT)
    engine.dispose()
    return url


def rootfs(tmp_path: Path, os_release: str = BOOKWORM_OS_RELEASE, status: str = STATUS) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(os_release)
    (tmp_path / "var" / "lib" / "dpkg").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "dpkg" / "status").write_text(status)
    return tmp_path


def scan(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="patchpipe")
    add_scan_command(parser.add_subparsers())
    args = parser.parse_args(["scan", *map(str, argv)])
    return args.command(args)


def test_json_lists_the_findings_most_urgent_first(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db) == 0
    document = json.loads(capsys.readouterr().out)

    assert document["os"] == {"family": "debian", "version": "12"}
    assert document["packages"] == 4
    assert [(f["id"], f["package"]) for f in document["findings"]] == [
        ("CVE-2024-7965", "chromium"), ("CVE-2024-7965", "chromium-common"),  # KEV first
        ("CVE-2022-0456", "chromium"), ("CVE-2022-0456", "chromium-common"),
        ("CVE-2025-53603", "libsope1"),
    ]
    assert document["findings"][0] == {
        "id": "CVE-2024-7965", "aliases": [], "package": "chromium", "source_package": "chromium",
        "installed": "97.0.4692.99-1", "fixed": "128.0.6613.84-1~deb12u1", "status": "fixed",
        "severity": "high", "kev": True, "epss": 0.18528,
    }
    sope = document["findings"][-1]
    assert (sope["source_package"], sope["installed"], sope["fixed"], sope["kev"], sope["epss"]) == \
        ("sope", "5.8.0-1+deb12u1+b1", "5.8.0-1+deb12u1", False, None)


def test_table_has_a_heading_and_one_line_per_finding(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db, "--format", "table") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "debian 12 (bookworm): 4 packages, 5 findings"
    assert lines[1].split() == ["ID", "PACKAGE", "INSTALLED", "FIXED", "STATUS", "SEVERITY", "KEV", "EPSS"]
    assert lines[2].split() == ["CVE-2024-7965", "chromium", "97.0.4692.99-1", "128.0.6613.84-1~deb12u1", "fixed",
                                "high", "yes", "0.18528"]
    assert len(lines) == 7


def test_a_patched_system_has_no_findings(tmp_path, db, capsys) -> None:
    status = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n"
    assert scan("--rootfs", rootfs(tmp_path, status=status), "--db", db) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_a_system_without_advisories_is_a_user_error(tmp_path, db) -> None:
    with pytest.raises(PatchpipeError, match="no advisories for fedora"):
        scan("--rootfs", rootfs(tmp_path, os_release="ID=fedora\nVERSION_ID=40\n"), "--db", db)


def test_a_directory_without_os_release_is_a_user_error(tmp_path, db) -> None:
    with pytest.raises(PatchpipeError, match="no os-release"):
        scan("--rootfs", tmp_path, "--db", db)


# --- --policy: the gate, with OpenVEX documents --------------------------------------------------

VEX_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vex"
STRICT_POLICY = """\
block_severities: [critical, high, unknown]
ignore:
  - {id: CVE-2022-0456, reason: waiting for the chromium rebuild, expires: 2020-01-31}
vex: [vex/chromium.openvex.json]
"""


def policy_file(tmp_path: Path, text: str, vex: dict[str, str] | None = None) -> Path:
    """``text`` as policy.yaml in its own directory, with the chromium VEX fixture (and ``vex`` files) under vex/."""
    directory = tmp_path / "policy"
    (directory / "vex").mkdir(parents=True)
    (directory / "vex" / "chromium.openvex.json").write_text((VEX_FIXTURES / "chromium.openvex.json").read_text())
    for name, content in (vex or {}).items():
        (directory / "vex" / name).write_text(content)
    (directory / "policy.yaml").write_text(text)
    return directory / "policy.yaml"


def test_policy_adds_the_gate_and_a_failed_gate_exits_1(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db, "--policy", policy_file(tmp_path, STRICT_POLICY)) == 1
    document = json.loads(capsys.readouterr().out)

    assert len(document["findings"]) == 5
    gate = document["gate"]
    assert gate["passed"] is False
    assert [(d["id"], d["package"], d["outcome"]) for d in gate["decisions"]] == [
        ("CVE-2024-7965", "chromium", "not_affected"), ("CVE-2024-7965", "chromium-common", "not_affected"),
        ("CVE-2022-0456", "chromium", "blocks"), ("CVE-2022-0456", "chromium-common", "blocks"),
        ("CVE-2025-53603", "libsope1", "blocks"),
    ]
    assert gate["decisions"][0]["reason"].startswith("not affected per VEX ")
    assert gate["decisions"][0]["reason"].endswith(
        "vulnerable_code_not_in_execute_path: Chromium only renders trusted HTML to PDF, with JavaScript disabled; "
        "V8 never runs.")
    assert gate["decisions"][2]["reason"] == \
        "severity unknown is blocking (fixed in 98.0.4758.80-1); its ignore entry expired on 2020-01-31"
    assert gate["expired_ignores"] == [
        {"id": "CVE-2022-0456", "reason": "waiting for the chromium rebuild", "expires": "2020-01-31"}]


def test_a_passing_gate_exits_0_and_without_vex_kev_blocks(tmp_path, db, capsys) -> None:
    passing = policy_file(tmp_path, "block_severities: [critical, high]\nvex: [vex/chromium.openvex.json]\n")
    assert scan("--rootfs", rootfs(tmp_path), "--db", db, "--policy", passing) == 0
    assert json.loads(capsys.readouterr().out)["gate"]["passed"] is True

    (tmp_path / "plain").mkdir()
    plain = tmp_path / "plain" / "policy.json"
    plain.write_text('{"block_severities": ["critical", "high"]}')  # JSON works too
    assert scan("--rootfs", tmp_path, "--db", db, "--policy", plain) == 1
    decisions = json.loads(capsys.readouterr().out)["gate"]["decisions"]
    assert decisions[0]["outcome"] == "blocks" and "KEV" in decisions[0]["reason"]


def test_without_policy_there_is_no_gate(tmp_path, db, capsys) -> None:
    assert scan("--rootfs", rootfs(tmp_path), "--db", db) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["os", "packages", "findings"]


def test_the_table_ends_with_the_gate_section(tmp_path, db, capsys) -> None:
    policy = policy_file(tmp_path, STRICT_POLICY)
    assert scan("--rootfs", rootfs(tmp_path), "--db", db, "--format", "table", "--policy", policy) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:7][-1].split()[:2] == ["CVE-2025-53603", "libsope1"]  # the findings table is unchanged
    assert lines[7:10] == ["", "gate: failed (3 blocks, 2 not_affected)", lines[9]]
    assert lines[9].split() == ["OUTCOME", "ID", "PACKAGE", "REASON"]
    assert lines[10].split()[:4] == ["not_affected", "CVE-2024-7965", "chromium", "not"]
    assert lines[12].split()[:3] == ["blocks", "CVE-2022-0456", "chromium"]
    assert lines[-1] == "expired ignore entry: CVE-2022-0456 (expired 2020-01-31): waiting for the chromium rebuild"
    assert len(lines) == 16


def test_a_policy_file_mistake_names_the_file_and_field_before_the_image_is_read(tmp_path, db) -> None:
    policy = policy_file(tmp_path, "block_severities: [critical, severe]\nfixable_onyl: true\n")
    with pytest.raises(ManifestError) as raised:
        scan("--rootfs", tmp_path / "no-such-rootfs", "--db", db, "--policy", policy)
    assert raised.value.source == str(policy)
    assert raised.value.problems == [
        "block_severities[1]: must be one of 'critical', 'high', 'medium', 'low', 'negligible', 'unknown' "
        "(got 'severe')",
        "fixable_onyl: unknown key",
    ]


def test_a_missing_or_malformed_vex_document_is_named(tmp_path, db) -> None:
    missing = policy_file(tmp_path / "a", "vex: [vex/web.json]\n")
    with pytest.raises(PatchpipeError, match=r"OpenVEX document not found: .*/a/policy/vex/web\.json"):
        scan("--rootfs", tmp_path / "no-such-rootfs", "--db", db, "--policy", missing)
    statement = {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": "pkg:deb/debian/bash"}]}
    broken = json.loads((VEX_FIXTURES / "chromium.openvex.json").read_text()) | {"statements": [statement]}
    malformed = policy_file(tmp_path / "b", "vex: [vex/web.json]\n", vex={"web.json": json.dumps(broken)})
    with pytest.raises(PatchpipeError, match=r"/b/policy/vex/web\.json: statements\[0\]\.status: must be one of"):
        scan("--rootfs", tmp_path / "no-such-rootfs", "--db", db, "--policy", malformed)


def test_the_help_documents_the_exit_statuses(capsys) -> None:
    with pytest.raises(SystemExit):
        scan("--help")
    help_text = capsys.readouterr().out
    assert "1  with --policy: the gate failed" in help_text and "--policy FILE" in help_text


# --- --trivy-report: a Trivy JSON report's findings and patch plan ------------------------------

TRIVY_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trivy"  # real reports, see its README


def trivy_report(tmp_path: Path, *vulnerabilities: dict) -> Path:
    """A hand-made SchemaVersion 2 report (not Trivy output) of a Debian 12.7 image."""
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "127.0.0.1:5000/demo/web:1.0", "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.7"}},
        "Results": [{"Target": "127.0.0.1:5000/demo/web:1.0 (debian 12.7)", "Class": "os-pkgs", "Type": "debian",
                     "Vulnerabilities": list(vulnerabilities)}],
    }))
    return path


CHROMIUM_IN_TRIVY = {
    "VulnerabilityID": "CVE-2024-7965", "PkgName": "chromium", "InstalledVersion": "97.0.4692.99-1",
    "FixedVersion": "128.0.6613.84-1~deb12u1", "Status": "fixed", "Severity": "HIGH",
    "PkgIdentifier": {"PURL": "pkg:deb/debian/chromium@97.0.4692.99-1?arch=amd64&distro=debian-12.7"},
}


def test_a_trivy_report_prints_the_same_json_as_an_image_scan(db, capsys) -> None:
    assert scan("--trivy-report", TRIVY_FIXTURES / "debian-stretch.json", "--db", db) == 0
    document = json.loads(capsys.readouterr().out)

    assert list(document) == ["os", "packages", "findings"]
    assert document["os"] == {"family": "debian", "version": "9.9"}
    assert document["packages"] == 5  # no Packages list in the report: the vulnerable packages
    assert [(f["package"], f["status"]) for f in document["findings"]] == [  # fixable first, then by id
        ("e2fslibs", "fixed"), ("e2fsprogs", "fixed"), ("libcomerr2", "fixed"), ("libss2", "fixed"),
        ("bash", "will_not_fix"),
    ]
    assert document["findings"][0] == {
        "id": "CVE-2019-5094", "aliases": ["DSA-4535-1"], "package": "e2fslibs", "source_package": "e2fslibs",
        "installed": "1.43.4-2", "fixed": "1.43.4-2+deb9u1", "status": "fixed", "severity": "medium",
        "kev": False, "epss": None,
    }


def test_a_trivy_report_as_a_table(db, capsys) -> None:
    assert scan("--trivy-report", TRIVY_FIXTURES / "debian-buster.json", "--db", db, "--format", "table") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "debian 10.1 (buster): 2 packages, 2 findings"
    assert lines[2].split() == ["CVE-2019-18224", "libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1", "fixed", "critical",
                                "-", "-"]
    assert lines[3].split() == ["CVE-2019-18276", "bash", "5.0-4", "-", "affected", "low", "-", "-"]
    assert len(lines) == 4


def test_kev_and_epss_come_from_the_store(tmp_path, db, capsys) -> None:
    assert scan("--trivy-report", trivy_report(tmp_path, CHROMIUM_IN_TRIVY), "--db", db) == 0
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["id"], finding["kev"], finding["epss"]) == ("CVE-2024-7965", True, 0.18528)


def test_format_plan_prints_the_copacetic_style_plan(capsys) -> None:
    assert scan("--trivy-report", TRIVY_FIXTURES / "alpine-310.json", "--format", "plan") == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["image"], plan["source_digest"], plan["package_manager"], plan["release"]) == \
        ("testdata/fixtures/images/alpine-310.tar.gz", "", "apk", "3.10.2")
    assert [(u["name"], u["installed"], u["target"]) for u in plan["upgrades"]] == [
        ("libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2"), ("libssl1.1", "1.1.1c-r0", "1.1.1d-r2")]


def test_a_trivy_report_goes_through_the_policy_gate_with_its_vex(tmp_path, db, capsys) -> None:
    strict = policy_file(tmp_path / "strict", "block_severities: [critical]\n")
    assert scan("--trivy-report", TRIVY_FIXTURES / "debian-buster.json", "--db", db, "--policy", strict) == 1
    decisions = json.loads(capsys.readouterr().out)["gate"]["decisions"]
    assert [(d["id"], d["outcome"]) for d in decisions] == [("CVE-2019-18224", "blocks"), ("CVE-2019-18276", "allowed")]

    statement = {"vulnerability": {"name": "CVE-2024-7965"}, "products": [{"@id": "pkg:deb/debian/chromium"}],
                 "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}
    document = json.loads((VEX_FIXTURES / "chromium.openvex.json").read_text()) | {"statements": [statement]}
    vexed = policy_file(tmp_path / "vexed", "block_severities: [high]\nvex: [vex/any.json]\n",
                        vex={"any.json": json.dumps(document)})
    assert scan("--trivy-report", trivy_report(tmp_path, CHROMIUM_IN_TRIVY), "--db", db, "--policy", vexed) == 0
    (decision,) = json.loads(capsys.readouterr().out)["gate"]["decisions"]
    assert decision["outcome"] == "not_affected"  # the KEV finding is cleared by the package's VEX statement


@pytest.mark.parametrize(("argv", "message"), [
    (["--format", "plan", "--rootfs", "/nonexistent"], "--format plan prints a Trivy report's patch plan; it needs "
                                                       "--trivy-report FILE"),
    (["--trivy-report", TRIVY_FIXTURES / "alpine-310.json", "--local"], "--local applies to reading an IMAGE"),
    (["--trivy-report", TRIVY_FIXTURES / "alpine-310.json", "--platform", "linux/arm64"], "--platform applies to"),
    (["--trivy-report", TRIVY_FIXTURES / "alpine-310.json", "--format", "plan", "--policy", "p.yaml"],
     "--policy decides findings; it does not apply to --format plan"),
])
def test_options_that_do_not_fit_a_trivy_report_are_user_errors(argv, message) -> None:
    with pytest.raises(PatchpipeError, match=message):
        scan(*argv)


def test_a_trivy_report_excludes_an_image_or_rootfs(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        scan("--trivy-report", TRIVY_FIXTURES / "alpine-310.json", "--rootfs", "/srv/rootfs")
    assert exited.value.code == 2
    assert "argument --rootfs: not allowed with argument --trivy-report" in capsys.readouterr().err


def test_a_malformed_trivy_report_names_the_file_and_path(tmp_path, db) -> None:
    path = trivy_report(tmp_path, {"VulnerabilityID": "CVE-2099-0001", "PkgName": "bash"})
    with pytest.raises(PatchpipeError,
                       match=rf"^{path}: Results\[0\]\.Vulnerabilities\[0\]: missing InstalledVersion$"):
        scan("--trivy-report", path, "--db", db)
