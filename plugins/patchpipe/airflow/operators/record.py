from patchpipe.airflow.operators.base import StageOperator


class RecordOperator(StageOperator):
    """Always runs: writes the image's outcome in this run (promoted, no-op, failed, rolled back) to the ledger."""

    stage = "record"

    def __init__(self, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def run(self, services, context):
        from patchpipe.lifecycle.record import record

        return record(services, context["run_id"], self.image)
