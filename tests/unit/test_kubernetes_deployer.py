"""The Kubernetes deployer at the API boundary: the real kubernetes client against recorded responses.

No cluster can run on this machine. A local HTTP server plays the apps/v1 Deployment endpoints with
the responses in tests/fixtures/k8s/ (see its README for where their shape comes from), so the real
client code path runs: URL building, content types, (de)serialisation into V1Deployment, ApiException.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from patchpipe.deploy.base import DeployError
from patchpipe.deploy.kubernetes import PREVIOUS_IMAGES, ContainerRef, KubernetesDeployer, rollout_status
from patchpipe.fleet.models import KubernetesTarget

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "k8s"
PATH = "/apis/apps/v1/namespaces/patchpipe-staging/deployments/demo-web"


def _image_in(fixture: str) -> str:
    return json.loads((FIXTURES / f"{fixture}.json").read_text())["spec"]["template"]["spec"]["containers"][0]["image"]


OLD, NEW = _image_in("demo-web-complete-old"), _image_in("demo-web-complete-new")
TARGET = KubernetesTarget(namespace="patchpipe-staging", deployment="demo-web", container="web")


@dataclass
class Recorded:
    method: str
    path: str
    content_type: str | None
    body: dict | None


@dataclass
class FakeDeploymentsAPI:
    """Answers GET and PATCH on one Deployment from recorded responses.

    ``reads[n]`` are the GET answers once n PATCHes were received, in order; the last one repeats (a rollout that
    makes no progress looks the same on every poll). ``patches`` answer the PATCHes in order. An answer
    is a fixture name (200) or ``(status, fixture name)``.
    """

    reads: list[list]
    patches: list = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _served: dict = field(default_factory=dict)

    def answer(self, method: str, path: str, content_type: str | None, body: bytes) -> tuple[int, bytes]:
        self.requests.append(Recorded(method, path, content_type, json.loads(body) if body else None))
        if path != PATH:
            return 404, b'{"kind":"Status","code":404,"message":"the server could not find the requested resource"}'
        n_patches = sum(r.method == "PATCH" for r in self.requests)
        if method == "PATCH":
            reply = self.patches[n_patches - 1]
        else:
            phase = self.reads[n_patches]
            index = self._served.get(n_patches, 0)
            self._served[n_patches] = index + 1
            reply = phase[min(index, len(phase) - 1)]
        status, name = reply if isinstance(reply, tuple) else (200, reply)
        return status, (FIXTURES / f"{name}.json").read_bytes()

    @property
    def patch_bodies(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PATCH"]


@pytest.fixture
def serve():
    servers = []

    def start(api: FakeDeploymentsAPI) -> KubernetesDeployer:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._reply()

            def do_PATCH(self):
                self._reply()

            def _reply(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = api.answer(self.command, self.path.split("?")[0],
                                             self.headers.get("Content-Type"), body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        api.url = f"http://127.0.0.1:{server.server_address[1]}"
        configuration = client.Configuration(host=api.url)
        return KubernetesDeployer(client.AppsV1Api(client.ApiClient(configuration)), poll_seconds=0.01)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def assert_image_patch(recorded: Recorded, image: str) -> None:
    assert recorded.content_type == "application/strategic-merge-patch+json"
    assert recorded.body["spec"] == {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
    assert "@sha256:" in recorded.body["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_rollout_is_followed_over_several_polls_until_complete(serve):
    api = FakeDeploymentsAPI(
        reads=[["demo-web-complete-old"],
               ["demo-web-patched", "demo-web-progress-1", "demo-web-progress-2", "demo-web-complete-new"]],
        patches=["demo-web-patched"])
    rollout = serve(api).deploy(TARGET, NEW, deadline_seconds=30)

    assert rollout.to_dict() == {"target": "patchpipe-staging/demo-web:web", "previous_image": OLD,
                                 "image": NEW, "changed": True}
    [patch] = api.patch_bodies
    assert_image_patch(patch, NEW)
    metadata = patch.body["metadata"]
    assert metadata["resourceVersion"] == "48213"  # conditional on the state we read
    assert json.loads(metadata["annotations"][PREVIOUS_IMAGES]) == {"web": {"previous": OLD, "deployed": NEW}}
    assert [r.method for r in api.requests] == ["GET", "PATCH", "GET", "GET", "GET", "GET"]


def test_a_deployment_already_on_the_digest_is_not_patched(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-complete-new"]])
    rollout = serve(api).deploy(TARGET, NEW, deadline_seconds=30)

    assert rollout.changed is False and rollout.image == NEW
    assert [r.method for r in api.requests] == ["GET"]


def test_a_retried_deploy_finishes_waiting_for_the_rollout_it_started(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-progress-1", "demo-web-progress-2", "demo-web-complete-new"]])
    rollout = serve(api).deploy(TARGET, NEW, deadline_seconds=30)

    assert rollout.changed is False and rollout.image == NEW
    assert [r.method for r in api.requests] == ["GET", "GET", "GET"]


def test_a_stuck_rollout_is_rolled_back_and_the_error_quotes_the_controller(serve):
    api = FakeDeploymentsAPI(
        reads=[["demo-web-complete-old"], ["demo-web-progress-1", "demo-web-stuck"],
               ["demo-web-rollback-patched", "demo-web-rolled-back"]],
        patches=["demo-web-patched", "demo-web-rollback-patched"])
    with pytest.raises(DeployError) as failure:
        serve(api).deploy(TARGET, NEW, deadline_seconds=30)

    message = str(failure.value)
    assert "patchpipe-staging/demo-web:web" in message
    assert 'ProgressDeadlineExceeded: ReplicaSet "demo-web-7c6d9f8b5" has timed out progressing.' in message
    assert f"rolled back to {OLD}" in message
    deploy_patch, rollback_patch = api.patch_bodies
    assert_image_patch(deploy_patch, NEW)
    assert_image_patch(rollback_patch, OLD)
    assert rollback_patch.body["metadata"]["resourceVersion"] == "49115"
    assert rollback_patch.body["metadata"]["annotations"][PREVIOUS_IMAGES] is None  # the entry is used up


def test_our_own_deadline_rolls_back_too(serve):
    api = FakeDeploymentsAPI(
        reads=[["demo-web-complete-old"], ["demo-web-progress-1"],
               ["demo-web-rollback-patched", "demo-web-rolled-back"]],
        patches=["demo-web-patched", "demo-web-rollback-patched"])
    with pytest.raises(DeployError, match=r"not complete within 0.2s \(1 out of 2 new replicas have been updated\)"
                                          r".*rolled back to") as failure:
        serve(api).deploy(TARGET, NEW, deadline_seconds=0.2)

    assert OLD in str(failure.value)
    assert_image_patch(api.patch_bodies[1], OLD)


def test_rollback_restores_the_previous_image_from_the_annotation(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-complete-new"], ["demo-web-rollback-patched", "demo-web-rolled-back"]],
                             patches=["demo-web-rollback-patched"])
    rollout = serve(api).rollback("patchpipe-staging/demo-web:web", NEW, deadline_seconds=30)

    assert rollout.to_dict() == {"target": "patchpipe-staging/demo-web:web", "previous_image": NEW,
                                 "image": OLD, "changed": True}
    [patch] = api.patch_bodies
    assert_image_patch(patch, OLD)


def test_rollback_is_a_no_op_when_the_container_no_longer_runs_the_failed_image(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-rolled-back"]])
    rollout = serve(api).rollback(TARGET, NEW, deadline_seconds=30)

    assert rollout.changed is False and rollout.image == OLD
    assert api.patch_bodies == []


def test_rollback_refuses_without_a_record_of_the_previous_image(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-complete-old"]])
    with pytest.raises(DeployError, match=r"cannot roll back patchpipe-staging/demo-web:web: .*"
                                          r"no patchpipe.io/previous-images entry for container 'web'"):
        serve(api).rollback(TARGET, OLD, deadline_seconds=30)
    assert api.patch_bodies == []


def test_a_missing_deployment_is_named(serve):
    api = FakeDeploymentsAPI(reads=[[(404, "status-404-not-found")]])
    with pytest.raises(DeployError, match=r'Deployment patchpipe-staging/demo-web not found '
                                          r'\(deployments.apps "demo-web" not found\)'):
        serve(api).deploy(TARGET, NEW, deadline_seconds=30)


def test_an_unknown_container_lists_the_pod_templates_containers(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-complete-old"]])
    target = KubernetesTarget(namespace="patchpipe-staging", deployment="demo-web", container="app")
    with pytest.raises(DeployError, match=r"Deployment patchpipe-staging/demo-web has no container 'app' "
                                          r"in its pod template \(containers: 'web'\)"):
        serve(api).deploy(target, NEW, deadline_seconds=30)
    assert api.patch_bodies == []


def test_a_concurrent_change_fails_the_patch_without_retrying_blindly(serve):
    api = FakeDeploymentsAPI(reads=[["demo-web-complete-old"]], patches=[(409, "status-409-conflict")])
    with pytest.raises(DeployError, match=r"patchpipe-staging/demo-web changed while patchpipe patched it.*"
                                          r"the object has been modified"):
        serve(api).deploy(TARGET, NEW, deadline_seconds=30)
    assert len(api.patch_bodies) == 1


def test_an_unreachable_api_names_the_deployment():
    configuration = client.Configuration(host="http://127.0.0.1:9")  # discard port: nothing listens
    configuration.retries = 0
    deployer = KubernetesDeployer(client.AppsV1Api(client.ApiClient(configuration)))
    with pytest.raises(DeployError, match=r"cannot read Deployment patchpipe-staging/demo-web: "
                                          r"Kubernetes API unreachable"):
        deployer.current_image(TARGET)


def test_the_airflow_helper_builds_the_deployer_from_a_kubernetes_connection(serve, monkeypatch):
    from patchpipe.airflow.kubernetes import kubernetes_deployer

    api = FakeDeploymentsAPI(reads=[["demo-web-complete-new"]])
    serve(api)
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
    }
    connection = {"conn_type": "kubernetes", "extra": {"kube_config": json.dumps(kubeconfig)}}
    monkeypatch.setenv("AIRFLOW_CONN_PATCHPIPE_K8S_TEST", json.dumps(connection))

    deployer = kubernetes_deployer("patchpipe_k8s_test")

    assert deployer.current_image(TARGET) == NEW
    assert [(r.method, r.path) for r in api.requests] == [("GET", PATH)]


def test_the_airflow_helper_says_which_connection_has_no_cluster(monkeypatch, tmp_path):
    from patchpipe.airflow.kubernetes import kubernetes_deployer
    from patchpipe.errors import PatchpipeError

    monkeypatch.setenv("AIRFLOW_CONN_PATCHPIPE_K8S_EMPTY", json.dumps({"conn_type": "kubernetes"}))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    with pytest.raises(PatchpipeError, match=r"Kubernetes connection 'patchpipe_k8s_empty': no usable cluster"):
        kubernetes_deployer("patchpipe_k8s_empty")


@pytest.mark.parametrize(
    ("fixture", "done", "failed", "message"),
    [
        ("demo-web-complete-old", True, False, "successfully rolled out"),
        ("demo-web-patched", False, False, "observe the new spec"),
        ("demo-web-progress-1", False, False, "1 out of 2 new replicas have been updated"),
        ("demo-web-progress-2", False, False, "1 old replicas are pending termination"),
        ("demo-web-stuck", False, True, "ProgressDeadlineExceeded"),
    ],
)
def test_rollout_status_follows_kubectl(fixture, done, failed, message):
    deployment = client.ApiClient().deserialize(_Response((FIXTURES / f"{fixture}.json").read_text()), "V1Deployment")
    status = rollout_status(deployment)
    assert (status.done, status.failed) == (done, failed)
    assert message in status.message


def test_rollout_status_waits_for_updated_replicas_to_be_available():
    deployment = client.ApiClient().deserialize(_Response((FIXTURES / "demo-web-complete-new.json").read_text()),
                                                "V1Deployment")
    deployment.status.available_replicas = 1
    assert rollout_status(deployment).message == "1 of 2 updated replicas are available"


@pytest.mark.parametrize("text", ["demo-web:web", "ns/demo-web", "/demo-web:web", "ns/:web"])
def test_a_malformed_target_string_is_refused(text):
    with pytest.raises(DeployError, match="expected namespace/deployment:container"):
        ContainerRef.of(text)


@dataclass
class _Response:
    """What ``ApiClient.deserialize`` reads from an HTTP response."""

    data: str
