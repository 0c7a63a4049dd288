"""Who may see the dashboard and the metrics: Airflow's own authentication and authorization.

A FastAPI app that a plugin mounts has no auth of its own (Airflow 3 applies none to it), so every
route here depends on one of these functions:

- ``airflow_user``: the caller's Airflow user, resolved exactly as Airflow's REST API does it
  (``airflow.api_fastapi.core_api.security.get_user``): a ``Authorization: Bearer <JWT>`` header,
  else the ``_token`` cookie the Airflow UI sets at login. No token, an expired one or one that does
  not verify is **401** with ``WWW-Authenticate: Bearer``. (Airflow's own API answers 403 to a token
  that does not verify; here an unverifiable token is no identity, so it is 401 as for none.)
- ``fleet_reader``: that user must be allowed to read the runs of the ``patch_lifecycle`` DAG
  (``is_authorized_dag(GET, RUN)``), asked of whichever auth manager Airflow runs (simple, FAB,
  Keycloak...): the dashboard shows that DAG's history, so whoever may read its runs may read the
  dashboard. Otherwise **403**.
- ``metrics_reader``: Prometheus scrapes with a static bearer token, since it cannot log in and
  Airflow's JWTs expire. The token is the password of the Airflow connection ``patchpipe_metrics``,
  else ``$PATCHPIPE_METRICS_TOKEN``. Any other caller must be a ``fleet_reader``. With neither
  configured, only Airflow users can read the metrics: the endpoint is never anonymous.

Airflow is imported inside the functions: this module is imported wherever Airflow loads plugins
(scheduler, DAG processor, workers), and only the api-server ever calls it.
"""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

DAG_ID = "patch_lifecycle"
METRICS_CONN_ID = "patchpipe_metrics"
METRICS_TOKEN_ENV = "PATCHPIPE_METRICS_TOKEN"

_bearer = HTTPBearer(auto_error=False)


class NotAuthenticated(HTTPException):
    """401: the request carries no Airflow identity. The dashboard shows a sign-in page for it."""

    def __init__(self, detail: str):
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def airflow_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)):
    """The Airflow user of the request; 401 without a valid token."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        return await get_user(request, None, credentials)
    except HTTPException as refused:
        if refused.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise NotAuthenticated(f"not signed in to Airflow ({refused.detail})") from None
        raise


def may_read_fleet(user) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=DAG_ID), user=user)


async def fleet_reader(user=Depends(airflow_user)):
    """The Airflow user, if allowed to read ``patch_lifecycle``'s runs; else 403."""
    if not may_read_fleet(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"Airflow user {user.get_name()!r} may not read the runs of DAG {DAG_ID!r}")
    return user


def scrape_token() -> str | None:
    """The metrics bearer token: connection ``patchpipe_metrics``'s password, else the environment."""
    from airflow.sdk import BaseHook

    try:
        password = BaseHook.get_connection(METRICS_CONN_ID).password
    except Exception:  # AirflowNotFoundException, or a secrets backend that cannot be reached
        password = None
    return password or os.environ.get(METRICS_TOKEN_ENV) or None


async def metrics_reader(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)):
    """Prometheus with the scrape token, or an Airflow user who may read the fleet."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = scrape_token()
        if token and hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            return "prometheus"
    return await fleet_reader(await airflow_user(request, credentials))
