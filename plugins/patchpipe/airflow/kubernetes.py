"""The Kubernetes deployer, built from an Airflow connection through the cncf-kubernetes provider.

The provider's KubernetesHook owns the connection (kubeconfig path or content, in-cluster, context);
patchpipe only asks it for the apps/v1 client. Without a ``kubernetes_default`` connection the hook
falls back to the default kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``), which is where
``kind create cluster`` writes its context.
"""

from __future__ import annotations

from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
from kubernetes.config import ConfigException

from patchpipe.deploy.kubernetes import KubernetesDeployer
from patchpipe.errors import PatchpipeError

DEFAULT_CONN_ID = KubernetesHook.default_conn_name  # "kubernetes_default"


def kubernetes_deployer(conn_id: str = DEFAULT_CONN_ID, poll_seconds: float = 1.0) -> KubernetesDeployer:
    try:
        apps_api = KubernetesHook(conn_id=conn_id).apps_v1_client
    except ConfigException as error:
        raise PatchpipeError(
            f"Kubernetes connection {conn_id!r}: no usable cluster configuration ({error}); create the "
            f"Airflow connection (kube_config_path, kube_config or in_cluster) or a default kubeconfig"
        ) from None
    return KubernetesDeployer(apps_api, poll_seconds=poll_seconds)
