"""StageOperator: runs one lifecycle stage for one image and writes its outcome to the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.hooks import PatchpipeHook
from patchpipe.db import utc_now
from patchpipe.ledger.models import StageOutcome

RUN_LEVEL = "(run)"  # the ledger's image name for stages that concern the whole run


class StageOperator(BaseOperator):
    """Subclasses set ``stage`` and implement ``run(services, context)``; the return value goes to XCom."""

    stage: ClassVar[str]
    template_fields: Sequence[str] = ("image", "fleet_path")
    ui_color = "#e8f1fb"

    def __init__(self, *, image: str | None = None, fleet_path: str | None = None,
                 patchpipe_db_conn_id: str = PatchpipeHook.default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.image = image
        self.fleet_path = fleet_path
        self.patchpipe_db_conn_id = patchpipe_db_conn_id

    def run(self, services, context) -> Any:
        raise NotImplementedError

    def execute(self, context):
        services = PatchpipeHook(self.patchpipe_db_conn_id).services(self.fleet_path)
        return run_stage(services, context["run_id"], self.image or RUN_LEVEL, self.stage,
                         lambda: self.run(services, context))


def run_stage(services, run_id: str, image: str, stage: str, work: Callable[[], Any]) -> Any:
    """``work()``, with its outcome, duration and result (or error) written to the ledger as ``stage``."""
    started_at, clock = utc_now(), time.monotonic()

    def record(outcome: StageOutcome, detail: Any) -> None:
        services.ledger.record_stage(run_id, image, stage, outcome, started_at, time.monotonic() - clock, detail)

    try:
        result = work()
    except AirflowSkipException as skip:
        record(StageOutcome.SKIPPED, {"reason": str(skip)})
        raise
    except Exception as exc:
        record(StageOutcome.FAILED, {"error": str(exc), "type": type(exc).__name__,
                                     **getattr(exc, "ledger_detail", {})})
        raise
    record(StageOutcome.SUCCESS, result)
    return result
