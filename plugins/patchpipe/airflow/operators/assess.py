from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator
from patchpipe.airflow.run_info import emergency_trigger
from patchpipe.lifecycle.assess import assess


class AssessOperator(StageOperator):
    """Plan the upgrades; an image with nothing to patch (or, in an emergency run, nothing urgent) is
    skipped from here on: a recorded no-op."""

    stage = "assess"
    template_fields = (*StageOperator.template_fields, "inventory")

    def __init__(self, *, inventory, **kwargs):
        super().__init__(**kwargs)
        self.inventory = inventory

    def run(self, services, context):
        plan = assess(services, self.inventory, emergency_trigger(context))
        if plan.is_empty:
            reason = plan.why[0] if plan.why else f"nothing to patch at {plan.source_digest}"
            raise AirflowSkipException(f"{self.image}: {reason}")
        return plan.to_dict()
