"""The lab itself: registries, Swarm, the proxy, the demo fleet and `lab.sh`.

These document what the rest of patchpipe may rely on (see include/lab/README.md).
"""
from __future__ import annotations

import hashlib
import io
import re
import socket
import subprocess
import tarfile
import threading
import time
import uuid

import docker
import pytest
import requests
import yaml
from docker.types import EndpointSpec, RollbackConfig, UpdateConfig

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
SERVICE_NAMES = ["demo-web-staging", "demo-web-production", "vendor-app-staging", "vendor-app-production"]
IMAGE_ATTRS = ["base_image", "demo_web_image", "vendor_app_image"]
APP_ATTRS = ["demo_web_image", "vendor_app_image"]


# --- helpers -------------------------------------------------------------------------------------

def split_ref(ref: str) -> tuple[str, str, str]:
    """127.0.0.1:5000/demo/web:1.0 -> ("127.0.0.1:5000", "demo/web", "1.0")."""
    registry, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    return registry, repo, tag


def manifest_digest(ref: str, auth=None) -> str | None:
    """The registry's digest for a tag (None when absent), read with the distribution API."""
    registry, repo, tag = split_ref(ref)
    answer = requests.head(f"http://{registry}/v2/{repo}/manifests/{tag}",
                           headers={"Accept": MANIFEST_TYPES}, auth=auth, timeout=10)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.headers["Docker-Content-Digest"]


def pinned(ref: str) -> str:
    """repo:tag -> repo@sha256:... as the registry holds it now."""
    registry, repo, _ = split_ref(ref)
    digest = manifest_digest(ref)
    assert digest, f"{ref} is not in the registry"
    return f"{registry}/{repo}@{digest}"


def import_tiny_image(client: docker.DockerClient, ref: str) -> None:
    """A one-file image with unique content, so that removing it locally really removes it."""
    content = f"patchpipe lab test {uuid.uuid4()}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("lab-test.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    repo, _, tag = ref.rpartition(":")
    client.api.import_image_from_data(buffer.getvalue(), repository=repo, tag=tag)


def push(client: docker.DockerClient, ref: str, auth_config=None) -> tuple[str | None, list[str]]:
    """Push ref; return (digest, errors) from the daemon's progress stream."""
    repo, _, tag = ref.rpartition(":")
    digest, errors = None, []
    for line in client.images.push(repo, tag, auth_config=auth_config, stream=True, decode=True):
        if "error" in line:
            errors.append(line["error"])
        digest = line.get("aux", {}).get("Digest", digest)
    return digest, errors


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if result:
                return result
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def status_of(url: str) -> int:
    return requests.get(url, timeout=3).status_code


def run_lab(lab, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(lab.script), *args], capture_output=True, text=True, timeout=timeout)


class Poller:
    """GETs a URL in a background thread and records every answer that is not a 200."""

    def __init__(self, url: str):
        self.url, self.ok, self.failures = url, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                status = requests.get(self.url, timeout=3).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            if status == 200:
                self.ok += 1
            else:
                self.failures.append(status)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait_for_update(service, previous_start: str | None, timeout: float = 120) -> str:
    """Wait until the update started after previous_start ends; return its final state."""
    done = {"completed", "rollback_completed", "paused", "rollback_paused"}

    def finished():
        service.reload()
        status = service.attrs.get("UpdateStatus") or {}
        if status.get("StartedAt") != previous_start and status.get("State") in done:
            return status["State"]
        return None

    return wait_until(finished, timeout, f"the update of service {service.name} to finish")


def parse_metrics(text: str):
    """Check the Prometheus text format; return ({family: type}, [(name, labels, value)])."""
    helps, types, samples = set(), {}, []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name in helps, f"TYPE before HELP for {name}"
            assert kind in {"counter", "gauge", "histogram", "summary", "untyped"}
            types[name] = kind
        elif line:
            match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
            assert match, f"not a valid sample line: {line!r}"
            name, labels, value = match.groups()
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample {name} comes before its # TYPE line"
            samples.append((name, dict(re.findall(r'(\w+)="([^"]*)"', labels or "")), float(value)))
    return types, samples


def run_app(client, image: str, fault: str = ""):
    """Start a private container of a demo image on a random 127.0.0.1 port; return (container, url)."""
    container = client.containers.run(
        image, detach=True, environment={"DEMO_FAULT": fault} if fault else {},
        ports={"8080/tcp": ("127.0.0.1", None)}, labels={"patchpipe.test": "lab"})
    container.reload()
    url = f"http://127.0.0.1:{container.ports['8080/tcp'][0]['HostPort']}"
    wait_until(lambda: status_of(f"{url}/healthz") in (200, 503), 30, f"{image} to listen")
    return container, url


