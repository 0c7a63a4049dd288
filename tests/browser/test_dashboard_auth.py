"""Airflow's own auth protects the plugin: tested on a real api-server, with real tokens.

What enforces it: the dashboard app's routes depend on ``dashboard_auth``, which resolves the user
exactly as Airflow's REST API does (``get_user``: the Bearer header, else the UI's ``_token``
cookie) and then asks the auth manager whether that user may read ``patch_lifecycle``'s runs.
Airflow itself adds nothing to a plugin's app. With ``simple_auth_manager_all_admins`` on, Airflow's
``SimpleAllAdminMiddleware`` puts an admin token on every request before any app sees it, so there
is no unauthenticated request to refuse: the last test shows that, which is why the 401 tests run
with it off.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support.api_server import JWT_SECRET, start_api_server
from support.fleet_ledger import DIGESTS

from conftest import SCRAPE_TOKEN

OTHER_KEY = "not-the-api-server-key-" * 3  # 69 bytes: long enough for HS512
ROUTES = ["/patchpipe/", "/patchpipe/images/vendor-app", "/patchpipe/api/fleet",
          "/patchpipe/api/images/vendor-app", "/patchpipe/metrics"]
# Strings only ledger data contains: an unauthenticated answer must hold none of them.
LEDGER_DATA = ["vendor-app", "demo-web", "billing-api", "CVE-", "patchpipe_open_findings",
               *(d[len("sha256:"):][:12] for digests in DIGESTS.values() for d in digests.values())]


def forged(secret: str, *, expired: bool) -> str:
    """An admin JWT shaped like Airflow's, signed with ``secret``."""
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "teams": [], "aud": "apache-airflow", "nbf": now - 3600,
              "iat": now - 3600, "exp": now - 60 if expired else now + 3600}
    return jwt.encode(claims, secret, algorithm="HS512")


def assert_refused(answer: requests.Response, route: str, what: str) -> None:
    assert answer.status_code == 401, f"{what}: {answer.status_code} {answer.text[:300]}"
    assert answer.headers.get("www-authenticate") == "Bearer", what
    # The sign-in page links back to the requested URL, so the route's own words may appear.
    leaked = [s for s in LEDGER_DATA if s in answer.text and s not in route]
    assert not leaked, f"{what}: the 401 answer shows ledger data {leaked}"


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers_401_without_a_valid_token_and_shows_no_data(dashboard, route):
    url = dashboard.server.url + route
    attempts = {
        "no credentials": {},
        "a browser without the cookie": {"headers": {"Accept": "text/html"}},
        "a bearer that is not a JWT": {"headers": {"Authorization": "Bearer not-a-jwt"}},
        "a JWT signed with another key": {"headers": {"Authorization": f"Bearer {forged(OTHER_KEY, expired=False)}"}},
        "an expired JWT signed with Airflow's key": {
            "headers": {"Authorization": f"Bearer {forged(JWT_SECRET, expired=True)}"}},
        "a forged _token cookie": {"cookies": {"_token": forged(OTHER_KEY, expired=False)}},
        "a wrong scrape token": {"headers": {"Authorization": f"Bearer {SCRAPE_TOKEN}-wrong"}},
    }
    for what, kwargs in attempts.items():
        assert_refused(requests.get(url, timeout=30, **kwargs), route, f"GET {route} with {what}")

    # The control: the same route with a token from Airflow's login answers, with the ledger's data.
    token = dashboard.server.login()
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    assert "vendor-app" in answer.text


def test_a_browser_without_a_session_gets_a_sign_in_link_to_airflow(dashboard):
    answer = requests.get(dashboard.server.url + "/patchpipe/images/vendor-app", headers={"Accept": "text/html"},
                          timeout=30)
    assert answer.status_code == 401
    assert '<a href="/auth/login?next=' in answer.text


def test_prometheus_scrapes_with_the_token_of_connection_patchpipe_metrics(dashboard):
    answer = requests.get(dashboard.server.url + "/patchpipe/metrics",
                          headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(answer.text) for s in family.samples}
    for image, want in dashboard.expected.items():
        for severity, count in (want.open_by_severity or {}).items():
            assert values[("patchpipe_open_findings", (("image", image), ("severity", severity)))] == count
        for environment, count in want.rollbacks.items():
            assert values[("patchpipe_rollbacks_total", (("environment", environment), ("image", image)))] == count


def test_the_plugin_is_registered_with_its_app_and_navigation_entry(dashboard):
    token = dashboard.server.login()
    plugins = requests.get(dashboard.server.url + "/api/v2/plugins", headers={"Authorization": f"Bearer {token}"},
                           timeout=30).json()["plugins"]
    plugin = next(p for p in plugins if p["name"] == "patchpipe")
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/patchpipe"]
    assert plugin["external_views"] == [{
        "name": "Patch fleet", "href": "patchpipe/", "icon": "patchpipe/icon.svg", "icon_dark_mode": None,
        "url_route": "patchpipe", "category": None, "nav_top_level": True, "destination": "nav"}]


def test_with_all_admins_on_airflow_authenticates_every_request_itself(dashboard):
    server = start_api_server(dashboard.server.home, dashboard.ledger_url, all_admins=True, name="all-admins")
    try:
        answer = requests.get(server.url + "/patchpipe/api/fleet", timeout=30)
    finally:
        server.stop()
    assert answer.status_code == 200  # SimpleAllAdminMiddleware made the anonymous request an admin
    assert "vendor-app" in answer.text
