"""The dashboard on the lab's real ledger: one `patch_lifecycle` run on a fresh lab, then a real
`airflow api-server` on that run's AIRFLOW_HOME and ledger, read in headless Chromium (as in
tests/browser), through the JSON API and as a Prometheus scrape.

Every expected value is read from the ledger the run wrote (``Ledger.run_summary``,
``Ledger.stage_results``, ``Ledger.findings_snapshot``), never from the dashboard's own code.

The advisory store of a fresh run holds only the security archive's index, so every image would
have no findings at all. Three hand-written advisories (feed ``hand``, made up for this test) give
the lab's images real findings to show, built from the versions installed in demo-web's production
image:

- CVE-2099-0101 (high): ``perl`` and ``xz-utils`` fixed just above the installed versions, so the
  security suite's versions the patch installs fix it: in production's snapshot, gone from the
  candidate's, listed as fixed by the promoted patch.
- CVE-2099-0102 (medium): ``coreutils`` fixed only in a version no archive has (epoch 99): open and
  fixable in production before and after, like a fix shipped only in a point release.
- CVE-2099-0103 (low): ``dpkg`` with no fix: open in both, never fixable.

Screenshots go to tests/artifacts/dashboard-lab/ (each path is printed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from browser.chromium import WAIT, cell_texts, chrome, save_screenshot, severity_chips, sign_in  # noqa: F401
from patchpipe import db
from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.dashboard.render import short_digest, when
from patchpipe.fleet import load_fleet
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, RunStatus
from patchpipe.ledger.snapshots import FindingsSnapshotRecord
from patchpipe.ledger.store import ImageRecord, Ledger, RunRecord
from patchpipe.packages.inventory import inventory_registry_image
from support.api_server import ApiServer, start_api_server
from support.dag_runs import REPO, AirflowRunner, make_runner, reset_lab

FLEET_FILE = REPO / "include" / "fleet.yaml"
FLEET = load_fleet(FLEET_FILE)
DEPLOYED = {image.name for image in FLEET.images}  # the bases are patched but deployed nowhere
ARTIFACTS = REPO / "tests" / "artifacts" / "dashboard-lab"  # ignored by git
SCRAPE_TOKEN = "scrape-token-for-the-lab-test"
DEMO_WEB = "demo-web"

FIXED_BY_PATCH, FIXED_NOWHERE, NO_FIX = "CVE-2099-0101", "CVE-2099-0102", "CVE-2099-0103"
PUBLISHED = datetime(2026, 11, 1, tzinfo=timezone.utc)


def hand_advisories(installed: dict[str, str]) -> list[Advisory]:
    """Hand-written advisories for the lab's bookworm images (see the module's doc); ``installed``
    maps source packages to the source versions installed in demo-web's production image."""

    def advisory(vuln_id: str, severity: Severity, affected: list[AffectedPackage]) -> Advisory:
        return Advisory(vuln_id, "hand", severity=severity, summary=f"{vuln_id}: made up for {__name__}",
                        published=PUBLISHED, affected=tuple(affected))

    return [
        advisory(FIXED_BY_PATCH, Severity.HIGH, [
            AffectedPackage("debian", "bookworm", source, Status.FIXED, installed[source] + "+1",
                            severity=Severity.HIGH)
            for source in ("perl", "xz-utils")]),
        advisory(FIXED_NOWHERE, Severity.MEDIUM, [
            AffectedPackage("debian", "bookworm", "coreutils", Status.FIXED, "99:0", severity=Severity.MEDIUM)]),
        advisory(NO_FIX, Severity.LOW, [
            AffectedPackage("debian", "bookworm", "dpkg", Status.AFFECTED, severity=Severity.LOW)]),
    ]


