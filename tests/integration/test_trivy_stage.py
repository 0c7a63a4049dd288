"""The optional Trivy stage (TrivyScanOperator) against the lab's real registry.

No Trivy image can be pulled into the lab (no Docker Hub, no ghcr.io), so what runs for real here is
the check that decides between skipping and scanning: the registry is asked for the Trivy image, the
task is skipped with a message saying where to push one, and the ledger records the skip. The scan
itself (the DockerOperator running Trivy) is covered by tests/unit/test_trivy_operator.py.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from patchpipe.airflow.operators.trivy import TrivyScanOperator
from patchpipe.db import create_schema, make_engine
from patchpipe.fleet import load_fleet
from patchpipe.images.reference import parse_reference
from patchpipe.images.registry import RegistryClient
from patchpipe.ledger.models import RunType, StageOutcome
from patchpipe.ledger.store import Ledger
from patchpipe.lifecycle.services import Services

RUN = "manual__trivy-stage-test"


def test_without_a_trivy_image_in_the_registry_the_stage_is_skipped_and_recorded(lab, tmp_path, monkeypatch) -> None:
    with RegistryClient(lab.registry) as registry:
        assert not registry.tag_exists("tools/trivy", "latest"), "the lab registry unexpectedly holds tools/trivy"
    url = f"sqlite:///{tmp_path / 'patchpipe.db'}"
    monkeypatch.setenv("PATCHPIPE_DB", url)
    monkeypatch.setenv("PATCHPIPE_FLEET", str(lab.fleet_file))
    monkeypatch.delenv("PATCHPIPE_TRIVY_IMAGE", raising=False)
    engine = make_engine(url)
    create_schema(engine)
    ledger = Ledger(engine)
    ledger.start_run(RUN, RunType.MANUAL)

    operator = TrivyScanOperator(task_id="trivy", image="demo-web")
    with pytest.raises(AirflowSkipException) as skipped:
        operator.execute({"run_id": RUN})

    message = (f"Trivy image {lab.registry}/tools/trivy:latest not in registry {lab.registry}; "
               "push one there (or set PATCHPIPE_TRIVY_IMAGE) to enable the Trivy stage")
    assert str(skipped.value) == message
    (row,) = ledger.stage_results(RUN, "demo-web")
    assert (row.stage, row.outcome, row.detail) == ("trivy", StageOutcome.SKIPPED, {"reason": message})
    engine.dispose()


def test_an_image_the_registry_holds_passes_the_check(lab) -> None:
    services = Services(fleet=load_fleet(lab.fleet_file), manifest_dir=lab.fleet_file.parent, engine=None,
                        docker_factory=lambda: None)
    # Any image the lab holds stands in for a Trivy image: the check only asks the registry.
    TrivyScanOperator.ensure_available(services, parse_reference(lab.base_image))
