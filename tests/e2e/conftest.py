"""End-to-end runs of the DAGs against the lab (helpers in tests/support/dag_runs.py)."""

from pathlib import Path

import docker
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def docker_api():
    return docker.APIClient()
