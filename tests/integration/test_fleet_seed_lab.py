"""A generated fleet made real in the lab registry: bases copied, images built on them with a layer each.

Needs the lab (`make lab-up`): its registry with the `-lab-original` tags, and the Docker Engine,
which must pull and run what the registry API alone put together.
"""

from __future__ import annotations

import os

import docker
import pytest

from patchpipe.fleet.generate import generate_fleet, seed_bases, seed_images
from patchpipe.images.layers import FileSelector, read_image_files
from patchpipe.images.registry import RegistryClient
from patchpipe.packages.inventory import inventory_registry_image

pytestmark = pytest.mark.integration

REGISTRY = os.environ.get("PATCHPIPE_LAB_REGISTRY", "127.0.0.1:5000")
SOURCES = (f"{REGISTRY}/base/debian:bookworm-lab-original", f"{REGISTRY}/vendor/app:2.4-lab-original")
NAMESPACE = "test-fleet-seed"  # the same every run: seeding again must write nothing new


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    generated = generate_fleet(4, bases=2, registry=REGISTRY, namespace=NAMESPACE,
                               manifest_dir=tmp_path_factory.mktemp("fleet"))
    seed_bases(generated, SOURCES)
    seed_images(generated)
    return generated


def test_each_image_is_its_base_plus_one_layer_of_its_own(seeded):
    with RegistryClient(REGISTRY) as registry:
        bases = {base.name: base.ref for base in seeded.fleet.bases}
        digests = set()
        for image in seeded.fleet.images:
            base = bases[seeded.base_of[image.name]]
            base_layers = [d.digest for d in registry.get_image_manifest(base).layers]
            layers = [d.digest for d in registry.get_image_manifest(image.ref).layers]
            assert layers[:-1] == base_layers and len(layers) == len(base_layers) + 1
            own = f"etc/patchpipe-fleet/{image.name}"
            files = read_image_files(registry.image_layers(image.ref), FileSelector(paths=(own,)))
            assert files.files == {own: f"{image.name}\n".encode()}
            digest, found = inventory_registry_image(registry, image.ref)
            _, on_base = inventory_registry_image(registry, base)
            assert found == on_base  # nothing installed or removed: a no-op wherever its base is
            digests.add(digest)
    assert len(digests) == len(seeded.fleet.images)


def test_seeding_again_writes_nothing(seeded):
    assert seed_images(seeded) == 0


def test_the_docker_engine_pulls_and_runs_a_seeded_image(seeded):
    image = seeded.fleet.images[0]
    engine = docker.from_env()
    try:
        engine.images.pull(str(image.ref))
        output = engine.containers.run(str(image.ref), ["cat", f"/etc/patchpipe-fleet/{image.name}"],
                                       entrypoint=[], remove=True, network_disabled=True)
        assert output.decode() == f"{image.name}\n"
    finally:
        engine.close()
