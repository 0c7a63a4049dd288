"""ProductionApprovalOperator: an owner approves each promotion in the Airflow UI, where the manifest asks.

Built on the standard provider's ApprovalOperator (Human-in-the-loop): the task waits for an answer
under Required Actions; "Reject", or no answer within the image's ``approval.timeout_minutes``,
skips the promotion and leaves the candidate in staging. An image without ``approval:`` passes at
once, and a run with the ``skip_promotion`` option stops here. The answer, and who gave it, is
written to the ledger as the ``approve_production`` stage.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.hooks import PatchpipeHook
from patchpipe.airflow.operators.base import RUN_LEVEL
from patchpipe.airflow.run_info import run_options
from patchpipe.db import utc_now
from patchpipe.ledger.models import StageOutcome

STAGE = "approve_production"


class ProductionApprovalOperator(ApprovalOperator):
    template_fields = (*ApprovalOperator.template_fields, "image", "candidate", "fleet_path")

    def __init__(self, *, image, candidate, fleet_path: str | None = None,
                 patchpipe_db_conn_id: str = PatchpipeHook.default_conn_name, **kwargs):
        super().__init__(subject="Promote to production?", defaults=ApprovalOperator.REJECT, **kwargs)
        self.image, self.candidate, self.fleet_path = image, candidate, fleet_path
        self.patchpipe_db_conn_id = patchpipe_db_conn_id

    def execute(self, context):
        services = PatchpipeHook(self.patchpipe_db_conn_id).services(self.fleet_path)
        target = services.target(self.image)
        if run_options(context, services.fleet).skip_promotion:
            reason = "the run's skip_promotion option: the candidate stays in staging"
            services.ledger.record_stage(context["run_id"], self.image, STAGE, StageOutcome.SKIPPED, utc_now(), 0.0,
                                         {"reason": reason})
            raise AirflowSkipException(reason)
        if target.approval is None:
            self.log.info("%s: the manifest asks for no approval; promoting", self.image)
            return {"approved": True, "required": False}
        self.response_timeout = timedelta(minutes=target.approval.timeout_minutes)
        self.subject = f"Promote {self.image} to production?"
        self.body = (f"Candidate **{self.candidate['candidate']}** passed its staging analysis.\n\n"
                     f"Owners: {', '.join(target.owners)}. Without an answer within "
                     f"{target.approval.timeout_minutes} minutes the promotion is rejected.")
        return super().execute(context)

    def execute_complete(self, context, event):
        # ApprovalOperator skips the downstream tasks itself on Reject, which misses the task instances
        # of a mapped task group; skipping this task lets the trigger rules skip promote and what follows.
        result = HITLOperator.execute_complete(self, context, event)
        chosen = result["chosen_options"][0]
        user = result.get("responded_by_user") or {}
        detail = {"chosen": chosen, "by": user.get("name") or user.get("id") or "timeout default",
                  "at": str(result.get("responded_at"))}
        approved = chosen == self.APPROVE
        ledger = PatchpipeHook(self.patchpipe_db_conn_id).services(self.fleet_path).ledger
        ledger.record_stage(context["run_id"], self.image or RUN_LEVEL, STAGE,
                            StageOutcome.SUCCESS if approved else StageOutcome.SKIPPED, utc_now(), 0.0, detail)
        if not approved:
            raise AirflowSkipException(f"{self.image}: promotion rejected by {detail['by']}; the candidate stays "
                                       "in staging")
        self.log.info("%s: promotion approved by %s", self.image, detail["by"])
        return result
