"""What a run patches: the trigger form's options (``run_options``), patch windows (``windows``) and
the selection of images and bases (``lifecycle.select``)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from patchpipe.errors import PatchpipeError
from patchpipe.fleet import load_fleet, parse_fleet
from patchpipe.lifecycle.select import select_bases, select_images
from patchpipe.run_options import RunOptions
from patchpipe.windows import last_opening, window_open

ROOT = Path(__file__).resolve().parents[2]
DEMO = load_fleet(ROOT / "include" / "fleet.yaml")
SATURDAY_0200 = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)  # the demo's default window opens


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_a_window_is_open_from_its_cron_for_its_hours() -> None:
    assert window_open("0 2 * * 6", SATURDAY_0200, 4)
    assert window_open("0 2 * * 6", utc(2026, 11, 28, 5, 59), 4)
    assert not window_open("0 2 * * 6", utc(2026, 11, 28, 6, 0), 4)
    assert not window_open("0 2 * * 6", utc(2026, 11, 27, 2, 0), 4)  # Friday
    assert last_opening("0 2 * * 6", utc(2026, 11, 30, 12, 0)) == SATURDAY_0200


def test_options_come_from_the_params_and_name_unknown_images() -> None:
    options = RunOptions.from_params({"images": ["vendor-app"], "dry_run": True}, DEMO.image_names)
    assert options == RunOptions(images=("vendor-app",), dry_run=True)
    assert options.wants("vendor-app") and not options.wants("demo-web")
    assert RunOptions.from_params(None, DEMO.image_names).wants("demo-web")
    with pytest.raises(PatchpipeError, match=r"run parameter images: no image named 'nope' in the fleet; "
                                             r"known: demo-web, vendor-app"):
        RunOptions.from_params({"images": ["nope"]}, DEMO.image_names)
    with pytest.raises(PatchpipeError, match="run parameter dry_run: must be true or false"):
        RunOptions.from_params({"dry_run": "yes"}, DEMO.image_names)


def test_a_manual_run_takes_the_images_it_names_and_the_bases_they_are_built_on() -> None:
    images, left_out = select_images(DEMO, RunOptions(images=("vendor-app",)), None)
    assert images == ["vendor-app"]
    assert left_out == {"demo-web": "not among the run's images"}
    assert select_bases(DEMO, images) == []  # vendor-app is patched in place, on no base of ours
    assert select_bases(DEMO, ["demo-web"]) == ["debian-bookworm"]


def narrowed_fleet():
    data = yaml.safe_load((ROOT / "include" / "fleet.yaml").read_text())
    data["images"][1]["patch_window"] = "0 2 1-7 * *"  # vendor-app: the first week of the month only
    return parse_fleet(yaml.safe_dump(data), manifest_dir=ROOT / "include")


def test_a_scheduled_run_leaves_out_an_image_whose_own_window_is_closed() -> None:
    fleet = narrowed_fleet()
    images, left_out = select_images(fleet, RunOptions(), SATURDAY_0200)  # the 4th Saturday
    assert images == ["demo-web"]
    assert left_out["vendor-app"].startswith("outside its patch window (0 2 1-7 * *, 4 h; last opened 2026-11-07")
    assert select_images(fleet, RunOptions(), utc(2026, 11, 7, 3, 0))[0] == ["demo-web", "vendor-app"]


def test_an_emergency_or_manual_run_ignores_windows() -> None:
    fleet = narrowed_fleet()
    assert select_images(fleet, RunOptions(emergency=True), SATURDAY_0200)[0] == ["demo-web", "vendor-app"]
    assert select_images(fleet, RunOptions(), None)[0] == ["demo-web", "vendor-app"]
