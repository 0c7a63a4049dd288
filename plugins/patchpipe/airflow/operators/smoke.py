from patchpipe.airflow.operators.base import StageOperator
from patchpipe.lifecycle.smoke import smoke


class SmokeTestOperator(StageOperator):
    """The manifest's smoke checks against one environment; /version must report the candidate."""

    template_fields = (*StageOperator.template_fields, "candidate")

    def __init__(self, *, environment: str, candidate, **kwargs):
        super().__init__(**kwargs)
        self.environment, self.candidate = environment, candidate
        self.stage = f"smoke_{environment}"

    def run(self, services, context):
        return smoke(services, self.image, self.environment, self.candidate)