# --- the registries ------------------------------------------------------------------------------

def test_registry_push_and_pull_round_trip_a_digest(lab, docker_client):
    ref = f"{lab.registry}/lab-test/roundtrip:{uuid.uuid4().hex[:12]}"
    import_tiny_image(docker_client, ref)
    digest = None
    try:
        digest, errors = push(docker_client, ref)
        assert not errors and digest and digest.startswith("sha256:")

        docker_client.images.remove(ref)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(ref)
        registry, repo, tag = split_ref(ref)
        pulled = docker_client.images.pull(f"{registry}/{repo}@{digest}")
        assert f"{registry}/{repo}@{digest}" in pulled.attrs["RepoDigests"]

        assert manifest_digest(ref) == digest
        body = requests.get(f"http://{registry}/v2/{repo}/manifests/{tag}",
                            headers={"Accept": MANIFEST_TYPES}, timeout=10).content
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    finally:
        if digest:
            registry, repo, _ = split_ref(ref)
            requests.delete(f"http://{registry}/v2/{repo}/manifests/{digest}", timeout=10)
            docker_client.images.remove(f"{registry}/{repo}@{digest}", force=True)


def test_auth_registry_rejects_a_wrong_password_and_accepts_the_right_one(lab, docker_client):
    url = f"http://{lab.auth_registry}/v2/"
    anonymous = requests.get(url, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(url, auth=(lab.auth_user, "wrong-password"), timeout=5).status_code == 401
    with pytest.raises(docker.errors.APIError):
        docker_client.login(lab.auth_user, "wrong-password", registry=lab.auth_registry, reauth=True)

    assert requests.get(url, auth=(lab.auth_user, lab.auth_password), timeout=5).status_code == 200
    answer = docker_client.login(lab.auth_user, lab.auth_password, registry=lab.auth_registry, reauth=True)
    assert answer["Status"] == "Login Succeeded"

    ref = f"{lab.auth_registry}/lab-test/auth:{uuid.uuid4().hex[:12]}"
    import_tiny_image(docker_client, ref)
    try:
        _, errors = push(docker_client, ref, auth_config={"username": lab.auth_user, "password": "wrong-password"})
        assert errors, "a push with a wrong password must fail"
        credentials = {"username": lab.auth_user, "password": lab.auth_password}
        digest, errors = push(docker_client, ref, auth_config=credentials)
        assert not errors and digest
        assert manifest_digest(ref, auth=(lab.auth_user, lab.auth_password)) == digest
        with pytest.raises(requests.HTTPError):
            manifest_digest(ref)  # anonymous: 401
    finally:
        docker_client.images.remove(ref, force=True)


# --- Swarm and the lab proxy ---------------------------------------------------------------------

def test_a_swarm_service_converges_and_answers_on_its_port(lab, docker_client):
    port = free_port()
    service = docker_client.services.create(
        pinned(lab.original(lab.demo_web_image)), name=f"lab-test-{uuid.uuid4().hex[:8]}",
        endpoint_spec=EndpointSpec(ports={port: (8080, "tcp", "host")}), labels={"patchpipe.test": "lab"})
    try:
        def converged():  # Swarm reports "running" only once the HEALTHCHECK passes
            return [t["Status"]["State"] for t in service.tasks(filters={"desired-state": "running"})] == ["running"]

        wait_until(converged, 90, f"service {service.name} to converge")
        assert status_of(f"http://127.0.0.1:{port}/healthz") == 200
        assert requests.get(f"http://127.0.0.1:{port}/version", timeout=5).json()["app"] == "demo-web"
    finally:
        service.remove()


def test_start_first_updates_and_rollbacks_through_the_lab_proxy_drop_no_request(lab, docker_client):
    """The lab's service topology (dnsrr on the lab network behind the proxy) with its update config."""
    name, port = f"lab-test-{uuid.uuid4().hex[:8]}", free_port()
    service = docker_client.services.create(
        pinned(lab.original(lab.demo_web_image)), name=name, networks=[lab.network],
        endpoint_spec=EndpointSpec(mode="dnsrr"), labels={"patchpipe.test": "lab"},
        update_config=UpdateConfig(parallelism=1, order="start-first", failure_action="rollback", monitor=5 * 10**9),
        rollback_config=RollbackConfig(parallelism=1, order="start-first", monitor=5 * 10**9))
    proxy_image = docker_client.containers.get(lab.proxy_container).image
    proxy = docker_client.containers.run(
        proxy_image, detach=True, name=f"{name}-proxy", network=lab.network,
        environment={"LAB_ROUTES": f"{port}={name}:8080"}, ports={f"{port}/tcp": ("127.0.0.1", port)},
        labels={"patchpipe.test": "lab"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: status_of(f"{url}/healthz") == 200, 90, f"{name} to answer through a lab proxy")
        before = requests.get(f"{url}/version", timeout=5).json()["hostname"]

        with Poller(f"{url}/version") as poller:
            service.reload()
            started = (service.attrs.get("UpdateStatus") or {}).get("StartedAt")
            service.update(force_update=True)
            assert wait_for_update(service, started) == "completed"
        assert poller.failures == [] and poller.ok > 10
        assert requests.get(f"{url}/version", timeout=5).json()["hostname"] != before, "the task was not replaced"

        with Poller(f"{url}/version") as poller:
            service.reload()
            started = service.attrs["UpdateStatus"]["StartedAt"]
            service.update(env=["DEMO_FAULT=unhealthy"])
            assert wait_for_update(service, started) == "rollback_completed"
        assert poller.failures == [] and poller.ok > 10
    finally:
        proxy.remove(force=True)
        service.remove()


# --- the demo fleet ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_demo_services_answer_and_follow_the_conventions(lab, docker_client, name):
    expected = lab.services[name]
    health = requests.get(f"{expected.url}/healthz", timeout=5)
    assert health.status_code == 200 and health.text.startswith("ok")
    version = requests.get(f"{expected.url}/version", timeout=5).json()
    assert version["app"] == expected.fleet_image and version["build_id"]

    spec = docker_client.services.get(name).attrs["Spec"]
    registry, repo, _ = split_ref(expected.image)
    deployed = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    assert re.fullmatch(rf"{re.escape(registry)}/{repo}(:[\w.-]+)?@sha256:[0-9a-f]{{64}}", deployed), deployed
    assert spec["Labels"] == {"patchpipe.image": expected.fleet_image, "patchpipe.env": expected.env}
    assert spec["Mode"]["Replicated"]["Replicas"] == 1
    for key in ("UpdateConfig", "RollbackConfig"):
        assert spec[key]["Order"] == "start-first" and spec[key]["Parallelism"] == 1
        assert spec[key]["Monitor"] == 5 * 10**9
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    network_id = docker_client.networks.get(lab.network).id
    assert [n["Target"] for n in spec["TaskTemplate"]["Networks"]] == [network_id]


def test_fleet_manifest_matches_the_lab(lab):
    fleet = yaml.safe_load(lab.fleet_file.read_text())
    assert [b["image"] for b in fleet["bases"]] == [lab.base_image]
    images = {i["name"]: i for i in fleet["images"]}
    assert images["demo-web"]["image"] == lab.demo_web_image
    assert images["vendor-app"]["image"] == lab.vendor_app_image
    assert images["demo-web"]["build"]["base"] == lab.base_image
    deployed = {(name, env, target["swarm_service"], target["url"])
                for name, entry in images.items() for env, target in entry["deploy"].items()}
    assert deployed == {(s.fleet_image, s.env, s.name, s.url) for s in lab.services.values()}


@pytest.mark.parametrize("attr", IMAGE_ATTRS)
def test_lab_originals_have_pending_security_updates(lab, docker_client, attr):
    """Why the lab has real work: the originals are older than bookworm-security."""
    script = (
        "set -e; echo 'deb http://deb.debian.org/debian-security bookworm-security main' > /tmp/security.list; "
        "opts='-o Dir::Etc::SourceList=/tmp/security.list -o Dir::Etc::SourceParts=/dev/null'; "
        "apt-get $opts update -qq; apt-get $opts --simulate upgrade")
    image = lab.original(getattr(lab, attr))
    output = docker_client.containers.run(pinned(image), ["bash", "-c", script], user="root", remove=True).decode()
    upgradable = re.findall(r"^Inst (\S+) \[(\S+)\] \((\S+) .*[Ss]ecurity", output, re.MULTILINE)
    assert upgradable, f"no pending security update in {image}:\n{output}"
    print(f"{image}: " + ", ".join(f"{p} {old} -> {new}" for p, old, new in upgradable))


@pytest.mark.parametrize("attr", APP_ATTRS)
def test_demo_images_carry_the_contract_patch_tools_rely_on(lab, docker_client, attr):
    config = docker_client.images.pull(lab.original(getattr(lab, attr))).attrs["Config"]
    health = config["Healthcheck"]
    assert "python3" in health["Test"] and any("/healthz" in part for part in health["Test"])
    assert (health["Interval"], health["Timeout"], health["Retries"], health["StartPeriod"]) == (
        2 * 10**9, 2 * 10**9, 3, 3 * 10**9)
    assert "8080/tcp" in config["ExposedPorts"]
    assert config.get("User", "") == ("vendor" if attr == "vendor_app_image" else "")


@pytest.mark.parametrize("attr", APP_ATTRS)
def test_demo_apps_expose_valid_prometheus_metrics(lab, docker_client, attr):
    container, url = run_app(docker_client, lab.original(getattr(lab, attr)))
    try:
        for _ in range(3):
            assert requests.get(f"{url}/version", timeout=5).status_code == 200
        types, samples = parse_metrics(requests.get(f"{url}/metrics", timeout=5).text)
        assert types["http_requests_total"] == "counter"
        assert types["http_request_duration_seconds"] == "histogram"
        counts = {(s[1]["path"], s[1]["code"]): s[2] for s in samples if s[0] == "http_requests_total"}
        assert counts[("/version", "200")] == 3
        buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == "http_request_duration_seconds_bucket"]
        assert buckets[-1][0] == "+Inf"
        assert [v for _, v in buckets] == sorted(v for _, v in buckets), "buckets are cumulative"
        count = next(s[2] for s in samples if s[0] == "http_request_duration_seconds_count")
        assert buckets[-1][1] == count >= 3
        build = next(s[1] for s in samples if s[0] == "app_build_info")
        assert build["build_id"] == requests.get(f"{url}/version", timeout=5).json()["build_id"]
    finally:
        container.remove(force=True)


@pytest.mark.parametrize("attr", APP_ATTRS)
@pytest.mark.parametrize("fault", ["crash", "unhealthy", "error", "slow"])
def test_demo_fault_switches(lab, docker_client, attr, fault):
    image = lab.original(getattr(lab, attr))
    if fault == "crash":
        container = docker_client.containers.run(image, detach=True, environment={"DEMO_FAULT": "crash"},
                                                 labels={"patchpipe.test": "lab"})
        try:
            assert container.wait(timeout=30)["StatusCode"] == 1
            assert b"DEMO_FAULT=crash" in container.logs()
        finally:
            container.remove(force=True)
        return
    container, url = run_app(docker_client, image, fault)
    try:
        if fault == "unhealthy":
            assert status_of(f"{url}/healthz") == 503
            assert status_of(f"{url}/version") == 200
        elif fault == "error":
            assert status_of(f"{url}/healthz") == 200
            assert status_of(f"{url}/") == 500 and status_of(f"{url}/version") == 500
            assert 'code="500"' in requests.get(f"{url}/metrics", timeout=5).text
        else:
            started = time.monotonic()
            assert status_of(f"{url}/version") == 200
            assert time.monotonic() - started >= 1.0
    finally:
        container.remove(force=True)


# --- lab.sh --------------------------------------------------------------------------------------

def test_status_reports_every_component(lab):
    result = run_lab(lab, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    for component in ["docker:", f"registry {lab.registry}:", f"auth registry {lab.auth_registry}:", "swarm:",
                      "lab proxy:", *(f"image {ref}:" for ref in lab.images), *(f"service {n}:" for n in SERVICE_NAMES)]:
        assert any(line.startswith(component) for line in result.stdout.splitlines()), component


def test_a_second_up_does_nothing_and_takes_seconds(lab):
    started = time.monotonic()
    result = run_lab(lab, "up")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert not re.search(r": (started|created|pushed|built|initialised|installed)", result.stdout), result.stdout
    assert elapsed < 30, f"a warm `lab.sh up` took {elapsed:.0f} s"


def test_reset_deletes_patch_tags_and_restores_the_originals(lab, docker_client):
    ref = f"{lab.registry}/lab-test/reset:1.0-patch.{uuid.uuid4().hex[:8]}"
    import_tiny_image(docker_client, ref)
    try:
        digest, errors = push(docker_client, ref)
        assert not errors and manifest_digest(ref) == digest

        result = run_lab(lab, "reset")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{ref}: deleted ({digest})" in result.stdout
    finally:
        docker_client.images.remove(ref, force=True)
    assert manifest_digest(ref) is None
    for image in lab.images:
        assert manifest_digest(image) == manifest_digest(lab.original(image)), image
    for service in lab.services.values():
        deployed = docker_client.services.get(service.name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert deployed.endswith("@" + manifest_digest(lab.original(service.image))), service.name
        assert requests.get(f"{service.url}/version", timeout=5).json()["build_id"] in (
            "lab-original", "vendor-2.4")
