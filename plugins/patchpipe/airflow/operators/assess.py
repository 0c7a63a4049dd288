from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator
from patchpipe.lifecycle.assess import assess


class AssessOperator(StageOperator):
    """Plan the upgrades; an image with nothing to patch is skipped from here on (a recorded no-op)."""

    stage = "assess"
    template_fields = (*StageOperator.template_fields, "inventory")

    def __init__(self, *, inventory, **kwargs):
        super().__init__(**kwargs)
        self.inventory = inventory

    def run(self, services, context):
        plan = assess(services, self.inventory)
        if plan.is_empty:
            raise AirflowSkipException(f"{self.image}: nothing to patch at {plan.source_digest}")
        return plan.to_dict()
