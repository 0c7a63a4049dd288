"""docker-compose.yml as Docker Compose itself resolves it: `docker compose config --format json`.

Images cannot be pulled on this machine, so the deployment is never started here. What can be checked
is the model Compose would run: the services and their wiring, the files it mounts from this repo,
the monitoring it provisions and the variables it interpolates. `config` needs no Docker daemon, only
the Compose v2 CLI plugin, which include/ci/install-docker-compose.sh installs; without it these
tests fail, they never skip. Each run gets an empty env file and a minimal environment, so a
developer's `.env` or shell cannot change what is checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from airflow.sdk import Connection
from packaging.requirements import Requirement
from sqlalchemy.engine import make_url

from patchpipe.airflow.dashboard_auth import METRICS_TOKEN_ENV
from patchpipe.airflow.hooks import PatchpipeHook, sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INCLUDE = ROOT / "include"
MONITORING = INCLUDE / "monitoring"
INSTALLER = "include/ci/install-docker-compose.sh"
AIRFLOW_HOME = PurePosixPath("/opt/airflow")

SERVICES = {"postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "registry", "prometheus", "grafana"}
DOCKER_SOCKET = "/var/run/docker.sock"
AIRFLOW_DEFAULT_MAX_MAP_LENGTH = 1024
# requirements.txt entries the compose image need not add: installed in the official apache/airflow
# image (its default extras include docker, cncf-kubernetes, celery and redis; the rest are Airflow's
# own dependencies), or only used by the tests.
IN_OFFICIAL_IMAGE = {"apache-airflow", "apache-airflow-providers-docker", "apache-airflow-providers-cncf-kubernetes",
                     "apache-airflow-providers-celery", "requests", "pydantic", "pyyaml", "sqlalchemy", "msgspec",
                     "jinja2"}
TEST_ONLY = {"pytest", "aiosmtpd", "selenium"}


def compose_config(tmp_path: Path, **variables: str) -> dict:
    """The resolved model of docker-compose.yml, with only ``variables`` set."""
    docker = shutil.which("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True) if docker else None
    if probe is None or probe.returncode != 0:
        pytest.fail(f"`docker compose` (the Compose v2 CLI plugin) is not installed: run `bash {INSTALLER}` as root",
                    pytrace=False)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    environment = {name: os.environ[name] for name in ("PATH", "HOME", "DOCKER_CONFIG") if name in os.environ}
    result = subprocess.run(
        [docker, "compose", "--env-file", str(env_file), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
         "config", "--format", "json"],
        capture_output=True, text=True, env={**environment, **variables}, timeout=60)
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="module")
def airflow_services(config: dict) -> dict[str, dict]:
    return {name: spec for name, spec in config["services"].items() if name.startswith("airflow-")}


def binds(service: dict) -> dict[str, Path]:
    """Bind mounts of a service: container path -> host path."""
    return {volume["target"]: Path(volume["source"]) for volume in service.get("volumes", [])
            if volume["type"] == "bind"}


def host_file(service: dict, container_path: str | PurePosixPath) -> Path:
    """The host file a container path of ``service`` is, through its bind mounts (longest match)."""
    path = PurePosixPath(container_path)
    for target, source in sorted(binds(service).items(), key=lambda item: -len(item[0])):
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not bind-mounted")


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_every_service_of_the_deployment_is_there(config: dict) -> None:
    assert SERVICES <= set(config["services"]), SERVICES - set(config["services"])


def test_every_airflow_service_runs_the_celery_executor_on_redis_and_postgres(airflow_services: dict) -> None:
    assert set(airflow_services) >= {name for name in SERVICES if name.startswith("airflow-")}
    for name, service in airflow_services.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = make_url(env["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.drivername, broker.host) == ("redis", "redis"), name
        backend = make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
        assert (backend.get_backend_name(), backend.host) == ("postgresql", "postgres"), name


def test_the_airflow_services_share_one_image_and_their_secrets(airflow_services: dict) -> None:
    for key in ("image", "build"):
        assert len({json.dumps(service.get(key), sort_keys=True) for service in airflow_services.values()}) == 1, key
    for variable in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY",
                     "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        values = {service["environment"].get(variable) for service in airflow_services.values()}
        assert len(values) == 1 and None not in values, variable
    jwt_secret = next(iter(airflow_services.values()))["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert len(jwt_secret) >= 64, "HS512 wants a key of at least 64 bytes"


def test_the_image_is_the_official_airflow_image_the_project_is_built_on_plus_its_requirements(
        airflow_services: dict) -> None:
    build = next(iter(airflow_services.values()))["build"]
    context = Path(build["context"])
    assert re.fullmatch(rf"apache/airflow:{re.escape(version('apache-airflow'))}(-python3\.\d+)?",
                        build["args"]["AIRFLOW_IMAGE"]), build["args"]["AIRFLOW_IMAGE"]
    dockerfile = (context / build["dockerfile"]).read_text()
    assert f"ARG AIRFLOW_IMAGE={build['args']['AIRFLOW_IMAGE']}\n" in dockerfile
    copied = re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE)
    assert copied == ["requirements.txt"] and (context / "requirements.txt").is_file()


def requirement_lines(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def test_the_image_requirements_cover_requirements_txt_at_the_constrained_versions(airflow_services: dict) -> None:
    image_requirements = {r.name.lower(): r for r in requirement_lines(
        Path(next(iter(airflow_services.values()))["build"]["context"]) / "requirements.txt")}
    project = {r.name.lower() for r in requirement_lines(ROOT / "requirements.txt")}
    missing = project - set(image_requirements) - IN_OFFICIAL_IMAGE - TEST_ONLY
    assert not missing, f"requirements.txt needs these in include/compose/requirements.txt: {sorted(missing)}"
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, pinned = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    for name, requirement in image_requirements.items():
        assert str(requirement.specifier) == f"=={pins[name.replace('_', '-')]}", (name, requirement.specifier)


def test_dags_plugins_and_include_are_mounted_into_every_airflow_service(airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        mounts = binds(service)
        for folder in ("dags", "plugins", "include"):
            assert mounts.get(str(AIRFLOW_HOME / folder)) == ROOT / folder, f"{name} does not mount ./{folder}"


def test_only_the_workers_reach_the_docker_engine(airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        socket = binds(service).get(DOCKER_SOCKET)
        if name == "airflow-worker":
            assert socket == Path(DOCKER_SOCKET)
            assert service["group_add"], "the worker's user needs the socket's group"
        else:
            assert socket is None, f"{name} mounts the Docker socket"


def test_the_worker_scales_and_needs_the_execution_api(config: dict) -> None:
    worker = config["services"]["airflow-worker"]
    assert worker["command"] == ["celery", "worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale"
    assert not worker.get("ports"), "published ports prevent --scale"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_the_airflow_services_wait_for_healthy_postgres_and_redis_and_the_migration(config: dict,
                                                                                  airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        for backend in ("postgres", "redis"):
            assert service["depends_on"][backend]["condition"] == "service_healthy", (name, backend)
        if name != "airflow-init":
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    for name, service in config["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert config["services"][dependency].get("healthcheck", {}).get("test"), \
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"


def test_every_long_running_service_has_a_healthcheck(config: dict) -> None:
    for name, service in config["services"].items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), name


def test_every_file_the_deployment_names_under_include_exists(config: dict) -> None:
    named = []
    for service in config["services"].values():
        named += [source for source in binds(service).values() if INCLUDE in source.parents]
        for text in strings({key: service.get(key) for key in ("command", "environment", "entrypoint")}):
            named += [INCLUDE / match for match in re.findall(rf"{AIRFLOW_HOME}/include/([\w./-]+)", text)]
        if "build" in service:
            named.append(Path(service["build"]["context"]) / service["build"]["dockerfile"])
    assert len(named) >= 8, named
    assert [path for path in named if not path.exists()] == []


def test_the_init_container_migrates_and_imports_the_project_pools(config: dict) -> None:
    init = config["services"]["airflow-init"]
    script = " ".join(init["command"])
    assert "airflow db check-migrations" in script
    assert f"airflow pools import {AIRFLOW_HOME}/include/airflow/pools.json" in script
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_the_ledger_has_its_own_database_which_postgres_creates(config: dict, airflow_services: dict) -> None:
    postgres = config["services"]["postgres"]
    init_sql = [source for target, source in binds(postgres).items() if target.startswith("/docker-entrypoint-initdb.d/")]
    created = re.findall(r"CREATE DATABASE\s+(\w+)", init_sql[0].read_text(), flags=re.IGNORECASE)
    variable = f"AIRFLOW_CONN_{PatchpipeHook.default_conn_name.upper()}"
    for name, service in airflow_services.items():
        uri = service["environment"][variable]
        url = make_url(sqlalchemy_url(Connection.from_uri(uri, conn_id=PatchpipeHook.default_conn_name)))
        assert (url.drivername, url.host, url.database) == ("postgresql+psycopg", "postgres", created[0]), name
        assert (url.username, url.password) == (postgres["environment"]["POSTGRES_USER"],
                                                postgres["environment"]["POSTGRES_PASSWORD"]), name
        assert created[0] != postgres["environment"]["POSTGRES_DB"]


def test_the_map_length_is_raised_for_a_task_group_per_fleet_image(airflow_services: dict) -> None:
    for name, service in airflow_services.items():
        assert int(service["environment"]["AIRFLOW__CORE__MAX_MAP_LENGTH"]) > AIRFLOW_DEFAULT_MAX_MAP_LENGTH, name


def load_plugin():
    spec = importlib.util.spec_from_file_location("patchpipe_plugin", ROOT / "plugins" / "patchpipe_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheus_scrapes_the_plugins_metrics_with_the_token_the_api_server_accepts(config: dict) -> None:
    prometheus = config["services"]["prometheus"]
    settings = yaml.safe_load(host_file(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    (job,) = [job for job in settings["scrape_configs"] if job["job_name"] == "patchpipe"]
    plugin = load_plugin()
    assert job["metrics_path"] == f"{plugin.URL_PREFIX}/metrics"
    assert "/metrics" in {route.path for route in plugin.PatchpipePlugin.fastapi_apps[0]["app"].routes}
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "airflow-apiserver" and int(port) in {p["target"] for p in config["services"][host]["ports"]}
    token_path = PurePosixPath("/etc/prometheus") / job["authorization"]["credentials_file"]
    (token_config,) = [c for c in prometheus["configs"] if c["target"] == str(token_path)]
    token = config["configs"][token_config["source"]]["content"]
    assert token and token == config["services"]["airflow-apiserver"]["environment"][METRICS_TOKEN_ENV]


def test_prometheus_loads_the_alert_rules_of_include_monitoring_and_its_config_passes_promtool(config: dict,
                                                                                              tmp_path: Path) -> None:
    prometheus = config["services"]["prometheus"]
    etc = PurePosixPath("/etc/prometheus")
    settings = yaml.safe_load(host_file(prometheus, etc / "prometheus.yml").read_text())
    rules = [host_file(prometheus, etc / rule) for rule in settings["rule_files"]]
    assert rules == [MONITORING / "patchpipe-alerts.yml"]
    # /etc/prometheus as the container sees it, for promtool (which also checks the token file exists).
    for target, source in binds(prometheus).items():
        if PurePosixPath(target).is_relative_to(etc):
            copy = tmp_path / PurePosixPath(target).relative_to(etc)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, copy)
    for token in prometheus["configs"]:
        (tmp_path / PurePosixPath(token["target"]).relative_to(etc)).write_text(config["configs"][token["source"]]["content"])
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (as .ci/run does)", pytrace=False)
    result = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisions_the_dashboard_of_include_monitoring_on_the_prometheus_service(config: dict) -> None:
    grafana = config["services"]["grafana"]
    provisioning = host_file(grafana, "/etc/grafana/provisioning")
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    url = urlsplit(datasource["url"])
    assert (url.hostname, url.port) == ("prometheus", config["services"]["prometheus"]["ports"][0]["target"])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "patchpipe.yml").read_text())["providers"]
    dashboard_dir = PurePosixPath(provider["options"]["path"])
    dashboards = [source for target, source in binds(grafana).items() if PurePosixPath(target).parent == dashboard_dir]
    assert dashboards == [MONITORING / "grafana-dashboard.json"]
    assert json.loads(dashboards[0].read_text())["uid"] == "patchpipe-fleet"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_file(grafana, home) == dashboards[0]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_the_variables_override_their_defaults(config: dict, tmp_path: Path) -> None:
    services = config["services"]
    assert services["airflow-worker"]["deploy"]["replicas"] == 1
    assert {p["host_ip"] for s in services.values() for p in s.get("ports", [])} == {"127.0.0.1"}

    overridden = compose_config(
        tmp_path, AIRFLOW_WORKERS="3", POSTGRES_PASSWORD="s3cret", PATCHPIPE_METRICS_TOKEN="scrape-token",
        AIRFLOW_MAX_MAP_LENGTH="10000", PATCHPIPE_BIND_ADDRESS="0.0.0.0", GRAFANA_PORT="3300",
        AIRFLOW_IMAGE="registry.example/airflow:3.3.2")
    services = overridden["services"]
    assert services["airflow-worker"]["deploy"]["replicas"] == 3
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    for name, service in services.items():
        if name.startswith("airflow-"):
            env = service["environment"]
            for variable in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                             "AIRFLOW_CONN_PATCHPIPE_DB"):
                assert ":s3cret@postgres/" in env[variable], (name, variable)
            assert env["AIRFLOW__CORE__MAX_MAP_LENGTH"] == "10000"
            assert service["build"]["args"]["AIRFLOW_IMAGE"] == "registry.example/airflow:3.3.2"
    assert services["airflow-apiserver"]["environment"][METRICS_TOKEN_ENV] == "scrape-token"
    assert overridden["configs"]["patchpipe_metrics_token"]["content"] == "scrape-token"
    assert {p["host_ip"] for s in services.values() for p in s.get("ports", [])} == {"0.0.0.0"}
    assert [p["published"] for p in services["grafana"]["ports"]] == ["3300"]


def test_the_readme_lists_every_variable_the_file_reads() -> None:
    code = "\n".join(line.split(" #")[0] for line in COMPOSE_FILE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    read = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", code))
    readme = (ROOT / "README.md").read_text()
    env_block = readme.split("# .env: every variable docker-compose.yml reads")[1].split("```")[0]
    listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", env_block, flags=re.MULTILINE))
    assert read == listed, {"not in the README": sorted(read - listed), "not in the file": sorted(listed - read)}