@dataclass
class LabDashboard:
    runner: AirflowRunner
    ledger: Ledger
    run: RunRecord
    records: dict[str, ImageRecord]
    server: ApiServer

    def held(self, image: str) -> FindingsSnapshotRecord:
        """What production holds after the run: the promoted candidate's snapshot, from the ledger."""
        snapshot = self.ledger.findings_snapshot(self.run.run_id, image, "candidate")
        assert snapshot is not None, f"{image}: the run recorded no candidate snapshot"
        return snapshot

    def counts(self, image: str) -> dict[str, int]:
        return {severity.value: count for severity, count in self.held(image).counts_by_severity().items()}

    def fixable(self, image: str) -> int:
        return sum(f.status is Status.FIXED for f in self.held(image).findings)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reset_lab()
    _, found = inventory_registry_image(RegistryClient("127.0.0.1:5000"), FLEET.image(DEMO_WEB).ref)
    installed = {p.source_name: p.source_version for p in found.packages}
    missing = {"perl", "xz-utils", "coreutils", "dpkg"} - set(installed)
    assert not missing, f"demo-web's production image lacks the source packages {sorted(missing)}"

    runner = make_runner(tmp_path_factory.mktemp("airflow"), FLEET_FILE)
    engine = db.make_engine(runner.env["PATCHPIPE_DB"])
    db.create_schema(engine)
    replace_feed(engine, "hand", FeedOrigin("hand", __file__), hand_advisories(installed),
                 at=datetime.now(timezone.utc))
    engine.dispose()

    result = runner.run()
    assert result.returncode == 0, result.log.read_text()[-5000:]
    ledger = runner.ledger()
    run = ledger.latest_run()
    records = {r.image: r for r in ledger.run_summary(run.run_id)}

    # A real api-server on the runner's own home and ledger, with the scrape token Prometheus would send.
    server = start_api_server(runner.home, runner.env["PATCHPIPE_DB"], name="dashboard-api-server",
                              scrape_token=SCRAPE_TOKEN)
    yield LabDashboard(runner, ledger, run, records, server)
    server.stop()


def screenshot(driver, name: str, capsys) -> None:
    path = save_screenshot(driver, ARTIFACTS, name)
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def test_the_run_promoted_every_image_and_recorded_its_findings(lab):
    assert lab.run.status is RunStatus.SUCCESS
    assert set(lab.records) == {"debian-bookworm", "demo-web", "vendor-app"}
    for image, record in lab.records.items():
        assert record.status is ImageStatus.PROMOTED, (image, record.failure_reason)
        assert record.after_digest and record.after_digest != record.before_digest, image
        production = lab.ledger.findings_snapshot(lab.run.run_id, image)
        assert production is not None and production.digest == record.before_digest, image
        # The hand-written advisories reached the snapshots as designed (see the module's doc).
        before = {(f.id, f.package) for f in production.findings}
        after = {(f.id, f.package) for f in lab.held(image).findings}
        assert {(FIXED_BY_PATCH, "perl-base"), (FIXED_BY_PATCH, "liblzma5")} <= before, (image, before)
        assert not any(vuln_id == FIXED_BY_PATCH for vuln_id, _ in after), (image, after)
        assert {(FIXED_NOWHERE, "coreutils"), (NO_FIX, "dpkg")} <= after, (image, after)


def test_the_fleet_page_shows_the_run(lab, chrome, capsys):
    sign_in(chrome, lab.server, "/patchpipe/", absent=DEMO_WEB)
    WebDriverWait(chrome, WAIT).until(EC.presence_of_element_located((By.ID, "fleet")))

    for image, record in lab.records.items():
        image_cell, production, staging, findings, fixable, last_patched, last_result = cell_texts(chrome, image)
        assert image_cell.startswith(image)
        assert production == short_digest(record.after_digest), image
        assert staging == short_digest(record.after_digest if image in DEPLOYED else None), image
        assert severity_chips(chrome, image) == lab.counts(image), image
        assert fixable.startswith(str(lab.fixable(image))), (image, fixable)
        assert last_patched == when(record.updated_at), image
        assert last_result.startswith("promoted"), image
        assert lab.run.run_id in last_result, image
        full = chrome.find_element(By.CSS_SELECTOR, f'#fleet tr[data-image="{image}"] td:nth-child(2) .digest')
        assert full.get_attribute("title") == record.after_digest, image
    screenshot(chrome, "fleet", capsys)


