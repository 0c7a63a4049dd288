"""Inventories of the lab's images agree with what dpkg itself says inside a running container.

Needs the lab (`make lab-up`): the registry at PATCHPIPE_LAB_REGISTRY (default 127.0.0.1:5000) with
base/debian:bookworm, demo/web:1.0 and vendor/app:2.4, and the Docker Engine.
"""

from __future__ import annotations

import os

import docker
import pytest

from patchpipe.images.layers import read_image_files
from patchpipe.images.registry import RegistryClient
from patchpipe.packages.inventory import INVENTORY_SELECTOR, inventory_local_image, inventory_registry_image

pytestmark = pytest.mark.integration

REGISTRY = os.environ.get("PATCHPIPE_LAB_REGISTRY", "127.0.0.1:5000")
LAB_IMAGES = ("base/debian:bookworm", "demo/web:1.0", "vendor/app:2.4")


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def registry():
    with RegistryClient(REGISTRY) as client:
        yield client


def dpkg_query(engine: docker.DockerClient, image: str) -> set[str]:
    output = engine.containers.run(image, ["-W", "-f", "${Package} ${Version}\\n"], entrypoint="dpkg-query",
                                   remove=True, network_disabled=True)
    return set(output.decode().splitlines())


@pytest.mark.parametrize("name", LAB_IMAGES)
def test_inventory_matches_dpkg_in_a_running_container(engine, registry, name):
    digest, inventory = inventory_registry_image(registry, f"{REGISTRY}/{name}")
    pinned = f"{REGISTRY}/{name.split(':')[0]}@{digest}"
    engine.images.pull(pinned)  # exactly the image that was inventoried

    assert (inventory.os.id, inventory.os.version_codename, inventory.package_manager) == ("debian", "bookworm", "dpkg")
    listed = {f"{p.name} {p.version}" for p in inventory.packages}
    assert len(listed) == len(inventory.packages) > 50
    assert listed == dpkg_query(engine, pinned)

    assert inventory_local_image(engine.api, pinned) == inventory


def test_base_image_read_cost(registry):
    # The base image keeps os-release in its first layer, so every layer has to be read, but each
    # only once: the apk path that leads into merged /usr is not chased.
    files = read_image_files(registry.image_layers(f"{REGISTRY}/base/debian:bookworm"), INVENTORY_SELECTOR)
    total = len(registry.get_image_manifest(f"{REGISTRY}/base/debian:bookworm").layers)
    assert files.summary() == f"read {total} of {total} layers"
    assert files.unresolved == {"lib/apk/db/installed"}
