from patchpipe.airflow.operators.base import StageOperator
from patchpipe.airflow.run_info import run_day
from patchpipe.lifecycle.patch import patch
from patchpipe.plan import PatchPlan


class PatchOperator(StageOperator):
    """Build the candidate: a rebuild on the current base, or one patch layer on the current image."""

    stage = "patch"
    template_fields = (*StageOperator.template_fields, "plan")

    def __init__(self, *, plan, **kwargs):
        super().__init__(**kwargs)
        self.plan = plan

    def run(self, services, context):
        return patch(services, PatchPlan.from_dict(self.plan), context["run_id"], run_day(context))
