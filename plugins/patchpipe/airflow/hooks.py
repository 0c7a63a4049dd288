"""PatchpipeHook: turns Airflow connections into the core's Services.

- ``patchpipe_db``: the ledger and advisory store (any SQLAlchemy URL); without it ``PATCHPIPE_DB``
  or a SQLite file under AIRFLOW_HOME.
- ``docker_default`` (optional): the Docker Engine, through the docker provider's DockerHook; without
  it ``DOCKER_HOST`` or the local socket.
- ``kubernetes_default`` (optional, for ``kubernetes`` deploy targets): the cluster, through the
  cncf-kubernetes provider's KubernetesHook; without it the default kubeconfig.
- one connection per private registry, named in the manifest's ``registries`` (login and password).

The core, the docker provider and the manifest's models are imported when a hook is used, not with
this module: every parse of the DAG files imports it (through the operators), and they are most of
an import's cost.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from sqlalchemy import URL

from patchpipe import db, settings
from patchpipe.errors import PatchpipeError

if TYPE_CHECKING:
    from patchpipe.lifecycle.services import Services


def _kubernetes_deployer(*args, **kwargs):
    # Imported when a kubernetes target is deployed: the provider's client takes about a second to
    # import, which every parse of the DAG files would otherwise pay.
    from patchpipe.airflow.kubernetes import kubernetes_deployer

    return kubernetes_deployer(*args, **kwargs)


def _connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException, or no Airflow metadata at all
        return None


# Airflow's connection types for the databases patchpipe supports -> SQLAlchemy's driver names.
_DRIVERS = {"sqlite": "sqlite", "postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def sqlalchemy_url(conn) -> str:
    """The SQLAlchemy URL of an Airflow connection. Not ``conn.get_uri()``: it percent-encodes a
    SQLite path (``sqlite:///%2Ftmp%2Fx.db``) and names PostgreSQL ``postgres://``, which SQLAlchemy
    rejects. A type outside ``_DRIVERS`` (say ``postgresql+psycopg``) is taken as the driver name."""
    driver = _DRIVERS.get(conn.conn_type, conn.conn_type)
    if driver == "sqlite":
        return f"sqlite:///{conn.host or conn.schema}"
    url = URL.create(driver, username=conn.login or None, password=conn.password or None, host=conn.host or None,
                     port=conn.port, database=conn.schema or None)
    return url.render_as_string(hide_password=False)


class PatchpipeHook(BaseHook):
    conn_name_attr = "patchpipe_db_conn_id"
    default_conn_name = "patchpipe_db"
    hook_name = "patchpipe"

    def __init__(self, patchpipe_db_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.patchpipe_db_conn_id = patchpipe_db_conn_id

    def database_url(self) -> str:
        conn = _connection(self.patchpipe_db_conn_id)
        return sqlalchemy_url(conn) if conn else db.database_url()

    def services(self, fleet_path: str | None = None) -> Services:
        from patchpipe.fleet import load_fleet
        from patchpipe.lifecycle.services import Services

        fleet = load_fleet(fleet_path or settings.fleet_path())
        engine = db.make_engine(self.database_url())
        db.create_schema(engine)
        return Services(
            fleet=fleet,
            manifest_dir=fleet.manifest_dir,
            engine=engine,
            docker_factory=self._docker_client,
            kubernetes_factory=_kubernetes_deployer,
            credentials=self._registry_credentials(fleet),
            deploy_deadline_seconds=settings.deploy_deadline_seconds(),
        )

    @staticmethod
    def _docker_client():
        from airflow.providers.docker.hooks.docker import DockerHook

        docker_conn_id = "docker_default" if _connection("docker_default") else None
        base_url = os.environ.get("DOCKER_HOST", "unix://var/run/docker.sock")
        return DockerHook(docker_conn_id=docker_conn_id, base_url=base_url).api_client

    @staticmethod
    def _registry_credentials(fleet) -> dict[str, tuple[str, str]]:
        credentials = {}
        for host, conn_id in fleet.registries.items():
            conn = _connection(conn_id)
            if conn is None:
                raise PatchpipeError(f"registry {host}: Airflow connection {conn_id!r} does not exist")
            credentials[host] = (conn.login, conn.password)
        return credentials
