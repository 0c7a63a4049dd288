"""Stage 2: select what this run patches.

Images: those the run's ``images`` option names (all when none), and in a scheduled or backfill
run only those whose patch window is open at the run's time (``patchpipe.windows``; an image
without a window of its own follows the default one, and without any it follows the DAG's
schedule). An emergency run ignores windows. Bases: those a selected image is rebuilt on.

Task groups are mapped over the bases and over the images triage passes on, and Airflow maps over
at most ``[core] max_map_length`` values (1024 by default): ``check_map_length`` stops a longer list
with a message that says so.
"""

from __future__ import annotations

from datetime import datetime

from patchpipe.errors import PatchpipeError
from patchpipe.run_options import RunOptions
from patchpipe.windows import last_opening, window_open


def select_images(fleet, options: RunOptions, when: datetime | None) -> tuple[list[str], dict[str, str]]:
    """The images to patch, in manifest order, and why each other one is left out."""
    selected, left_out = [], {}
    hours = fleet.defaults.patch_window_hours
    for image in fleet.images:
        cron = fleet.patch_window_for(image)
        if not options.wants(image.name):
            left_out[image.name] = "not among the run's images"
        elif when is not None and cron and not options.emergency and not window_open(cron, when, hours):
            left_out[image.name] = (f"outside its patch window ({cron}, {hours:g} h; last opened "
                                    f"{last_opening(cron, when):%Y-%m-%d %H:%M} UTC)")
        else:
            selected.append(image.name)
    return selected, left_out


def select_bases(fleet, images: list[str]) -> list[str]:
    """The bases the ``images`` are rebuilt on, in manifest order."""
    used = {str(image.build.base) for image in fleet.images if image.name in images and image.build is not None}
    return [base.name for base in fleet.bases if base.image in used]


MAX_MAP_LENGTH_SETTING = "AIRFLOW__CORE__MAX_MAP_LENGTH"


def check_map_length(names: list[str], what: str, limit: int) -> None:
    """Raise PatchpipeError when the run has more ``what`` than Airflow may map over (``limit``)."""
    if len(names) <= limit:
        return
    suggested = max(4096, 1 << (len(names) - 1).bit_length())
    raise PatchpipeError(
        f"this run has {len(names)} {what}, but Airflow maps a task group over at most {limit} "
        f"([core] max_map_length). Set {MAX_MAP_LENGTH_SETTING}={suggested} (or more) for the api-server, "
        f"scheduler and workers and restart them, or patch the fleet in parts with the run's 'images' option"
    )
