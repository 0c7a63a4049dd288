from datetime import datetime, timezone

from patchpipe.airflow.operators.base import StageOperator


class ScanOperator(StageOperator):
    """Findings of the current image and the candidate, the policy gate, and the diff between them:
    fails (and so stops the candidate before it is pushed) when the candidate introduces a blocking finding."""

    stage = "scan"
    template_fields = (*StageOperator.template_fields, "inventory", "candidate")

    def __init__(self, *, inventory, candidate, **kwargs):
        super().__init__(**kwargs)
        self.inventory, self.candidate = inventory, candidate

    def run(self, services, context):
        from patchpipe.lifecycle.scan import scan

        # ignore entries expire in real time, not in the window's
        return scan(services, self.image, self.inventory, self.candidate, datetime.now(timezone.utc).date(),
                    context["run_id"])
