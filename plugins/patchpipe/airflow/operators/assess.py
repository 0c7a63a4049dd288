from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.base import StageOperator
from patchpipe.airflow.run_info import emergency_trigger, run_type, window_time


class AssessOperator(StageOperator):
    """Plan the upgrades; an image with nothing to patch (or, in an emergency run, nothing urgent, or in
    a backfill, already promoted by a newer run) is skipped from here on: a recorded no-op."""

    stage = "assess"
    template_fields = (*StageOperator.template_fields, "inventory")

    def __init__(self, *, inventory, **kwargs):
        super().__init__(**kwargs)
        self.inventory = inventory

    def run(self, services, context):
        return plan_or_skip(services, context, self.image, self.inventory)


def plan_or_skip(services, context, image: str, inventoried: dict) -> dict:
    """The image's patch plan, or AirflowSkipException saying why there is nothing to do in this run."""
    from patchpipe.lifecycle.assess import assess

    window = window_time(context)
    if run_type(context) == "backfill" and window is not None:
        newer = services.ledger.promoted_after(image, window)
        if newer is not None:
            raise AirflowSkipException(f"{image}: a newer run ({newer.run_id}) already promoted "
                                       f"{newer.after_digest}; a backfill never goes back")
    plan = assess(services, inventoried, emergency_trigger(context), context["run_id"])
    if plan.is_empty:
        reason = plan.why[0] if plan.why else f"nothing to patch at {plan.source_digest}"
        raise AirflowSkipException(f"{image}: {reason}")
    return plan.to_dict()
