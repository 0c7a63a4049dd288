"""TrivyScanOperator (``patchpipe.airflow.operators.trivy``) without a registry or Docker Engine: which
Trivy image it asks for, the skip when the registry lacks it, and the DockerOperator it builds.

The registry's answer is stubbed (``RegistryClient.tag_exists``); tests/integration/test_trivy_stage.py
asks the lab's real registry. The container's output is a real Trivy report (tests/fixtures/trivy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from docker.types import Mount

from patchpipe.airflow.operators.trivy import REPORT_PATH, TrivyScanOperator, trivy_image
from patchpipe.airflow.trivy_container import TrivyContainer
from patchpipe.fleet import load_fleet
from patchpipe.images.reference import parse_reference
from patchpipe.images.registry import RegistryClient
from patchpipe.lifecycle.services import Services

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "c" * 64
CANDIDATE = {"image": "demo-web", "candidate": "127.0.0.1:5000/demo/web:1.0-patch.20261124.1", "digest": DIGEST}


@pytest.fixture
def services() -> Services:
    return Services(fleet=load_fleet(ROOT / "include" / "fleet.yaml"), manifest_dir=ROOT / "include",
                    engine=None, docker_factory=lambda: None,
                    credentials={"registry.example.org": ("ci", "s3cret")})


@pytest.fixture
def registry_holds(monkeypatch):
    """``registry_holds(True/False)``: what every registry answers about the Trivy image; returns the refs asked."""
    asked: list[str] = []

    def holds(present: bool) -> list[str]:
        def tag_exists(client, repository, reference):
            asked.append(f"{client.registry}/{repository}:{reference}")
            return present
        monkeypatch.setattr(RegistryClient, "tag_exists", tag_exists)
        return asked
    return holds


def operator(**kwargs) -> TrivyScanOperator:
    return TrivyScanOperator(**{"task_id": "trivy", "image": "demo-web", "docker_url": "unix:///var/run/docker.sock",
                                **kwargs})


def test_the_trivy_image_defaults_to_tools_trivy_in_the_fleets_registry(services, monkeypatch) -> None:
    monkeypatch.delenv("PATCHPIPE_TRIVY_IMAGE", raising=False)
    assert str(trivy_image(services.fleet)) == "127.0.0.1:5000/tools/trivy:latest"
    monkeypatch.setenv("PATCHPIPE_TRIVY_IMAGE", "registry.example.org/security/trivy:0.58.1")
    assert str(trivy_image(services.fleet)) == "registry.example.org/security/trivy:0.58.1"


def test_without_the_trivy_image_in_the_registry_the_task_is_skipped_saying_what_to_do(
        services, registry_holds, monkeypatch) -> None:
    monkeypatch.delenv("PATCHPIPE_TRIVY_IMAGE", raising=False)
    asked = registry_holds(False)
    with pytest.raises(AirflowSkipException) as skipped:
        operator(candidate=CANDIDATE).run(services, {})
    assert str(skipped.value) == ("Trivy image 127.0.0.1:5000/tools/trivy:latest not in registry 127.0.0.1:5000; "
                                  "push one there (or set PATCHPIPE_TRIVY_IMAGE) to enable the Trivy stage")
    assert asked == ["127.0.0.1:5000/tools/trivy:latest"]


def test_the_container_runs_trivy_on_the_pushed_candidate_by_digest(services) -> None:
    trivy = parse_reference("127.0.0.1:5000/tools/trivy:0.58.1")
    op = operator(candidate=CANDIDATE)
    container = op.trivy_container(services, trivy, op.scan_target(services))

    assert isinstance(container, TrivyContainer)
    assert container.image == "127.0.0.1:5000/tools/trivy:0.58.1"
    assert container.command == ["image", "--format", "json", "--output", REPORT_PATH, "--scanners", "vuln",
                                 "--insecure", f"127.0.0.1:5000/demo/web@{DIGEST}"]
    assert container.network_mode == "host"  # the loopback registry is the host's 127.0.0.1
    assert container.docker_url == "unix:///var/run/docker.sock"
    assert container.mounts == [Mount(target="/var/run/docker.sock", source="/var/run/docker.sock", type="bind",
                                      read_only=True)]
    assert (container.auto_remove, container.mount_tmp_dir) == ("force", False)
    assert (container.retrieve_output, container.retrieve_output_path) == (True, REPORT_PATH)
    assert container._private_environment == {}  # the lab registry is anonymous
    assert container.task_id == "trivy.trivy"


def test_a_candidate_not_pushed_yet_is_scanned_by_tag_from_the_engine(services) -> None:
    op = operator(candidate={**CANDIDATE, "digest": None})
    assert str(op.scan_target(services)) == "127.0.0.1:5000/demo/web:1.0-patch.20261124.1"
    assert str(operator().scan_target(services)) == "127.0.0.1:5000/demo/web:1.0"  # no candidate: production


def test_credentials_go_to_trivy_privately_and_a_remote_registry_over_https(services) -> None:
    op = operator(candidate={"candidate": "registry.example.org/shop/api:2.0-patch.20261124.1", "digest": None},
                  trivy_args=["--skip-db-update"], docker_url="tcp://docker.example.org:2376")
    container = op.trivy_container(services, parse_reference("registry.example.org/tools/trivy:latest"),
                                   op.scan_target(services))
    assert container.command == ["image", "--format", "json", "--output", REPORT_PATH, "--skip-db-update",
                                 "registry.example.org/shop/api:2.0-patch.20261124.1"]
    assert container._private_environment == {"TRIVY_USERNAME": "ci", "TRIVY_PASSWORD": "s3cret"}
    assert "environment" in container.template_fields and container.environment == {}  # never rendered
    assert container.network_mode is None and container.mounts == []  # no local socket to lend


def test_the_report_trivy_writes_becomes_the_stages_findings(services, registry_holds, monkeypatch) -> None:
    registry_holds(True)
    document = json.loads((ROOT / "tests" / "fixtures" / "trivy" / "debian-buster.json").read_text())
    monkeypatch.setattr(TrivyContainer, "execute", lambda self, context: document)
    result = operator(candidate=CANDIDATE).run(services, {})

    assert result["target"] == f"127.0.0.1:5000/demo/web@{DIGEST}"
    assert (result["os"], result["packages"]) == ({"family": "debian", "version": "10.1"}, 2)
    assert [(f["id"], f["status"]) for f in result["findings"]] == [("CVE-2019-18224", "fixed"),
                                                                    ("CVE-2019-18276", "affected")]
    json.dumps(result)  # plain JSON: it goes to XCom and the ledger


def test_no_report_from_the_container_fails_the_task(services, registry_holds, monkeypatch) -> None:
    registry_holds(True)
    monkeypatch.setattr(TrivyContainer, "execute", lambda self, context: None)
    with pytest.raises(Exception, match=rf"wrote no JSON report at {REPORT_PATH} for 127\.0\.0\.1:5000/demo/web@"):
        operator(candidate=CANDIDATE).run(services, {})
