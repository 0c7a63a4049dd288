"""Large fleets: the manifest generator (``patchpipe.fleet.generate``, ``patchpipe fleet generate``) and
the early, clear failure of a selection larger than Airflow's ``[core] max_map_length``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from patchpipe.airflow.operators.run import SelectTargetsOperator
from patchpipe.cli import main
from patchpipe.errors import PatchpipeError
from patchpipe.fleet import load_fleet
from patchpipe.fleet.generate import generate_fleet, write_fleet
from patchpipe.lifecycle.select import check_map_length
from patchpipe.lifecycle.services import Services

ROOT = Path(__file__).resolve().parents[2]
DEMO_WEB = ROOT / "include" / "demo" / "demo-web"
LAB_SERVICES = {"demo-web-staging", "demo-web-production", "vendor-app-staging", "vendor-app-production"}


def test_a_generated_manifest_loads_with_n_uniquely_named_images_on_shared_bases(tmp_path) -> None:
    generated = generate_fleet(40, bases=3, rebuild_context=DEMO_WEB, manifest_dir=tmp_path)
    fleet = load_fleet(write_fleet(generated, tmp_path / "fleet.yaml"))

    assert len(fleet.images) == 40 and len(fleet.bases) == 3
    names = [entry.name for entry in [*fleet.images, *fleet.bases]]
    assert len(set(names)) == len(names)
    assert len({image.image for image in fleet.images}) == 40  # one repository each
    assert Counter(generated.base_of.values()) == {"base-1": 14, "base-2": 13, "base-3": 13}
    rebuilt = [image for image in fleet.images if image.kind == "rebuild"]
    assert len(rebuilt) == 20  # every other image; the rest are patched in place
    assert {image.build.base for image in rebuilt} == {base.image for base in fleet.bases}
    for image in rebuilt:
        assert image.build.base == fleet.bases[int(generated.base_of[image.name][-1]) - 1].image
        assert fleet.build_context_path(image) == DEMO_WEB
    assert all(image.image.startswith("127.0.0.1:5000/bench-scale/app-") for image in fleet.images)


def test_a_generated_fleet_can_never_deploy_over_a_real_service() -> None:
    fleet = generate_fleet(4, bases=1).fleet
    targets = [image.deploy[stage] for image in fleet.images for stage in ("staging", "production")]
    assert {target.kind for target in targets} == {"swarm_service"}
    assert not {target.swarm_service for target in targets} & LAB_SERVICES
    assert all(target.url.endswith(".invalid") for target in targets)  # RFC 6761: never resolves
    assert {image.kind for image in fleet.images} == {"patch"}  # no rebuild context given


def test_counts_out_of_range_are_refused() -> None:
    with pytest.raises(PatchpipeError, match="at least one image"):
        generate_fleet(0)
    with pytest.raises(PatchpipeError, match="--bases must be between 1 and the number of images, 2"):
        generate_fleet(2, bases=3)
    with pytest.raises(PatchpipeError, match="has no Dockerfile"):
        generate_fleet(3, rebuild_context=ROOT)


def test_the_cli_writes_a_manifest_fleet_validate_accepts(tmp_path, capsys) -> None:
    out = tmp_path / "big" / "fleet.yaml"
    assert main(["fleet", "generate", "--images", "12", "--bases", "2", "--out", str(out),
                 "--namespace", "try", "--registry", "registry.example.org:5000"]) == 0
    assert capsys.readouterr().out == f"{out}: 12 images on 2 bases\n"
    assert main(["fleet", "validate", str(out)]) == 0
    assert load_fleet(out).images[0].image == "registry.example.org:5000/try/app-0001:1.0"
    assert main(["fleet", "generate", "--images", "1", "--bases", "2", "--out", str(out)]) == 2
    assert "--bases must be between 1 and the number of images" in capsys.readouterr().err


def test_more_images_than_max_map_length_is_a_clear_error() -> None:
    check_map_length(["a"] * 1024, "images to patch", 1024)
    with pytest.raises(PatchpipeError) as error:
        check_map_length(["a"] * 1100, "images to patch", 1024)
    assert str(error.value).startswith("this run has 1100 images to patch, but Airflow maps a task group over at "
                                       "most 1024 ([core] max_map_length). Set AIRFLOW__CORE__MAX_MAP_LENGTH=4096")
    with pytest.raises(PatchpipeError, match="MAX_MAP_LENGTH=8192"):
        check_map_length(["a"] * 5000, "images to patch", 4096)


class _Ledger:
    def __init__(self):
        self.stages = []

    def record_stage(self, run_id, image, stage, outcome, started_at, duration, detail):
        self.stages.append((image, stage, outcome.value, detail))

    def record_image(self, *args, **kwargs):
        raise AssertionError("a manual run of all images leaves none out")


@pytest.fixture(scope="module")
def fleet_of_1100():
    return generate_fleet(1100, bases=3).fleet


@pytest.fixture
def select_images(fleet_of_1100, monkeypatch):
    ledger = _Ledger()
    services = Services(fleet=fleet_of_1100, manifest_dir=ROOT, engine=None, docker_factory=None)
    services.__dict__["ledger"] = ledger  # the cached property, filled in
    monkeypatch.setattr("patchpipe.airflow.operators.base.PatchpipeHook.services", lambda self, path=None: services)
    operator = SelectTargetsOperator(task_id="select_images", kind="images")
    return lambda: operator.execute({"run_id": "manual__scale", "params": {}}), ledger


def test_select_images_passes_a_fleet_beyond_the_limit_on_to_triage(select_images, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__MAX_MAP_LENGTH", raising=False)  # Airflow's default, 1024
    run, ledger = select_images
    selected = run()  # not mapped over: only what triage passes on is
    assert len(selected) == 1100 and selected[0] == "app-0001"
    assert ledger.stages[-1][:3] == ("(run)", "select_images", "success")


def test_a_run_whose_select_images_failed_is_a_failed_run(tmp_path, monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from patchpipe import db
    from patchpipe.airflow.operators.run import SummaryOperator
    from patchpipe.db import utc_now
    from patchpipe.ledger.models import RunStatus, StageOutcome
    from patchpipe.ledger.store import Ledger

    monkeypatch.setenv("PATCHPIPE_DB", f"sqlite:///{tmp_path}/patchpipe.db")
    monkeypatch.setenv("PATCHPIPE_REPORTS_DIR", str(tmp_path / "reports"))
    engine = db.make_engine(f"sqlite:///{tmp_path}/patchpipe.db")
    db.create_schema(engine)
    ledger = Ledger(engine)
    ledger.start_run("manual__big", "manual")
    ledger.record_stage("manual__big", "(run)", "select_images", StageOutcome.FAILED, utc_now(), 0.1,
                        {"error": "this run has 1100 images to patch, but Airflow maps ..."})

    with pytest.raises(AirflowFailException, match="select_images failed: this run has 1100 images to patch"):
        SummaryOperator(task_id="summary").execute({"run_id": "manual__big"})
    assert ledger.get_run("manual__big").status == RunStatus.FAILED  # no image failed, yet the run did

    ledger.record_stage("manual__big", "(run)", "select_images", StageOutcome.SUCCESS, utc_now(), 0.1, [])
    assert SummaryOperator(task_id="summary").execute({"run_id": "manual__big"}) == {}  # cleared and rerun: passed
