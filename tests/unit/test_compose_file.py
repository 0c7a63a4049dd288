"""docker-compose.yml: a valid file whose Airflow services all see the project and its databases.

Compose cannot run here (no image registry), so these checks read the file and hold it against the
project it deploys: the mounted folders, the init SQL, the connection the DAG's hook reads.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from airflow.sdk import Connection
from sqlalchemy.engine import make_url

from patchpipe.airflow.hooks import PatchpipeHook

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
AIRFLOW_HOME = "/opt/airflow"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the "<<" merge keys


@pytest.fixture(scope="module")
def airflow_services(compose: dict) -> dict[str, dict]:
    found = {name: spec for name, spec in compose["services"].items() if name.startswith("airflow-")}
    assert found, "no airflow-* services"
    return found


def host_mounts(service: dict) -> dict[str, str]:
    """Bind mounts, host path -> container path (without options such as :ro)."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        mounts[host] = container
    return mounts


def test_the_file_is_a_compose_file_with_services(compose: dict) -> None:
    assert isinstance(compose, dict)
    assert {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer"} <= set(compose["services"])


def test_every_airflow_service_mounts_dags_plugins_and_include(airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        mounts = host_mounts(service)
        for folder in ("dags", "plugins", "include"):
            assert mounts.get(f"./{folder}") == f"{AIRFLOW_HOME}/{folder}", f"{name} does not mount ./{folder}"


def test_the_mounted_folders_exist_next_to_the_compose_file(airflow_services: dict) -> None:
    for service in airflow_services.values():
        for host in host_mounts(service):
            if host.startswith("./"):
                assert (ROOT / host).is_dir(), host


def test_every_airflow_service_runs_the_same_image(airflow_services: dict) -> None:
    images = {service.get("image") for service in airflow_services.values()}
    assert len(images) == 1 and None not in images, images


def test_the_image_is_the_airflow_version_the_project_is_built_on(airflow_services: dict) -> None:
    (image,) = {service["image"] for service in airflow_services.values()}
    tag = re.search(r"apache/airflow:([0-9.]+)", image)
    assert tag, image
    assert tag.group(1) == version("apache-airflow") == "3.3.2"


def test_the_api_server_publishes_8080(compose: dict) -> None:
    ports = [str(p) for p in compose["services"]["airflow-apiserver"].get("ports", [])]
    assert any(p.split(":")[-2:] == ["8080", "8080"] for p in ports), ports


def test_the_execution_api_url_names_the_api_server_service(compose: dict, airflow_services: dict) -> None:
    for service in airflow_services.values():
        url = service["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        assert url == "http://airflow-apiserver:8080/execution/"
    assert "airflow-apiserver" in compose["services"]


def test_postgres_has_a_healthcheck_the_airflow_services_wait_for(compose: dict, airflow_services: dict) -> None:
    healthcheck = compose["services"]["postgres"]["healthcheck"]
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(healthcheck["test"])
    for name, service in airflow_services.items():
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name


def test_the_airflow_daemons_wait_for_the_database_migration(airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        if name != "airflow-init":
            assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name


def test_the_init_sql_that_postgres_mounts_exists(compose: dict) -> None:
    mounts = host_mounts(compose["services"]["postgres"])
    scripts = [host for host, container in mounts.items() if container.startswith("/docker-entrypoint-initdb.d/")]
    assert scripts, mounts
    for script in scripts:
        assert (ROOT / script).is_file(), script
        assert script.endswith(".sql")


def test_the_patchpipe_connection_reaches_the_database_the_init_sql_creates(compose: dict,
                                                                           airflow_services: dict) -> None:
    init_sql = next(ROOT / host for host, container in host_mounts(compose["services"]["postgres"]).items()
                    if container.startswith("/docker-entrypoint-initdb.d/"))
    created = re.findall(r"CREATE DATABASE\s+(\w+)", init_sql.read_text(), flags=re.IGNORECASE)
    variable = f"AIRFLOW_CONN_{PatchpipeHook.default_conn_name.upper()}"
    for name, service in airflow_services.items():
        uri = service["environment"][variable]
        # The hook hands Airflow's get_uri() to SQLAlchemy: it must survive that round trip.
        url = make_url(Connection.from_uri(uri, conn_id=PatchpipeHook.default_conn_name).get_uri())
        assert (url.get_backend_name(), url.host, url.database) == ("postgresql", "postgres", created[0]), name


def test_the_fleet_the_services_read_is_in_the_mounted_include_folder(airflow_services: dict) -> None:
    for service in airflow_services.values():
        fleet = service["environment"]["PATCHPIPE_FLEET"]
        assert fleet.startswith(f"{AIRFLOW_HOME}/include/")
        assert (ROOT / "include" / fleet.removeprefix(f"{AIRFLOW_HOME}/include/")).is_file()


def test_the_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for host in host_mounts(service):
            if not host.startswith((".", "/")):
                assert host in declared, f"{name} uses undeclared volume {host}"
