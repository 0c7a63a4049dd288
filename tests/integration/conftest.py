"""Integration tests run against the real lab (`make lab-up`, include/lab/lab.sh).

Every test under tests/integration is marked `integration`. The session fixture `lab` checks that
the lab answers and fails (never skips) with what to do when it does not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LAB_SCRIPT = REPO_ROOT / "include" / "lab" / "lab.sh"
FLEET_FILE = REPO_ROOT / "include" / "fleet.yaml"

# The lab's conventions; include/lab/lab.sh and include/fleet.yaml use the same values
# (test_lab.py::test_fleet_manifest_matches_the_lab checks that they agree).
REGISTRY = "127.0.0.1:5000"
AUTH_REGISTRY = "127.0.0.1:5001"
AUTH_USER = "patchpipe"
ORIGINAL_SUFFIX = "-lab-original"
NETWORK = "patchpipe-lab"
PROXY_CONTAINER = "patchpipe-lab-proxy"
BASE_IMAGE = f"{REGISTRY}/base/debian:bookworm"
DEMO_WEB_IMAGE = f"{REGISTRY}/demo/web:1.0"
VENDOR_APP_IMAGE = f"{REGISTRY}/vendor/app:2.4"


@dataclass(frozen=True)
class LabService:
    name: str  # Swarm service name
    fleet_image: str  # name of the image entry in include/fleet.yaml
    env: str  # staging | production
    port: int  # published on 127.0.0.1 by the lab proxy
    image: str  # repo:tag the lab deployed it from

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    LabService("demo-web-staging", "demo-web", "staging", 18081, DEMO_WEB_IMAGE),
    LabService("demo-web-production", "demo-web", "production", 18080, DEMO_WEB_IMAGE),
    LabService("vendor-app-staging", "vendor-app", "staging", 18091, VENDOR_APP_IMAGE),
    LabService("vendor-app-production", "vendor-app", "production", 18090, VENDOR_APP_IMAGE),
)


@dataclass(frozen=True)
class Lab:
    registry: str = REGISTRY
    auth_registry: str = AUTH_REGISTRY
    auth_user: str = AUTH_USER
    auth_password: str = "patchpipe-lab"
    base_image: str = BASE_IMAGE
    demo_web_image: str = DEMO_WEB_IMAGE
    vendor_app_image: str = VENDOR_APP_IMAGE
    network: str = NETWORK
    proxy_container: str = PROXY_CONTAINER
    script: Path = LAB_SCRIPT
    fleet_file: Path = FLEET_FILE
    services: dict[str, LabService] = field(default_factory=lambda: {s.name: s for s in SERVICES})

    @staticmethod
    def original(ref: str) -> str:
        """The immutable tag `lab.sh reset` restores REF from: repo:tag -> repo:tag-lab-original."""
        return ref + ORIGINAL_SUFFIX

    @property
    def images(self) -> tuple[str, ...]:
        return (self.base_image, self.demo_web_image, self.vendor_app_image)


def _problems(lab: Lab) -> list[str]:
    problems = []
    try:
        client = docker.from_env()
        if client.info()["Swarm"]["LocalNodeState"] != "active":
            problems.append("Swarm is not active")
    except docker.errors.DockerException as exc:
        problems.append(f"no Docker Engine ({exc})")
    checks = [(f"registry {lab.registry}", f"http://{lab.registry}/v2/", 200),
              (f"auth registry {lab.auth_registry}", f"http://{lab.auth_registry}/v2/", 401)]
    checks += [(f"service {s.name}", f"{s.url}/healthz", 200) for s in lab.services.values()]
    for what, url, expected in checks:
        try:
            status = requests.get(url, timeout=5).status_code
        except requests.RequestException as exc:
            problems.append(f"{what}: {url} does not answer ({type(exc).__name__})")
            continue
        if status != expected:
            problems.append(f"{what}: {url} answered {status}, expected {expected}")
    return problems


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = Lab(auth_password=os.environ.get("PATCHPIPE_LAB_AUTH_PASSWORD", "patchpipe-lab"))
    problems = _problems(lab)
    if problems:
        pytest.fail("the lab is not up: " + "; ".join(problems)
                    + ". Run `make lab-up` (then `make lab-status` to see what is missing).", pytrace=False)
    return lab


@pytest.fixture(scope="session")
def docker_client(lab: Lab) -> docker.DockerClient:
    client = docker.from_env()
    yield client
    client.close()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
