"""patch_lifecycle on a real Kubernetes cluster; collected only when PATCHPIPE_K8S_E2E=1.

`make e2e-k8s` sets it after checking that a cluster answers and bringing the demo fleet up on it
(include/k8s/kind.sh). Everywhere else, `make test` included, these modules are not even imported:
no cluster can run on the machine patchpipe is developed on, and a skip would read as "tested".
"""

import os
from pathlib import Path

import pytest

if os.environ.get("PATCHPIPE_K8S_E2E") != "1":
    collect_ignore_glob = ["test_*.py"]


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e_k8s)
