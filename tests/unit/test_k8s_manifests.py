"""include/k8s/: the Kubernetes fleet manifest is valid and agrees with the cluster manifests.

`make e2e-k8s` cannot run here (no cluster), so what can be checked without one is checked here:
every `kubernetes:` target of fleet-k8s.yaml names a Deployment and container that the manifests
create, and its url reaches that Deployment's Service through kind-cluster.yaml's port mappings.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from patchpipe.fleet import load_fleet

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "include" / "k8s"
FLEET = load_fleet(K8S / "fleet-k8s.yaml")
OBJECTS = [doc for path in sorted((K8S / "manifests").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
HOST_PORTS = {m["containerPort"]: (m["listenAddress"], m["hostPort"])
              for node in yaml.safe_load((K8S / "kind-cluster.yaml").read_text())["nodes"]
              for m in node.get("extraPortMappings", [])}
TARGETS = [(image, stage) for image in FLEET.images for stage in ("staging", "production")]


def find(kind: str, namespace: str, name: str) -> dict:
    matches = [o for o in OBJECTS if o["kind"] == kind and o["metadata"].get("namespace") == namespace
               and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {namespace}/{name}: {len(matches)} in include/k8s/manifests"
    return matches[0]


def test_the_kubernetes_fleet_is_valid_and_uses_only_kubernetes_targets():
    assert FLEET.image_names == ["demo-web", "vendor-app"]
    assert all(image.deploy[stage].kind == "kubernetes" for image, stage in TARGETS)
    assert FLEET.build_context_path("demo-web") == (ROOT / "include" / "demo" / "demo-web").resolve()


@pytest.mark.parametrize(("image", "stage"), TARGETS, ids=[f"{i.name}-{s}" for i, s in TARGETS])
def test_each_target_is_a_deployment_the_manifests_create_and_its_url_reaches_it(image, stage):
    environment = image.deploy[stage]
    target = environment.kubernetes
    assert target.namespace == f"patchpipe-{stage}"
    deployment = find("Deployment", target.namespace, target.deployment)
    spec = deployment["spec"]
    [container] = spec["template"]["spec"]["containers"]
    assert container["name"] == target.container
    assert container["image"] == image.image  # kind.sh pins it to the registry digest before applying
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert spec["progressDeadlineSeconds"] == 600

    service = find("Service", target.namespace, target.deployment)
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    url = urlsplit(environment.url)
    assert HOST_PORTS[port["nodePort"]] == (url.hostname, url.port)


def test_namespaces_exist_for_both_stages():
    assert {o["metadata"]["name"] for o in OBJECTS if o["kind"] == "Namespace"} == {
        "patchpipe-staging", "patchpipe-production"}
