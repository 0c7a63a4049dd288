from patchpipe.airflow.operators.base import StageOperator


class AnalysisOperator(StageOperator):
    """Judge one environment after its rollout over the analysis window: smoke checks, /version and
    metrics; fails (and so rolls the environment back) when failed iterations reach the threshold."""

    template_fields = (*StageOperator.template_fields, "candidate")

    def __init__(self, *, environment: str, candidate, **kwargs):
        super().__init__(**kwargs)
        self.environment, self.candidate = environment, candidate
        self.stage = f"analyze_{environment}"

    def run(self, services, context):
        from patchpipe.lifecycle.analyze import analyze

        return analyze(services, self.image, self.environment, self.candidate)
