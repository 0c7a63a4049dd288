"""Reading Trivy JSON reports (``patchpipe.scan.trivy``): real reports from Trivy's own test data
(tests/fixtures/trivy, see its README), plus small hand-made documents (built by ``report`` below)
for the shapes those real reports do not have: SrcName, Packages lists, lang-pkgs, odd statuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchpipe.advisories.records import Severity, Status
from patchpipe.errors import PatchpipeError
from patchpipe.plan import PackageUpgrade
from patchpipe.scan.trivy import package_manager, read_trivy_report, trivy_patch_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trivy"
BUSTER = FIXTURES / "debian-buster.json"
STRETCH = FIXTURES / "debian-stretch.json"
ALPINE = FIXTURES / "alpine-310.json"
DIGEST = "sha256:" + "b" * 64


def vulnerability(**fields) -> dict:
    """A hand-made vulnerability entry (not Trivy output): the keys Trivy always writes, then ``fields``."""
    return {"VulnerabilityID": "CVE-2099-0001", "PkgName": "libfoo1", "InstalledVersion": "1.0-1",
            "Severity": "HIGH", **fields}


def report(*results: dict, os: dict | None = None, **top) -> dict:
    """A hand-made SchemaVersion 2 document (not Trivy output)."""
    return {"SchemaVersion": 2, "ArtifactName": "registry.example/app:1", "ArtifactType": "container_image",
            "Metadata": {"OS": os or {"Family": "debian", "Name": "12.7"}}, "Results": list(results), **top}


def os_result(*vulnerabilities: dict, **fields) -> dict:
    return {"Target": "app (debian 12.7)", "Class": "os-pkgs", "Type": "debian",
            "Vulnerabilities": list(vulnerabilities), **fields}


# --- the real reports ------------------------------------------------------------------------------


def test_a_debian_report_gives_its_os_artifact_and_findings() -> None:
    found = read_trivy_report(BUSTER)

    assert (found.os.id, found.os.version_id, found.os.version_codename) == ("debian", "10.1", "buster")
    assert found.artifact == "testdata/fixtures/images/debian-buster.tar.gz"
    assert found.source == str(BUSTER)
    assert found.language_findings == ()
    assert [f.to_dict() for f in found.findings] == [
        {"id": "CVE-2019-18276", "aliases": [], "package": "bash", "source_package": "bash",
         "installed": "5.0-4", "fixed": None, "status": "affected", "severity": "low", "kev": False, "epss": None},
        {"id": "CVE-2019-18224", "aliases": ["DSA-4613-1"], "package": "libidn2-0", "source_package": "libidn2-0",
         "installed": "2.0.5-1", "fixed": "2.0.5-1+deb10u1", "status": "fixed", "severity": "critical",
         "kev": False, "epss": None},
    ]
    assert {f.feeds for f in found.findings} == {("trivy",)}


def test_without_a_packages_list_the_count_is_the_distinct_vulnerable_packages() -> None:
    buster, stretch = read_trivy_report(BUSTER), read_trivy_report(STRETCH)
    assert (buster.package_count, buster.packages_listed) == (2, False)
    assert (stretch.package_count, stretch.packages_listed) == (5, False)  # bash and four e2fsprogs binaries


def test_end_of_life_is_reported_as_will_not_fix() -> None:
    bash = next(f for f in read_trivy_report(STRETCH).findings if f.package == "bash")
    assert (bash.id, bash.status, bash.fixed, bash.fixable) == ("CVE-2019-18276", Status.WILL_NOT_FIX, None, False)


def test_an_alpine_report_lists_each_cve_of_each_package() -> None:
    found = read_trivy_report(ALPINE)
    assert (found.os.id, found.os.version_id, found.os.version_codename) == ("alpine", "3.10.2", None)
    assert [(f.package, f.id, f.fixed) for f in found.findings] == [
        ("libcrypto1.1", "CVE-2019-1549", "1.1.1d-r0"),
        ("libcrypto1.1", "CVE-2019-1551", "1.1.1d-r2"),
        ("libssl1.1", "CVE-2019-1549", "1.1.1d-r0"),
        ("libssl1.1", "CVE-2019-1551", "1.1.1d-r2"),
    ]
    assert {f.severity for f in found.findings} == {Severity.MEDIUM}


def test_the_report_reads_the_same_from_a_path_its_text_or_its_document() -> None:
    text = ALPINE.read_text()
    from_path = read_trivy_report(ALPINE)
    assert read_trivy_report(str(ALPINE)).findings == from_path.findings
    assert read_trivy_report(text).findings == from_path.findings
    assert read_trivy_report(text.encode()).findings == from_path.findings
    assert read_trivy_report(json.loads(text), name="x").findings == from_path.findings


# --- the patch plan --------------------------------------------------------------------------------


def test_the_plan_moves_each_package_to_its_highest_fixed_version() -> None:
    plan = trivy_patch_plan(read_trivy_report(ALPINE), "alpine-app", "registry.example/alpine:3.10", DIGEST)

    assert (plan.image, plan.source_ref, plan.source_digest) == ("alpine-app", "registry.example/alpine:3.10", DIGEST)
    assert (plan.package_manager, plan.release) == ("apk", "3.10.2")
    assert plan.upgrades == [
        PackageUpgrade("libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2", "libcrypto1.1", ["CVE-2019-1549", "CVE-2019-1551"]),
        PackageUpgrade("libssl1.1", "1.1.1c-r0", "1.1.1d-r2", "libssl1.1", ["CVE-2019-1549", "CVE-2019-1551"]),
    ]


def test_a_debian_plan_names_the_release_by_codename_and_skips_unfixed_packages() -> None:
    plan = trivy_patch_plan(read_trivy_report(STRETCH), "legacy", "registry.example/legacy:9", DIGEST)
    assert (plan.package_manager, plan.release) == ("dpkg", "stretch")
    assert plan.targets() == {name: "1.43.4-2+deb9u1" for name in ("e2fslibs", "e2fsprogs", "libcomerr2", "libss2")}
    assert "bash" not in plan.targets()  # end_of_life: no fixed version


def test_the_highest_fixed_version_follows_the_distros_rules_not_string_order() -> None:
    # As strings "1.0-1+deb12u9" > "1.0-1+deb12u10"; dpkg says u10 is newer. Hand-made entries.
    found = read_trivy_report(report(os_result(
        vulnerability(VulnerabilityID="CVE-2099-0001", FixedVersion="1.0-1+deb12u10"),
        vulnerability(VulnerabilityID="CVE-2099-0002", FixedVersion="1.0-1+deb12u9"),
        vulnerability(VulnerabilityID="CVE-2099-0003", Status="affected"),
    )))
    plan = trivy_patch_plan(found, "app", "registry.example/app:1", DIGEST)
    assert plan.upgrades == [PackageUpgrade("libfoo1", "1.0-1", "1.0-1+deb12u10", "libfoo1",
                                            ["CVE-2099-0001", "CVE-2099-0002"])]
    assert plan.release == "bookworm"


def test_language_packages_are_findings_but_never_planned() -> None:
    found = read_trivy_report(report(
        os_result(vulnerability(FixedVersion="1.0-2")),
        {"Target": "app/package-lock.json", "Class": "lang-pkgs", "Type": "npm", "Vulnerabilities": [
            vulnerability(VulnerabilityID="CVE-2021-3807", PkgName="ansi-regex", InstalledVersion="3.0.0",
                          FixedVersion="3.0.1", Status="fixed")]},
        {"Target": "Dockerfile", "Class": "config", "Misconfigurations": [{"ID": "DS002"}]},
    ))
    assert [f.package for f in found.os_findings] == ["libfoo1"]
    assert [(f.package, f.status) for f in found.language_findings] == [("ansi-regex", Status.FIXED)]
    assert [f.package for f in found.findings] == ["libfoo1", "ansi-regex"]
    assert found.package_count == 1  # OS packages only
    assert trivy_patch_plan(found, "app", "ref", DIGEST).targets() == {"libfoo1": "1.0-2"}


def test_the_package_manager_follows_the_os_family() -> None:
    assert [package_manager(f) for f in ("debian", "ubuntu", "alpine", "redhat", "rocky", "alma", "centos",
                                         "amazon")] == ["dpkg", "dpkg", "apk", "rpm", "rpm", "rpm", "rpm", "rpm"]
    found = read_trivy_report(report(os_result(vulnerability(FixedVersion="1.0-2")), os={"Family": "gentoo"}))
    with pytest.raises(PatchpipeError, match="no package manager known for Trivy OS family 'gentoo'"):
        trivy_patch_plan(found, "app", "ref", DIGEST)


def test_an_rpm_plan_compares_with_rpm_rules() -> None:
    found = read_trivy_report(report(os_result(
        vulnerability(PkgName="openssl-libs", InstalledVersion="1:3.0.7-24.el9", FixedVersion="1:3.0.7-27.el9"),
        vulnerability(VulnerabilityID="CVE-2099-0002", PkgName="openssl-libs", InstalledVersion="1:3.0.7-24.el9",
                      FixedVersion="1:3.0.7-25.el9_3"),
    ), os={"Family": "rocky", "Name": "9.3"}))
    plan = trivy_patch_plan(found, "app", "ref", DIGEST)
    assert (plan.package_manager, plan.release, plan.targets()) == ("rpm", "9.3", {"openssl-libs": "1:3.0.7-27.el9"})


# --- statuses, severities, ids ---------------------------------------------------------------------


@pytest.mark.parametrize(("trivy_status", "status"), [
    ("affected", Status.AFFECTED),
    ("fix_deferred", Status.AFFECTED),
    ("will_not_fix", Status.WILL_NOT_FIX),
    ("end_of_life", Status.WILL_NOT_FIX),
    (None, Status.AFFECTED),  # reports from before Trivy had statuses
])
def test_statuses_without_a_fix_map_to_patchpipes(trivy_status, status) -> None:
    entry = vulnerability() if trivy_status is None else vulnerability(Status=trivy_status)
    (finding,) = read_trivy_report(report(os_result(entry))).findings
    assert (finding.status, finding.fixed) == (status, None)


def test_a_fixed_version_makes_the_finding_fixed() -> None:
    (finding,) = read_trivy_report(report(os_result(vulnerability(Status="fixed", FixedVersion="1.0-2")))).findings
    assert (finding.status, finding.fixed, finding.fixable) == (Status.FIXED, "1.0-2", True)


def test_an_empty_fixed_version_is_no_fix() -> None:
    (finding,) = read_trivy_report(report(os_result(vulnerability(Status="affected", FixedVersion="")))).findings
    assert (finding.status, finding.fixed) == (Status.AFFECTED, None)


@pytest.mark.parametrize("trivy_status", ["not_affected", "under_investigation", "unknown"])
def test_statuses_that_say_nothing_are_not_reported(trivy_status) -> None:
    found = read_trivy_report(report(os_result(vulnerability(Status=trivy_status), vulnerability(
        VulnerabilityID="CVE-2099-0002", PkgName="libbar1"))))
    assert [f.package for f in found.findings] == ["libbar1"]
    assert found.package_count == 1


@pytest.mark.parametrize(("trivy_severity", "severity"), [
    ("CRITICAL", Severity.CRITICAL), ("HIGH", Severity.HIGH), ("MEDIUM", Severity.MEDIUM), ("LOW", Severity.LOW),
    ("UNKNOWN", Severity.UNKNOWN), (None, Severity.UNKNOWN),
])
def test_severities_map_to_patchpipes(trivy_severity, severity) -> None:
    entry = vulnerability()
    if trivy_severity is None:
        del entry["Severity"]
    else:
        entry["Severity"] = trivy_severity
    (finding,) = read_trivy_report(report(os_result(entry))).findings
    assert finding.severity is severity


def test_src_name_is_the_source_package_and_vendor_ids_are_aliases() -> None:
    (finding,) = read_trivy_report(report(os_result(vulnerability(
        VulnerabilityID="CVE-2024-5535", PkgName="libssl3", SrcName="openssl",
        VendorIDs=["DSA-5764-1", "CVE-2024-5535"], FixedVersion="3.0.14-1~deb12u1")))).findings
    assert (finding.package, finding.source_package) == ("libssl3", "openssl")
    assert finding.aliases == ("DSA-5764-1",)
    assert finding.ids == ("CVE-2024-5535", "DSA-5764-1")


def test_an_entry_listed_twice_for_one_installed_package_is_one_finding() -> None:
    twice = vulnerability(FixedVersion="1.0-2")
    found = read_trivy_report(report(os_result(twice, dict(twice), vulnerability(VulnerabilityID="CVE-2099-0002"))))
    assert [(f.id, f.package) for f in found.findings] == [("CVE-2099-0001", "libfoo1"), ("CVE-2099-0002", "libfoo1")]


def test_a_packages_list_gives_the_package_count() -> None:
    packages = [{"Name": name, "Version": "1"} for name in ("libfoo1", "libbar1", "bash")]
    found = read_trivy_report(report(os_result(vulnerability(), Packages=packages)))
    assert (found.package_count, found.packages_listed) == (3, True)


def test_a_repo_digest_is_the_images_manifest_digest() -> None:
    document = report(os_result())
    document["Metadata"]["RepoDigests"] = [f"registry.example/app@{DIGEST}"]
    assert read_trivy_report(document).repo_digest == DIGEST
    assert read_trivy_report(BUSTER).repo_digest is None  # scanned from a tar file


def test_a_report_without_results_has_no_findings() -> None:
    document = report()
    del document["Results"]  # what Trivy writes for an image without packages it knows
    found = read_trivy_report(document)
    assert (found.findings, found.package_count) == ([], 0)


# --- malformed input -------------------------------------------------------------------------------


def broken(path: str, value) -> dict:
    """The real buster report with the value at ``path`` (keys and indexes, '/'-separated) replaced;
    ``value`` None deletes it."""
    document = json.loads(BUSTER.read_text())
    *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
    node = document
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return document


@pytest.mark.parametrize(("path", "value", "message"), [
    ("Results/0/Vulnerabilities/1/InstalledVersion", None,
     r"^report\.json: Results\[0\]\.Vulnerabilities\[1\]: missing InstalledVersion$"),
    ("Results/0/Vulnerabilities/0/PkgName", None,
     r"^report\.json: Results\[0\]\.Vulnerabilities\[0\]: missing PkgName$"),
    ("Results/0/Vulnerabilities/0/VulnerabilityID", 7,
     r"^report\.json: Results\[0\]\.Vulnerabilities\[0\]\.VulnerabilityID: expected a string, found int$"),
    ("Results/0/Vulnerabilities/0/Status", "patched",
     r"^report\.json: Results\[0\]\.Vulnerabilities\[0\]\.Status: unknown status 'patched'"),
    ("Results/0/Vulnerabilities/1/Severity", "SEVERE",
     r"^report\.json: Results\[0\]\.Vulnerabilities\[1\]\.Severity: unknown severity 'SEVERE'"),
    ("Results/0/Vulnerabilities/1/FixedVersion", None,
     r"^report\.json: Results\[0\]\.Vulnerabilities\[1\]: Status fixed without a FixedVersion$"),
    ("Results/0/Vulnerabilities/1/VendorIDs", [""],
     r"^report\.json: Results\[0\]\.Vulnerabilities\[1\]\.VendorIDs\[0\]: expected a non-empty string$"),
    ("Results/0/Vulnerabilities/1", "CVE-2019-18224",
     r"^report\.json: Results\[0\]\.Vulnerabilities\[1\]: not an object$"),
    ("Results/0/Vulnerabilities", {}, r"^report\.json: Results\[0\]\.Vulnerabilities: expected a list, found dict$"),
    ("Results/0/Class", None, r"^report\.json: Results\[0\]: missing Class$"),
    ("Results", "none", r"^report\.json: Results: expected a list, found str$"),
    ("Metadata/OS/Family", None, r"^report\.json: Metadata\.OS: missing Family$"),
    ("Metadata/OS", None, r"^report\.json: Metadata\.OS: missing: Trivy found no operating system"),
])
def test_a_malformed_report_names_the_file_and_the_json_path(path, value, message) -> None:
    with pytest.raises(PatchpipeError, match=message):
        read_trivy_report(broken(path, value), name="report.json")


def test_another_schema_version_is_rejected_clearly() -> None:
    with pytest.raises(PatchpipeError, match=r"^report\.json: SchemaVersion 3 is not supported; patchpipe reads "
                                             r"Trivy's SchemaVersion 2 reports$"):
        read_trivy_report(broken("SchemaVersion", 3), name="report.json")
    with pytest.raises(PatchpipeError, match=r"report\.json: no SchemaVersion: not a Trivy JSON report"):
        read_trivy_report(broken("SchemaVersion", None), name="report.json")


def test_the_old_list_layout_is_rejected_with_what_to_do() -> None:
    with pytest.raises(PatchpipeError, match=r"old report layout .* produce the report with Trivy 0\.20 or later"):
        read_trivy_report('[{"Target": "x", "Vulnerabilities": []}]', name="old.json")


def test_a_file_that_is_not_json_names_the_file(tmp_path) -> None:
    path = tmp_path / "report.json"
    path.write_text("Total: 3 (HIGH: 2, CRITICAL: 1)\n")  # Trivy's table output, saved by mistake
    with pytest.raises(PatchpipeError, match=rf"^{path}: not a Trivy JSON report \(invalid JSON: "):
        read_trivy_report(path)


def test_a_missing_file_names_the_file(tmp_path) -> None:
    with pytest.raises(PatchpipeError, match=rf"^{tmp_path}/absent\.json: cannot read the Trivy report: "):
        read_trivy_report(tmp_path / "absent.json")


def test_an_invalid_fixed_version_in_the_plan_names_the_report_and_package() -> None:
    document = report(os_result(vulnerability(FixedVersion="not a version"),
                                vulnerability(VulnerabilityID="CVE-2099-0002", FixedVersion="1.0-2")))
    with pytest.raises(PatchpipeError,
                       match=r"^r\.json: package libfoo1: 'not a version' is not a valid Debian version"):
        trivy_patch_plan(read_trivy_report(document, name="r.json"), "app", "ref", DIGEST)


def test_one_package_at_two_installed_versions_cannot_be_planned() -> None:
    found = read_trivy_report(report(os_result(
        vulnerability(FixedVersion="1.0-3"),
        vulnerability(VulnerabilityID="CVE-2099-0002", InstalledVersion="1.0-2", FixedVersion="1.0-3"),
    )), name="r.json")
    with pytest.raises(PatchpipeError, match=r"^r\.json: package libfoo1 is reported at several installed versions "
                                             r"\(1\.0-1, 1\.0-2\)"):
        trivy_patch_plan(found, "app", "ref", DIGEST)