def test_the_demo_web_page_shows_its_run(lab, chrome, capsys):
    record = lab.records[DEMO_WEB]
    sign_in(chrome, lab.server, f"/patchpipe/images/{DEMO_WEB}", absent=DEMO_WEB)
    wait = WebDriverWait(chrome, WAIT)
    wait.until(EC.text_to_be_present_in_element((By.ID, "image-name"), DEMO_WEB))

    production = chrome.find_element(By.CSS_SELECTOR, "dl.facts dd .digest")
    assert production.get_attribute("title") == record.after_digest

    history = chrome.find_element(By.ID, "history").text
    assert lab.run.run_id in history and "promoted" in history
    assert record.packages, "the run recorded no packages for demo-web"
    for change in record.packages:
        assert f"{change.name} {change.from_version or '(new)'} → {change.to_version}" in history, change

    scan = {s.stage: s for s in lab.ledger.stage_results(lab.run.run_id, DEMO_WEB)}["scan"].detail
    last_diff = chrome.find_element(By.ID, "last-diff").text
    for entry in scan["fixed"] + scan["still_open"] + scan["introduced"]:
        vuln_id, _, package = entry.partition(" (")
        assert f"{vuln_id} {package.rstrip(')')}" in last_diff, entry
    assert f"{FIXED_BY_PATCH} perl-base high" in last_diff
    fixed = chrome.find_element(By.ID, "fixed").text
    assert f"{FIXED_BY_PATCH} liblzma5 high" in fixed and lab.run.run_id in fixed

    held = lab.held(DEMO_WEB)
    rows = chrome.find_elements(By.CSS_SELECTOR, "#open-findings tbody tr")
    assert sorted(row.get_attribute("data-finding") for row in rows) == sorted(f.id for f in held.findings)
    open_findings = chrome.find_element(By.ID, "open-findings").text
    assert f"{FIXED_NOWHERE} coreutils medium {when(held.recorded_at)}" in open_findings  # fixable since the scan
    assert f"{NO_FIX} dpkg low no fix" in open_findings
    screenshot(chrome, "image-demo-web", capsys)


def test_the_json_api_lists_the_ledgers_findings(lab):
    token = lab.server.login()
    fleet = requests.get(lab.server.url + "/patchpipe/api/fleet", headers={"Authorization": f"Bearer {token}"},
                         timeout=30).json()
    rows = {row["image"]: row for row in fleet["images"]}
    assert set(rows) == set(lab.records)
    for image, record in lab.records.items():
        row, held = rows[image], lab.held(image)
        assert row["production_digest"] == record.after_digest
        assert row["last_result"]["status"] == "promoted" and row["last_result"]["run_id"] == lab.run.run_id
        assert row["last_result"]["packages"] == [change.to_json() for change in record.packages]
        found = row["open_findings"]
        assert found["by_severity"] == lab.counts(image)
        assert found["run_id"] == lab.run.run_id and found["as_of"] == held.recorded_at.isoformat()
        assert sorted((f["id"], f["package"], f["severity"]) for f in found["findings"]) == sorted(
            (f.id, f.package, f.severity.value) for f in held.findings)
        assert found["unpatched_fixable"] == lab.fixable(image)
        assert found["oldest_unpatched_fixable_since"] == (held.recorded_at.isoformat() if lab.fixable(image)
                                                           else None)


def test_the_metrics_equal_the_ledger(lab):
    before = time.time()
    answer = requests.get(lab.server.url + "/patchpipe/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
                          timeout=30)
    after = time.time()
    assert answer.status_code == 200, answer.text[:500]
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(answer.text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert value("patchpipe_runs", status="success") == 1
    assert value("patchpipe_runs", status="failed") == 0 and value("patchpipe_runs", status="running") == 0
    for image, record in lab.records.items():
        for status in ImageStatus:
            assert value("patchpipe_image_results", image=image, status=status.value) == (status is record.status)
            assert value("patchpipe_image_last_result", image=image, status=status.value) == (status is record.status)
        assert value("patchpipe_last_patched_timestamp_seconds", image=image) == record.updated_at.timestamp()
        for environment in ("staging", "production"):
            assert value("patchpipe_rollbacks_total", image=image, environment=environment) == 0
            assert value("patchpipe_rollback_failures_total", image=image, environment=environment) == 0

        held = lab.held(image)
        for severity, count in lab.counts(image).items():
            assert value("patchpipe_open_findings", image=image, severity=severity) == count, (image, severity)
        assert value("patchpipe_unpatched_fixable_findings", image=image) == lab.fixable(image)
        assert value("patchpipe_findings_scanned_timestamp_seconds", image=image) == held.recorded_at.timestamp()
        age = value("patchpipe_oldest_unpatched_fixable_finding_age_seconds", image=image)
        if lab.fixable(image):  # every fixable finding of a just-promoted candidate waits since its scan
            since = held.recorded_at.timestamp()
            assert before - since - 1 <= age <= after - since + 1, (image, age)
        else:
            assert age == 0, image
