from patchpipe.airflow.operators.base import StageOperator


class PushOperator(StageOperator):
    """Push the verified candidate and record its digest."""

    stage = "push"
    template_fields = (*StageOperator.template_fields, "candidate")

    def __init__(self, *, candidate, **kwargs):
        super().__init__(**kwargs)
        self.candidate = candidate

    def run(self, services, context):
        from patchpipe.lifecycle.push import push

        return push(services, self.candidate)
