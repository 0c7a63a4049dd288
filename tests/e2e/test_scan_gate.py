"""A candidate that introduces a blocking finding is stopped at the scan stage: never pushed, never deployed.

The advisory is made up for the test (feed ``hand``): it says the security versions of the vendor
image's pending updates (perl, xz-utils: the lab base's known pending security updates) are
vulnerable, as a regression would be. The current versions lie below its range, so only the
candidate has the finding: it is *introduced*, and critical blocks under the vendor image's policy.
"""

from __future__ import annotations

from datetime import datetime, timezone

import yaml

from support.dag_runs import REPO, make_runner, reset_lab
from patchpipe import db
from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status, VersionEvent
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import ImageStatus, StageOutcome
from patchpipe.packages.inventory import inventory_registry_image

VENDOR = "127.0.0.1:5000/vendor/app:2.4"
REGRESSED = ("perl", "xz-utils")


def regression(installed: dict[str, str]) -> Advisory:
    """Every version above the installed one is affected, fixed only in a version that does not exist."""
    return Advisory("HAND-REGRESSION-1", "hand", aliases=("CVE-2099-4242",), severity=Severity.CRITICAL, affected=tuple(
        AffectedPackage("debian", "bookworm", source, Status.FIXED, None,
                        (VersionEvent("introduced", installed[source] + "+1"), VersionEvent("fixed", "99:0")))
        for source in REGRESSED))


def vendor_only_fleet(tmp_path):
    manifest = yaml.safe_load((REPO / "include" / "fleet.yaml").read_text())
    manifest["images"] = [i for i in manifest["images"] if i["name"] == "vendor-app"]
    manifest["bases"] = []
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_a_candidate_that_introduces_a_blocking_finding_is_not_pushed(tmp_path, docker_api):
    reset_lab()
    registry = RegistryClient("127.0.0.1:5000")
    tags_before = sorted(registry.list_tags("vendor/app"))
    production_before = registry.resolve(VENDOR)
    _, found = inventory_registry_image(registry, VENDOR)
    installed = {p.source_name: p.source_version for p in found.packages}
    assert set(REGRESSED) <= set(installed)

    runner = make_runner(tmp_path / "airflow", vendor_only_fleet(tmp_path))
    engine = db.make_engine(runner.env["PATCHPIPE_DB"])
    db.create_schema(engine)
    replace_feed(engine, "hand", FeedOrigin("hand", __file__), [regression(installed)],
                 at=datetime.now(timezone.utc))
    result = runner.run()

    assert result.returncode != 0, "a run with a stopped image must fail"
    ledger = runner.ledger()
    run = ledger.latest_run()
    record = {r.image: r for r in ledger.run_summary(run.run_id)}["vendor-app"]
    assert record.status == ImageStatus.FAILED
    assert record.failure_stage == "scan"
    assert "blocking finding" in record.failure_reason
    assert "CVE-2099-4242 in perl-base" in record.failure_reason
    stages = {s.stage: s.outcome for s in ledger.stage_results(run.run_id, "vendor-app")}
    assert stages["verify"] == StageOutcome.SUCCESS
    assert stages["scan"] == StageOutcome.FAILED
    assert "push" not in stages and "deploy_staging" not in stages and "promote" not in stages
    assert sorted(registry.list_tags("vendor/app")) == tags_before
    assert registry.resolve(VENDOR) == production_before
