from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator
from patchpipe.airflow.run_info import run_day, run_options


class PatchOperator(StageOperator):
    """Build the candidate: a rebuild on the current base, or one patch layer on the current image.
    Skipped in a dry run; with ``force_rebuild`` never reused and built without the cache."""

    stage = "patch"
    template_fields = (*StageOperator.template_fields, "plan")

    def __init__(self, *, plan, **kwargs):
        super().__init__(**kwargs)
        self.plan = plan

    def run(self, services, context):
        from patchpipe.lifecycle.patch import patch
        from patchpipe.plan import PatchPlan

        plan = PatchPlan.from_dict(self.plan)
        options = run_options(context, services.fleet)
        if options.dry_run:
            upgrades = ", ".join(f"{u.name} {u.installed} -> {u.target}" for u in plan.upgrades)
            raise AirflowSkipException(f"dry run: planned only: {upgrades}")
        return patch(services, plan, context["run_id"], run_day(context), force=options.force_rebuild)
