"""Reading a local image from the engine's overlay2 storage gives exactly what ``docker save`` gives.

``patchpipe sbom --local`` (``images.local``) reads the layer directories in place when it can, and
falls back to ``docker save``; both must yield the same files for every lab image.
"""

from __future__ import annotations

import docker
import pytest

from patchpipe.images.layers import read_image_files
from patchpipe.images.local import saved_image, stored_layers
from patchpipe.packages.inventory import INVENTORY_SELECTOR

pytestmark = pytest.mark.integration

LAB_IMAGES = ("127.0.0.1:5000/base/debian:bookworm", "127.0.0.1:5000/demo/web:1.0", "127.0.0.1:5000/vendor/app:2.4")


@pytest.fixture(scope="module")
def api(lab):
    client = docker.APIClient()
    yield client
    client.close()


@pytest.mark.parametrize("image", LAB_IMAGES)
def test_the_engines_storage_and_docker_save_give_the_same_files(api, image):
    docker.from_env().images.pull(image)
    stored = stored_layers(api, image)
    assert stored is not None, "the lab's engine uses overlay2 and this test runs as root"
    in_place = read_image_files(stored, INVENTORY_SELECTOR)
    with saved_image(api, image) as layers:
        exported = read_image_files(layers, INVENTORY_SELECTOR)
    assert in_place.files == exported.files
    assert any(path.startswith("var/lib/dpkg/status") for path in in_place.files)
