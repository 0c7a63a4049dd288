from patchpipe.airflow.operators.base import StageOperator


class VerifyOperator(StageOperator):
    """Re-inventory the candidate: planned versions reached, nothing removed or downgraded."""

    stage = "verify"
    template_fields = (*StageOperator.template_fields, "plan", "inventory", "candidate")

    def __init__(self, *, plan, inventory, candidate, **kwargs):
        super().__init__(**kwargs)
        self.plan, self.inventory, self.candidate = plan, inventory, candidate

    def run(self, services, context):
        from patchpipe.lifecycle.verify import verify
        from patchpipe.plan import PatchPlan

        return verify(services, PatchPlan.from_dict(self.plan), self.inventory, self.candidate)
