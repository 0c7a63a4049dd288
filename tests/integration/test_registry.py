"""RegistryClient and layer reading against the lab's real registries and the real Docker Engine.

The test image is made here: `docker import` of a small root file system (os-release behind a
symlink, a dpkg status, and /bin/rm with the libraries it needs), then `docker build` on top of it
with a RUN that deletes a file (Docker writes a real whiteout) and a COPY that replaces the dpkg
status. It is pushed to the lab registry under test/ and deleted afterwards.

Environment: PATCHPIPE_LAB_REGISTRY (default 127.0.0.1:5000), PATCHPIPE_LAB_AUTH_REGISTRY (default
127.0.0.1:5001) and PATCHPIPE_LAB_AUTH_PASSWORD (default patchpipe-lab), as include/lab/lab.sh sets them up.
"""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path

import docker
import pytest
import requests

from patchpipe.errors import RegistryError
from patchpipe.images.layers import FileSelector, read_image_files
from patchpipe.images.local import read_local_image_files
from patchpipe.images.registry import DOCKER_MANIFEST, RegistryClient

pytestmark = pytest.mark.integration

REGISTRY = os.environ.get("PATCHPIPE_LAB_REGISTRY", "127.0.0.1:5000")
AUTH_REGISTRY = os.environ.get("PATCHPIPE_LAB_AUTH_REGISTRY", "127.0.0.1:5001")
AUTH_PASSWORD = os.environ.get("PATCHPIPE_LAB_AUTH_PASSWORD", "patchpipe-lab")
REPOSITORY = "test/layers"

OS_RELEASE = b'PRETTY_NAME="Patchpipe Test 1"\nID=patchpipe-test\nVERSION_ID="1"\n'
STATUS_V1 = b"Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n"
STATUS_V2 = b"Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-2\n"
SELECTION = FileSelector(paths=("etc/os-release", "var/lib/dpkg/status", "etc/doomed"))


