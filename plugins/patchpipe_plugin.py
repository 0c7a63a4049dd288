"""The patchpipe Airflow plugin: the fleet dashboard and its Prometheus metrics on the api-server.

This file sits at the top of the plugins folder because Airflow only looks for ``AirflowPlugin``
classes in files it imports by path, and ``.airflowignore`` keeps it out of ``patchpipe/`` (that
package is imported as a package). Everything it registers lives in ``patchpipe.airflow``; the
pages' content in ``patchpipe.dashboard``.

- ``fastapi_apps``: the dashboard app at ``/patchpipe`` (pages, JSON API, ``/patchpipe/metrics``),
  behind Airflow's own authentication (``patchpipe.airflow.dashboard_auth``).
- ``external_views``: "Patch fleet" in the UI's navigation, showing the fleet page in the UI
  (``url_route``: ``/plugin/patchpipe``). ``href`` is relative so it follows ``[api] base_url``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from patchpipe.airflow.dashboard_app import create_app

URL_PREFIX = "/patchpipe"


class PatchpipePlugin(AirflowPlugin):
    name = "patchpipe"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "patchpipe dashboard"}]
    external_views = [{
        "name": "Patch fleet",
        "href": "patchpipe/",
        "icon": "patchpipe/icon.svg",
        "url_route": "patchpipe",
        "destination": "nav",
        "nav_top_level": True,
    }]
