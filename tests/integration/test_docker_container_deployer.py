"""The plain-container deployer on the lab's Docker Engine, with containers of its own (pp-test-ctr-*).

Variants of the lab's demo-web image (by its lab-original digest) are built here with a tiny
Dockerfile and pushed to the lab registry as pp-test/container-web:<variant>, then deployed by digest.
Two switches are measured with a request loop running through them, and printed (run with -s):
host-port handover (a gap of about 1.5 s) and alias handover behind a proxy (no gap; at most the
one request in flight when the old container stops fails, because demo-web does not drain).
"""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import docker
import pytest
import requests

from patchpipe.deploy.base import DeployError, digest_of
from patchpipe.deploy.docker_container import DockerContainerDeployer
from patchpipe.images.registry import RegistryClient

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"
REPOSITORY = "pp-test/container-web"
DEADLINE = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def client(lab):
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def original(client) -> str:
    """demo-web's lab-original image, by digest (the lab's :1.0 tag may be patched by other tests)."""
    digest = RegistryClient(REGISTRY).resolve(f"{REGISTRY}/demo/web:1.0-lab-original")
    ref = f"{REGISTRY}/demo/web@{digest}"
    client.images.pull(ref)
    return ref


@pytest.fixture(scope="module")
def variant(client, original):
    """variant(name, dockerfile lines) -> the digest reference of demo-web plus those lines."""
    built: dict[str, str] = {}

    def build(name: str, *lines: str) -> str:
        if name not in built:
            dockerfile = "\n".join([f"FROM {original}", *lines, f"LABEL pp-test.variant={name}", ""])
            tag = f"{REGISTRY}/{REPOSITORY}:{name}"
            client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
            client.images.push(f"{REGISTRY}/{REPOSITORY}", tag=name)
            built[name] = f"{REGISTRY}/{REPOSITORY}@{RegistryClient(REGISTRY).resolve(tag)}"
        return built[name]

    return build


@pytest.fixture(scope="module")
def v2(variant) -> str:
    return variant("v2", "ENV PATCHPIPE_BUILD_ID=pp-test-v2")


@dataclass
class Target:
    name: str
    url: str
    client: docker.DockerClient
    extra: list[str] = field(default_factory=list)  # other containers to remove afterwards

    def container(self, suffix: str = ""):
        return self.client.api.inspect_container(self.name + suffix)

    def exists(self, suffix: str) -> bool:
        try:
            self.container(suffix)
            return True
        except docker.errors.NotFound:
            return False

    def version(self) -> str:
        return requests.get(f"{self.url}/version", timeout=5).json()["build_id"]