def _root_fs() -> bytes:
    """A tiny root file system that can run /bin/rm (dynamically linked against the host's libc)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add("usr/lib/os-release", OS_RELEASE)
        link = tarfile.TarInfo("etc/os-release")
        link.type, link.linkname = tarfile.SYMTYPE, "../usr/lib/os-release"
        tar.addfile(link)
        add("etc/doomed", b"deleted by the RUN layer\n")
        add("var/lib/dpkg/status", STATUS_V1)
        add("bin/rm", Path("/bin/rm").read_bytes(), 0o755)
        add("lib64/ld-linux-x86-64.so.2", Path("/lib64/ld-linux-x86-64.so.2").read_bytes(), 0o755)
        add("lib/x86_64-linux-gnu/libc.so.6", Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes(), 0o755)
    return buffer.getvalue()


def _build_context(base: str) -> io.BytesIO:
    dockerfile = f'FROM {base}\nRUN ["/bin/rm", "/etc/doomed"]\nCOPY status /var/lib/dpkg/status\n'.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("status", STATUS_V2)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def pushed(engine):
    """(reference, digest) of the test image in the lab registry; removed afterwards."""
    run = uuid.uuid4().hex[:10]
    base = f"patchpipe-test/rootfs:{run}"
    engine.api.import_image_from_data(_root_fs(), repository="patchpipe-test/rootfs", tag=run)
    image, _ = engine.images.build(fileobj=_build_context(base), custom_context=True, rm=True,
                                   tag=f"{REGISTRY}/{REPOSITORY}:{run}")
    reference = f"{REGISTRY}/{REPOSITORY}:{run}"
    for line in engine.images.push(f"{REGISTRY}/{REPOSITORY}", tag=run, stream=True, decode=True):
        assert "error" not in line, line
    digest = engine.images.get(reference).attrs["RepoDigests"][0].split("@")[1]
    yield reference, digest
    with RegistryClient(REGISTRY) as client:
        client.delete_manifest(REPOSITORY, digest)  # untags every tag of it, the promoted one too
    engine.images.remove(reference, force=True)
    engine.images.remove(base, force=True)


@pytest.fixture
def client():
    with RegistryClient(REGISTRY) as registry:
        yield registry


def test_resolve_and_manifest(client, pushed):
    reference, digest = pushed
    assert client.resolve(reference) == digest
    manifest = client.get_manifest(reference)
    assert (manifest.digest, manifest.media_type) == (digest, DOCKER_MANIFEST)
    assert len(manifest.layers) == 3
    assert client.get_image_manifest(reference).digest == digest


def test_config(client, pushed):
    reference, _ = pushed
    config = client.get_config(reference)
    assert len(config["rootfs"]["diff_ids"]) == 3
    assert any("/bin/rm" in step.get("created_by", "") for step in config["history"])


def test_the_build_really_wrote_a_whiteout(client, pushed):
    # Guards the next test: the RUN layer (second from the top) must hold Docker's own whiteout.
    reference, _ = pushed
    run_layer = client.get_image_manifest(reference).layers[1]
    with client.open_blob(REPOSITORY, run_layer.digest) as blob:
        with tarfile.open(fileobj=blob, mode="r|gz") as tar:
            names = [member.name for member in tar]
    assert "etc/.wh.doomed" in names


def test_read_files_from_the_registry(client, pushed):
    reference, _ = pushed
    result = read_image_files(client.image_layers(reference), SELECTION)
    assert result.files == {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": STATUS_V2}
    # etc/os-release links to usr/lib/os-release, which SELECTION does not name: a second pass.
    assert result.summary() == "read 3 of 3 layers (6 layer reads, following links)"
    with_target = FileSelector(paths=(*SELECTION.paths, "usr/lib/os-release"))
    assert read_image_files(client.image_layers(reference), with_target).summary() == "read 3 of 3 layers"


def test_reading_stops_at_the_top_layer_when_it_holds_everything(client, pushed):
    reference, _ = pushed
    result = read_image_files(client.image_layers(reference), FileSelector(paths=("var/lib/dpkg/status",)))
    assert result.files == {"var/lib/dpkg/status": STATUS_V2}
    assert result.summary() == "read 1 of 3 layers"


def test_read_files_from_the_local_engine(engine, pushed):
    reference, _ = pushed
    result = read_local_image_files(engine.api, reference, SELECTION)
    assert result.files == {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": STATUS_V2}


def test_blob_streams_and_checks_its_digest(client, pushed):
    reference, _ = pushed
    layer = client.get_image_manifest(reference).layers[0]
    with client.open_blob(REPOSITORY, layer.digest) as blob:
        size = sum(len(chunk) for chunk in iter(lambda: blob.read(65536), b""))
    assert size == layer.size


def test_copy_manifest_promotes_without_moving_layers(pushed):
    reference, digest = pushed
    seen: list[tuple[str, str]] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, **_: seen.append((response.request.method, response.url)))
    promoted = reference.rsplit(":", 1)[1] + "-promoted"
    with RegistryClient(REGISTRY, session=session) as client:
        assert client.tag_exists(REPOSITORY, promoted) is False
        seen.clear()
        assert client.copy_manifest(REPOSITORY, digest, promoted) == digest
        assert not any("/blobs/" in url for _, url in seen), seen
        assert [method for method, _ in seen] == ["GET", "PUT"]
        assert client.resolve(f"{REGISTRY}/{REPOSITORY}:{promoted}") == digest
        assert client.resolve(reference) == digest
        assert {reference.rsplit(":", 1)[1], promoted} <= set(client.list_tags(REPOSITORY))
        assert client.tag_exists(REPOSITORY, promoted) is True


def test_missing_tag_is_a_404_with_the_registrys_message(client):
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{REGISTRY}/{REPOSITORY}:no-such-tag")
    assert f"GET http://{REGISTRY}/v2/{REPOSITORY}/manifests/no-such-tag -> 404 Not Found: MANIFEST_UNKNOWN" in str(caught.value)


def test_delete_manifest(engine, client):
    # An image of its own, so deleting it cannot disturb the other tests.
    run = uuid.uuid4().hex[:10]
    reference = f"{REGISTRY}/{REPOSITORY}:{run}-delete"
    engine.api.import_image_from_data(_tiny_tar(run), repository=f"{REGISTRY}/{REPOSITORY}", tag=f"{run}-delete")
    try:
        for line in engine.images.push(f"{REGISTRY}/{REPOSITORY}", tag=f"{run}-delete", stream=True, decode=True):
            assert "error" not in line, line
        digest = client.resolve(reference)
        client.delete_manifest(REPOSITORY, digest)
        assert client.tag_exists(REPOSITORY, f"{run}-delete") is False
        with pytest.raises(RegistryError, match="-> 404 Not Found: MANIFEST_UNKNOWN"):
            client.get_manifest(f"{REGISTRY}/{REPOSITORY}@{digest}")
    finally:
        engine.images.remove(reference, force=True)


def _tiny_tar(text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("run-id")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


# --- the basic-auth registry ---------------------------------------------------------------------


def test_wrong_password_is_an_authentication_failure_that_hides_the_password():
    wrong = AUTH_PASSWORD + "-not"
    with RegistryClient(AUTH_REGISTRY, "patchpipe", wrong) as client:
        with pytest.raises(RegistryError) as caught:
            client.tag_exists(REPOSITORY, "anything")
    message = str(caught.value)
    assert f"authentication failed for {AUTH_REGISTRY} (check the credentials for this registry)" in message
    assert "401 Unauthorized" in message
    assert wrong not in message and AUTH_PASSWORD not in message


def test_no_credentials_for_the_auth_registry():
    with RegistryClient(AUTH_REGISTRY) as client, pytest.raises(RegistryError) as caught:
        client.ping()
    assert f"GET http://{AUTH_REGISTRY}/v2/ -> 401 Unauthorized: UNAUTHORIZED: authentication required" in str(caught.value)


def test_right_password_works():
    with RegistryClient(AUTH_REGISTRY, "patchpipe", AUTH_PASSWORD) as client:
        client.ping()
        assert client.tag_exists(REPOSITORY, "no-such-tag") is False
        with pytest.raises(RegistryError, match="-> 404 Not Found: NAME_UNKNOWN"):
            client.list_tags("test/never-pushed")
