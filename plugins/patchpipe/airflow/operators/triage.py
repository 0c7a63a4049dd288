"""Triage: which of the run's images have anything to patch, decided in one task for the whole fleet."""

from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.assess import plan_or_skip
from patchpipe.airflow.operators.base import StageOperator, run_stage
from patchpipe.airflow.operators.run import max_map_length
from patchpipe.lifecycle.select import check_map_length

_PROGRESS_EVERY = 25


class TriageOperator(StageOperator):
    """Inventory and assess every selected image here; return those with something to patch.

    Only they get a ``patch_image`` task group, so an image with nothing to patch costs one inventory
    and one assessment, not a mapped group of fifteen tasks: a fleet's run time grows with what needs
    patching, not with the fleet, and only the images to patch count against Airflow's
    ``[core] max_map_length``. A no-op is written to the ledger exactly as the group would write
    it (inventory, assess skipped with the reason, record). An image whose triage fails is passed on:
    its own group retries it and records the failure, so one image never stops the others.
    """

    stage = "triage"
    template_fields = (*StageOperator.template_fields, "images")

    def __init__(self, *, images, **kwargs):
        super().__init__(**kwargs)
        self.images = images

    def run(self, services, context):
        to_patch = []
        for done, name in enumerate(self.images, 1):
            if not self._nothing_to_patch(services, context, name):
                to_patch.append(name)
            if done % _PROGRESS_EVERY == 0 or done == len(self.images):
                self.log.info("triage: %d of %d images assessed, %d to patch", done, len(self.images), len(to_patch))
        check_map_length(to_patch, "images to patch", max_map_length())
        return to_patch

    def _nothing_to_patch(self, services, context, name: str) -> bool:
        from patchpipe.lifecycle.inventory import inventory
        from patchpipe.lifecycle.record import record

        run_id = context["run_id"]
        try:
            inventoried = run_stage(services, run_id, name, "inventory", lambda: inventory(services, name))
            run_stage(services, run_id, name, "assess", lambda: plan_or_skip(services, context, name, inventoried))
        except AirflowSkipException as skip:
            self.log.info("%s", skip)
            run_stage(services, run_id, name, "record", lambda: record(services, run_id, name))
            return True
        except Exception as error:  # noqa: BLE001 - the image's own group fails with it, recorded
            self.log.warning("%s: triage failed (%s); its task group retries and records it", name, error)
        return False