def wait_healthy(client, name: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while client.api.inspect_container(name)["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, f"{name} is not healthy after {seconds}s"
        time.sleep(0.3)


@pytest.fixture
def names(client):
    """Unique pp-test-ctr-* names; every container and network made under them is removed afterwards."""
    prefix = f"pp-test-ctr-{uuid.uuid4().hex[:6]}"
    yield prefix
    for container in client.containers.list(all=True, filters={"name": prefix}):
        container.remove(force=True)
    for network in client.networks.list(names=[prefix + "-net"]):
        network.remove()


@pytest.fixture
def published(client, original, names) -> Target:
    """NAME on demo-web's original digest, publishing 127.0.0.1:<free port> -> 8080, with user settings."""
    name, port = f"{names}-web", free_port()
    client.containers.run(original, name=name, detach=True, ports={"8080/tcp": ("127.0.0.1", port)},
                          environment={"PP_TEST_SETTING": "kept"}, labels={"pp-test.owner": "tests"},
                          restart_policy={"Name": "unless-stopped"})
    wait_healthy(client, name)
    return Target(name, f"http://127.0.0.1:{port}", client)


@pytest.fixture
def behind_proxy(client, original, names, lab) -> Target:
    """NAME on a user-defined network without published ports, reached through the lab's proxy image
    (its own instance, resolving NAME per connection), published on 127.0.0.1:<free port>."""
    name, port, network = f"{names}-web", free_port(), f"{names}-net"
    client.networks.create(network, driver="bridge")
    client.containers.run(original, name=name, detach=True, network=network,
                          restart_policy={"Name": "unless-stopped"})
    proxy_image = client.api.inspect_container(lab.proxy_container)["Config"]["Image"]
    client.containers.run(proxy_image, name=f"{names}-proxy", detach=True, network=network,
                          environment={"LAB_ROUTES": f"{port}={name}:8080"}, ports={f"{port}/tcp": ("127.0.0.1", port)})
    wait_healthy(client, name)
    target = Target(name, f"http://127.0.0.1:{port}", client)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{target.url}/healthz", timeout=2).status_code == 200:
                return target
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the test proxy does not answer"
        time.sleep(0.3)


class RequestLoop:
    """GET /healthz in a loop until stopped, one connection per request, recording every outcome.

    ``timeout`` is the client's patience. Behind the lab's proxy it is 5 s: a connection that races
    the old container's network teardown (Docker removes its interface a moment before its DNS record)
    waits for the proxy's 2 s connect timeout, and is then served by the other address.
    """

    def __init__(self, url: str, timeout: float = 2):
        self.url, self.timeout = url, timeout
        self.results: list[tuple[float, float, str | None]] = []  # (start, end, error or None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            started, error = time.monotonic(), None
            try:
                response = session.get(f"{self.url}/healthz", timeout=self.timeout, headers={"Connection": "close"})
                if response.status_code != 200:
                    error = f"{response.status_code} {response.text!r}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.results.append((started, time.monotonic(), error))
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def errors(self) -> list[str]:
        return [error for _, _, error in self.results if error]

    @property
    def failures(self) -> int:
        return len(self.errors)

    @property
    def longest_gap(self) -> float:
        """The longest time between two successful answers."""
        times = [end for _, end, error in self.results if not error]
        return max((b - a for a, b in zip(times, times[1:])), default=float("inf"))

    def report(self, what: str) -> str:
        slowest = max((end - start for start, end, _ in self.results), default=0)
        text = (f"{what}: {self.failures} of {len(self.results)} requests failed, longest time without an "
                f"answer {self.longest_gap:.2f}s, slowest request {slowest:.2f}s")
        print(f"\n{text} {sorted(set(self.errors))}")
        return text


def deployer(**kwargs) -> DockerContainerDeployer:
    return DockerContainerDeployer(docker.APIClient(), **{"poll_seconds": 0.2, **kwargs})


def test_a_switch_hands_the_published_port_to_the_new_digest_and_keeps_the_old_stopped(published, original, v2):
    with RequestLoop(published.url) as loop:
        rollout = deployer().deploy(published.name, v2, DEADLINE)
        time.sleep(0.5)

    assert (rollout.previous_image, rollout.image, rollout.changed) == (original, v2, True)
    new, kept = published.container(), published.container("-previous")
    assert digest_of(new["Config"]["Image"]) == digest_of(v2)
    assert new["State"]["Running"] and published.version() == "pp-test-v2"
    # The user's settings are carried over; the old image's defaults (PATCHPIPE_BUILD_ID=) are not.
    assert "PP_TEST_SETTING=kept" in new["Config"]["Env"] and "PATCHPIPE_BUILD_ID=" not in new["Config"]["Env"]
    assert new["Config"]["Labels"]["pp-test.owner"] == "tests"
    assert new["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert kept["Config"]["Image"] == original and not kept["State"]["Running"]
    assert kept["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert not published.exists("-next")
    loop.report("host-port handover")
    assert loop.longest_gap < 5


def assert_no_gap(loop: RequestLoop) -> None:
    """Something answered all along. The loop is one client, so at most one request is in flight when
    the old container stops; demo-web exits on SIGTERM without finishing it, and that one may fail."""
    assert loop.longest_gap < 3  # at worst one request waited for the proxy's 2 s connect timeout
    # A gap would show as the proxy's 503 (no backend answers); a request cut short, as a broken connection.
    assert loop.failures <= 1 and not any(error.startswith("503") for error in loop.errors), loop.errors


def test_a_switch_behind_a_proxy_moves_the_name_without_a_gap(behind_proxy, original, v2):
    with RequestLoop(behind_proxy.url, timeout=5) as loop:
        rollout = deployer().deploy(behind_proxy.name, v2, DEADLINE)
        time.sleep(1)

    assert rollout.changed and digest_of(behind_proxy.container()["Config"]["Image"]) == digest_of(v2)
    assert behind_proxy.version() == "pp-test-v2"
    assert behind_proxy.container("-previous")["Config"]["Image"] == original
    loop.report("alias handover")
    assert_no_gap(loop)


def test_a_second_deploy_replaces_the_kept_container(published, original, v2, variant):
    v3 = variant("v3", "ENV PATCHPIPE_BUILD_ID=pp-test-v3")
    deployer().deploy(published.name, v2, DEADLINE)
    deployer().deploy(published.name, v3, DEADLINE)
    assert published.version() == "pp-test-v3"
    assert published.container("-previous")["Config"]["Image"] == v2


def test_deploying_the_digest_already_running_changes_nothing(published, original):
    before = published.container()["Id"]
    rollout = deployer().deploy(published.name, original, DEADLINE)
    assert (rollout.previous_image, rollout.image, rollout.changed) == (original, original, False)
    assert published.container()["Id"] == before and not published.exists("-previous")


def test_a_new_container_that_crashes_fails_the_deploy_and_the_old_one_keeps_serving(published, original, variant):
    crash = variant("crash", "ENV DEMO_FAULT=crash")
    with RequestLoop(published.url) as loop, pytest.raises(DeployError) as failed:
        deployer().deploy(published.name, crash, DEADLINE)
    message = str(failed.value)
    assert f"{published.name}-next (sha256:" in message and "exited with code 1" in message
    assert "crashing on purpose (DEMO_FAULT=crash)" in message  # its last log line
    assert f"{published.name} still runs {original}" in message
    assert loop.failures == 0 and published.version() == "lab-original"
    assert published.container()["Config"]["Image"] == original
    assert not published.exists("-next") and not published.exists("-previous")


def test_a_new_container_that_turns_unhealthy_fails_the_deploy_with_the_health_output(published, original, variant):
    unhealthy = variant("unhealthy", "ENV DEMO_FAULT=unhealthy")
    with pytest.raises(DeployError, match=r"turned unhealthy: health check exited 1: .*503") as failed:
        deployer().deploy(published.name, unhealthy, DEADLINE)
    assert f"{published.name} still runs {original}" in str(failed.value)
    assert published.container()["Config"]["Image"] == original and published.version() == "lab-original"
    assert not published.exists("-next")


def test_a_new_container_not_ready_by_the_deadline_fails_the_deploy(published, original, v2):
    with pytest.raises(DeployError, match=r"was not ready by the deadline \(health starting"):
        deployer().deploy(published.name, v2, 1)
    assert published.container()["Config"]["Image"] == original and published.version() == "lab-original"
    assert not published.exists("-next")


def test_an_image_without_healthcheck_must_keep_running_for_stable_seconds(published, variant):
    nocheck = variant("nocheck", "HEALTHCHECK NONE", "ENV PATCHPIPE_BUILD_ID=pp-test-nocheck")
    started = time.monotonic()
    assert deployer(stable_seconds=2).deploy(published.name, nocheck, DEADLINE).changed
    assert time.monotonic() - started >= 4  # trial and serving container: 2 s each
    assert published.version() == "pp-test-nocheck"


def test_rollback_restarts_the_kept_container_under_the_name(published, original, v2):
    deployer().deploy(published.name, v2, DEADLINE)
    with RequestLoop(published.url) as loop:
        rollout = deployer().rollback(published.name, v2, DEADLINE)

    assert (rollout.previous_image, rollout.image, rollout.changed) == (v2, original, True)
    restored = published.container()
    assert restored["Config"]["Image"] == original and published.version() == "lab-original"
    assert restored["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert not published.exists("-previous") and not published.exists("-failed")
    loop.report("rollback (host ports)")
    # Rolling back again is a no-op: the failed digest is no longer there.
    assert deployer().rollback(published.name, v2, DEADLINE).changed is False


def test_rollback_behind_a_proxy_has_no_gap(behind_proxy, original, v2):
    deployer().deploy(behind_proxy.name, v2, DEADLINE)
    with RequestLoop(behind_proxy.url, timeout=5) as loop:
        deployer().rollback(behind_proxy.name, v2, DEADLINE)
        time.sleep(1)
    assert behind_proxy.version() == "lab-original"
    loop.report("rollback (aliases)")
    assert_no_gap(loop)


def test_a_rollback_whose_kept_container_fails_puts_the_failed_one_back(published, v2, variant, client):
    deployer().deploy(published.name, v2, DEADLINE)
    # Stand-in for a kept container that no longer starts: same port, an image that crashes.
    client.api.remove_container(published.name + "-previous")
    port = int(published.url.rsplit(":", 1)[1])
    client.containers.create(variant("crash", "ENV DEMO_FAULT=crash"), name=published.name + "-previous",
                             ports={"8080/tcp": ("127.0.0.1", port)})
    with pytest.raises(DeployError, match=rf"rollback of {published.name} failed: the kept container "
                                          rf"{published.name}-previous .* exited with code 1; "
                                          rf"{published.name} runs {re.escape(v2)} again"):
        deployer().rollback(published.name, v2, DEADLINE)
    wait_healthy(client, published.name)  # started again, after the kept one crashed
    assert published.container()["Config"]["Image"] == v2 and published.version() == "pp-test-v2"
    assert not published.container("-previous")["State"]["Running"] and not published.exists("-failed")


def test_rollback_without_a_kept_container_says_so(published, original):
    with pytest.raises(DeployError, match=f"no {published.name}-previous container was kept"):
        deployer().rollback(published.name, original, DEADLINE)


def test_a_missing_container_is_named(names, v2):
    with pytest.raises(DeployError, match=f"Docker container '{names}-absent' does not exist"):
        deployer().deploy(f"{names}-absent", v2, DEADLINE)
    with pytest.raises(DeployError, match=f"'{names}-absent' does not exist"):
        deployer().current_image(f"{names}-absent")
