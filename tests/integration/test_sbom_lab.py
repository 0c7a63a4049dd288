"""``patchpipe sbom`` on the lab's images agrees with dpkg inside a running container.

Each image is read three ways (from the registry, from the local engine with ``--local``, and as a
root filesystem exported from a container with ``--rootfs``) and every SBOM must list exactly what
``dpkg-query -W`` lists in that image, with each package's architecture and source package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import docker
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from patchpipe.cli_sbom import add_sbom_command
from patchpipe.errors import PatchpipeError, RegistryError

REGISTRY = os.environ.get("PATCHPIPE_LAB_REGISTRY", "127.0.0.1:5000")
# The immutable originals: other tests and runs patch the moving tags meanwhile.
LAB_IMAGES = ("base/debian:bookworm-lab-original", "demo/web:1.0-lab-original", "vendor/app:2.4-lab-original")
QUERY_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\n"

Row = tuple[str, str, str, str, str]  # name, version, architecture, source name, source version


def run_sbom(*argv: str) -> int:
    """``patchpipe sbom ARGV`` through the command's own parser (patchpipe.cli wires the same function)."""
    parser = argparse.ArgumentParser(prog="patchpipe")
    add_sbom_command(parser.add_subparsers())
    args = parser.parse_args(["sbom", *argv])
    return args.command(args)


def sbom(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert run_sbom(*argv) == 0
    text = capsys.readouterr().out
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return json.loads(text)


def rows(document: dict) -> set[Row]:
    """What the SBOM says of each package, read back from its purl and properties."""
    found = set()
    for component in document["components"]:
        if component["type"] != "library":
            continue
        purl = PackageURL.from_string(component["purl"])
        assert (purl.type, purl.namespace) == ("deb", "debian")
        assert (purl.name, purl.version) == (component["name"], component["version"])
        assert purl.qualifiers["distro"] == "debian-12"
        properties = {p["name"]: p["value"] for p in component["properties"]}
        found.add((component["name"], component["version"], purl.qualifiers["arch"],
                   properties["patchpipe:package:source_name"], properties["patchpipe:package:source_version"]))
    return found


def dpkg_query(engine: docker.DockerClient, image: str) -> set[Row]:
    output = engine.containers.run(image, ["-W", "-f", QUERY_FORMAT], entrypoint="dpkg-query", remove=True,
                                   network_disabled=True)
    return {tuple(line.split("\t")) for line in output.decode().splitlines()}


@pytest.fixture(scope="module")
def pinned(lab, docker_client: docker.DockerClient) -> dict[str, str]:
    """Each lab image's tag -> its repository@digest, pulled into the local engine."""
    result = {}
    for name in LAB_IMAGES:
        with_digest = docker_client.images.get_registry_data(f"{REGISTRY}/{name}").id  # sha256:...
        reference = f"{REGISTRY}/{name.split(':')[0]}@{with_digest}"
        docker_client.images.pull(reference)
        result[name] = reference
    return result


@pytest.mark.parametrize("name", LAB_IMAGES)
def test_registry_sbom_lists_what_dpkg_lists(capsys, docker_client, pinned, name):
    document = sbom(capsys, f"{REGISTRY}/{name}")
    image = document["metadata"]["component"]
    assert (image["type"], image["name"]) == ("container", f"{REGISTRY}/{name}")
    assert pinned[name].endswith("@" + image["version"])

    listed = rows(document)
    assert len(listed) > 50
    assert listed == dpkg_query(docker_client, pinned[name])
    (system,) = [c for c in document["components"] if c["type"] == "operating-system"]
    assert (system["name"], system["version"]) == ("debian", "12")


@pytest.mark.parametrize("name", LAB_IMAGES)
def test_local_and_rootfs_sboms_agree_with_the_registry(capsys, docker_client, pinned, name, tmp_path: Path):
    expected = dpkg_query(docker_client, pinned[name])

    local = sbom(capsys, "--local", pinned[name])
    assert local["metadata"]["component"]["version"] == pinned[name].split("@")[1]
    assert local["metadata"]["component"]["properties"] == [
        {"name": "patchpipe:image:id", "value": docker_client.images.get(pinned[name]).id}]
    assert rows(local) == expected

    root = tmp_path / "rootfs"
    root.mkdir()
    container = docker_client.containers.create(pinned[name], entrypoint=["/bin/true"])
    try:
        with subprocess.Popen(["tar", "-x", "-C", str(root)], stdin=subprocess.PIPE) as tar:
            for chunk in container.export():
                tar.stdin.write(chunk)
            tar.stdin.close()
        assert tar.returncode == 0
    finally:
        container.remove()
    assert (root / "etc/os-release").is_symlink()  # the real layout: os-release is a link into usr/lib
    document = sbom(capsys, "--rootfs", str(root))
    assert document["metadata"]["component"] == {"bom-ref": f"rootfs:{root}", "name": str(root), "type": "file"}
    assert rows(document) == expected


def test_unknown_tag_is_a_registry_error(lab):
    with pytest.raises(RegistryError, match="no-such-tag"):
        run_sbom(f"{REGISTRY}/demo/web:no-such-tag")


def test_image_missing_from_the_local_engine(lab):
    missing = f"{REGISTRY}/demo/web:no-such-tag"
    with pytest.raises(PatchpipeError, match=f"image {missing} is not in the local Docker Engine"):
        run_sbom("--local", missing)
