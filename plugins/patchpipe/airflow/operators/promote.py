from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator


class PromoteOperator(StageOperator):
    """Point the production tag at the tested digest (manifest copy) and roll production onto it.

    With ``deploy=False`` (base images) only the tag moves.
    """

    stage = "promote"
    template_fields = (*StageOperator.template_fields, "pushed")

    def __init__(self, *, pushed, deploy: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.pushed, self.deploy = pushed, deploy

    def run(self, services, context):
        from patchpipe.lifecycle.promote import promote, promote_tag

        if self.deploy:
            return promote(services, self.image, self.pushed)
        return promote_tag(services, self.image, self.pushed)


class RollbackProductionOperator(StageOperator):
    """Runs when production failed: production tag and service back on the digest they had before."""

    stage = "rollback_production"
    template_fields = (*StageOperator.template_fields, "inventory", "pushed")

    def __init__(self, *, inventory, pushed, **kwargs):
        kwargs.setdefault("trigger_rule", "one_failed")
        super().__init__(**kwargs)
        self.inventory, self.pushed = inventory, pushed

    def run(self, services, context):
        from patchpipe.lifecycle.promote import rollback_production

        result = rollback_production(services, self.image, self.inventory, self.pushed, context["run_id"])
        if not result["rolled_back"]:
            raise AirflowSkipException("production is not on the candidate: nothing to roll back")
        return result
