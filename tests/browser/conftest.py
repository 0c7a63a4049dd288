"""The dashboard against a real `airflow api-server`, and in a real headless Chromium.

Every test here is marked ``browser`` (registered in pyproject.toml). They
need no lab: the api-server runs from .venv on a ledger these fixtures fill through the Ledger API
(tests/support/fleet_ledger.py), and Chromium is Debian's ``chromium`` with ``chromium-driver``
(.ci/run installs both). ``make test`` runs them; ``make test-browser`` runs only them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from browser.chromium import chrome, save_screenshot  # noqa: F401  (chrome: a fixture)
from support.api_server import ApiServer, migrate, start_api_server
from support.fleet_ledger import Expected, fill_fleet_ledger

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts" / "dashboard"  # ignored by git
SCRAPE_TOKEN = "scrape-token-for-tests"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class Dashboard:
    server: ApiServer
    expected: dict[str, Expected]
    ledger_url: str


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory) -> Dashboard:
    """An api-server with Airflow's auth on (all_admins off), on a filled ledger.

    The scrape token is the password of connection ``patchpipe_metrics``, given the way any Airflow
    deployment can: an ``AIRFLOW_CONN_*`` variable (the environment secrets backend).
    """
    from patchpipe.db import create_schema, make_engine

    home = tmp_path_factory.mktemp("airflow")
    ledger_url = f"sqlite:///{home / 'patchpipe.db'}"
    engine = make_engine(ledger_url)
    create_schema(engine)
    expected = fill_fleet_ledger(engine)
    engine.dispose()
    migrate(home, ledger_url)
    server = start_api_server(home, ledger_url, scrape_token=SCRAPE_TOKEN)
    yield Dashboard(server, expected, ledger_url)
    server.stop()


@pytest.fixture
def artifacts(capsys):
    """Where screenshots go; each path saved is printed, also when pytest captures output."""
    def save(driver, name: str) -> Path:
        path = save_screenshot(driver, ARTIFACTS, name)
        with capsys.disabled():
            print(f"\nscreenshot: {path}")
        return path

    return save
