"""
### patch_lifecycle

Keeps the fleet in `include/fleet.yaml` (or `$PATCHPIPE_FLEET`) patched, image by image:

1. **fetch_advisories**: newest security version of every package, from the distro security archive.
2. **refresh_base** (per base image): inventory, assess, patch in place, verify, scan, push, move the base tag,
   so rebuilds start from a patched base.
3. **triage**: inventory and assess every selected image in one task; an image with nothing to
   patch is recorded as a no-op there, so a large fleet costs a task group only per image to patch.
4. **patch_image** (per image triage passed on, mapped: one image's failure never stops the others):
   inventory (packages read from the layers) -> assess (the plan) ->
   patch (rebuild from the Dockerfile, or one patch layer) -> verify -> scan (findings before and
   after, the policy gate: a candidate that introduces a blocking finding stops here) -> push ->
   deploy_staging -> analyze_staging -> promote (production tag + rolling update, by digest) ->
   analyze_production. An image with `approval:` in the manifest waits in **approve_production** for
   an owner's answer in the UI (Required Actions); a rejection or no answer in time leaves the
   candidate in staging. Each analysis runs the smoke checks, /version and Prometheus metrics (success
   rate, p99 latency) over a window, Flagger-style, and fails closed when Prometheus cannot answer.
   Beside them, **trivy** scans the candidate with Trivy as a second opinion, when a Trivy image is in
   the registry (`$PATCHPIPE_TRIVY_IMAGE`); otherwise it is skipped, saying so.
   A failed staging rollout or analysis rolls staging back and leaves production alone; a failed
   production rollout or analysis rolls production (tag and service) back.
5. **record** / **summary**: every stage and every image's outcome goes to the patch ledger, with
   the findings of every production digest and candidate; the summary writes the run's report
   (Markdown and HTML, `$PATCHPIPE_REPORTS_DIR`).

**Notifications** (webhook, Slack-compatible, and email; each off until configured): a failed task,
a rollback, an approval waiting, and the run summary (which also reports a run that overran its
deadline).

**When it runs**: in the weekly patch window (cron from `PATCHPIPE_PATCH_WINDOW`), from the UI, and
at once when `advisory_sync` emits `patchpipe://advisories`: such an emergency run patches only the
images that one of the newly reported advisories makes urgent (exploited per CISA KEV, or critical,
with a fix for the image's release); the other images are recorded no-ops.

Reruns and backfills are idempotent: a candidate built for the same source and plan is reused, and a
service already on a digest is not updated again.
"""

import os

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronDataIntervalTimetable, task_group

from patchpipe.airflow.assets import ADVISORIES
from patchpipe.airflow.notifiers import notify
from patchpipe.airflow.params import run_params
from patchpipe.airflow.pools import BUILDS, REGISTRY_WRITES
from patchpipe.airflow.operators import (
    AnalysisOperator,
    AssessOperator,
    DeployOperator,
    FetchAdvisoriesOperator,
    InventoryOperator,
    PatchOperator,
    ProductionApprovalOperator,
    PromoteOperator,
    PushOperator,
    RecordOperator,
    RollbackOperator,
    RollbackProductionOperator,
    ScanOperator,
    SelectTargetsOperator,
    StartRunOperator,
    SummaryOperator,
    TriageOperator,
    TrivyScanOperator,
    VerifyOperator,
)

with DAG(
    dag_id="patch_lifecycle",
    doc_md=__doc__,
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(os.environ.get("PATCHPIPE_PATCH_WINDOW", "0 2 * * 6"), timezone="UTC"),
        assets=[ADVISORIES],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=run_params(),
    # At most four images in the same stage at once, so a big fleet cannot starve the workers; the
    # pools (include/airflow/pools.json) bound builds and registry writes across runs and DAGs.
    default_args={"owner": "platform", "retries": 0, "max_active_tis_per_dagrun": 4,
                  "on_failure_callback": notify("failure")},
    tags=["patchpipe", "patching"],
) as dag:
    start = StartRunOperator(task_id="start_run")
    advisories = FetchAdvisoriesOperator(task_id="fetch_advisories")
    bases = SelectTargetsOperator(task_id="select_bases", kind="bases")
    images = SelectTargetsOperator(task_id="select_images", kind="images")

    @task_group
    def refresh_base(name):
        inventory = InventoryOperator(task_id="inventory", image=name)
        plan = AssessOperator(task_id="assess", image=name, inventory=inventory.output)
        candidate = PatchOperator(task_id="patch", image=name, plan=plan.output, pool=BUILDS)
        verified = VerifyOperator(task_id="verify", image=name, plan=plan.output, inventory=inventory.output,
                                  candidate=candidate.output)
        scanned = ScanOperator(task_id="scan", image=name, inventory=inventory.output, candidate=candidate.output)
        pushed = PushOperator(task_id="push", image=name, candidate=candidate.output, pool=REGISTRY_WRITES)
        promoted = PromoteOperator(task_id="promote", image=name, pushed=pushed.output, deploy=False,
                                   pool=REGISTRY_WRITES)
        verified >> scanned >> pushed
        promoted >> RecordOperator(task_id="record", image=name)

    @task_group
    def patch_image(name):
        inventory = InventoryOperator(task_id="inventory", image=name, trigger_rule="none_failed")
        plan = AssessOperator(task_id="assess", image=name, inventory=inventory.output)
        candidate = PatchOperator(task_id="patch", image=name, plan=plan.output, pool=BUILDS)
        verified = VerifyOperator(task_id="verify", image=name, plan=plan.output, inventory=inventory.output,
                                  candidate=candidate.output)
        scanned = ScanOperator(task_id="scan", image=name, inventory=inventory.output, candidate=candidate.output)
        pushed = PushOperator(task_id="push", image=name, candidate=candidate.output, pool=REGISTRY_WRITES)
        staged = DeployOperator(task_id="deploy_staging", image=name, environment="staging", pushed=pushed.output)
        staging_ok = AnalysisOperator(task_id="analyze_staging", image=name, environment="staging",
                                      candidate=candidate.output)
        approved = ProductionApprovalOperator(task_id="approve_production", image=name, candidate=candidate.output,
                                              notifiers=notify("approval"))
        promoted = PromoteOperator(task_id="promote", image=name, pushed=pushed.output, pool=REGISTRY_WRITES)
        production_ok = AnalysisOperator(task_id="analyze_production", image=name, environment="production",
                                         candidate=candidate.output)
        staging_back = RollbackOperator(task_id="rollback_staging", image=name, environment="staging",
                                        pushed=pushed.output, on_success_callback=notify("rollback"))
        production_back = RollbackProductionOperator(task_id="rollback_production", image=name,
                                                     inventory=inventory.output, pushed=pushed.output,
                                                     on_success_callback=notify("rollback"))
        trivy = TrivyScanOperator(task_id="trivy", image=name, candidate=candidate.output)
        record = RecordOperator(task_id="record", image=name)

        verified >> trivy >> record
        verified >> scanned >> pushed >> staged >> staging_ok >> approved >> promoted >> production_ok
        [staged, staging_ok] >> staging_back
        [promoted, production_ok] >> production_back
        [production_ok, staging_back, production_back] >> record

    base_runs = refresh_base.expand(name=bases.output)
    to_patch = TriageOperator(task_id="triage", images=images.output)
    image_runs = patch_image.expand(name=to_patch.output)
    start >> advisories >> [bases, images]
    base_runs >> image_runs
    advisories >> image_runs
    image_runs >> SummaryOperator(task_id="summary", on_success_callback=notify("summary"),
                                  on_failure_callback=notify("summary"))
