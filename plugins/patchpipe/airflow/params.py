"""The trigger form of ``patch_lifecycle``: Params Airflow renders in the UI and validates.

The ``images`` choice lists the fleet's images, read from the manifest (or ``fleet_names``' cache)
when the DAG is parsed; a manifest that cannot be read leaves a free list (the run then fails at
``select_images`` with the manifest's own error). ``patchpipe.run_options`` checks the values
again at run time.
"""

from __future__ import annotations

from airflow.sdk import Param

from patchpipe import settings
from patchpipe.airflow.fleet_names import image_names


def run_params() -> dict[str, Param]:
    names = image_names(settings.fleet_path())
    item = {"type": "string", "enum": names} if names else {"type": "string"}
    return {
        "images": Param([], type="array", items=item, title="Images",
                        description="Fleet images to patch; leave empty for all of them."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Inventory and plan only: nothing is built, pushed or deployed."),
        "skip_promotion": Param(False, type="boolean", title="Skip promotion",
                                description="Patch and prove the candidate in staging; leave production alone."),
        "force_rebuild": Param(False, type="boolean", title="Force rebuild",
                               description="Build a new candidate without the build cache, even if one for the "
                               "same plan exists."),
        "emergency": Param(False, type="boolean", title="Emergency",
                           description="Ignore the images' patch windows."),
    }
