from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator


class DeployOperator(StageOperator):
    """Rolling update of one environment to the candidate, by digest; waits for convergence."""

    template_fields = (*StageOperator.template_fields, "pushed")

    def __init__(self, *, environment: str, pushed, **kwargs):
        super().__init__(**kwargs)
        self.environment, self.pushed = environment, pushed
        self.stage = f"deploy_{environment}"

    def run(self, services, context):
        from patchpipe.lifecycle.deploy import deploy

        return deploy(services, self.image, self.environment, self.pushed)


class RollbackOperator(StageOperator):
    """Runs when a rollout or its analysis failed: take the environment off the candidate."""

    template_fields = (*StageOperator.template_fields, "pushed")

    def __init__(self, *, environment: str, pushed, **kwargs):
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.environment, self.pushed = environment, pushed
        self.stage = f"rollback_{environment}"

    def run(self, services, context):
        from patchpipe.lifecycle.deploy import rollback

        result = rollback(services, self.image, self.environment, self.pushed, context["run_id"])
        if not result["rolled_back"]:
            raise AirflowSkipException(f"{self.environment} is not on the candidate: nothing to roll back")
        return result
