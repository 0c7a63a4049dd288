from patchpipe.airflow.operators.base import StageOperator
from patchpipe.lifecycle.push import push


class PushOperator(StageOperator):
    """Push the verified candidate and record its digest."""

    stage = "push"
    template_fields = (*StageOperator.template_fields, "candidate")

    def __init__(self, *, candidate, **kwargs):
        super().__init__(**kwargs)
        self.candidate = candidate

    def run(self, services, context):
        return push(services, self.candidate)
