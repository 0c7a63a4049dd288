"""Read an image held by the local Docker Engine, through ``docker save``, without running it.

``docker save`` is one tar stream whose index (``manifest.json``) may come last, so it is spooled to
a temporary file, which is removed when the ``with`` block ends. Both layouts are understood: the
legacy one of Docker 20.10 (``<id>/layer.tar``) and the OCI layout of Docker 25+ (``blobs/sha256/``,
``index.json``).
"""

from __future__ import annotations

import contextlib
import json
import tarfile
import tempfile
from typing import Iterator

import docker.errors
import requests
import urllib3.exceptions

from patchpipe.errors import LayerError, PatchpipeError
from patchpipe.images.layers import FileSelector, ImageFiles, Layer, read_image_files

_SPOOL_CHUNK = 1 << 20
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


@contextlib.contextmanager
def saved_image(api: docker.APIClient, image: str) -> Iterator[list[Layer]]:
    """The layers of ``image`` (name, reference or id) in the local engine, top first; they can be
    opened until the block ends."""
    with tempfile.TemporaryFile(prefix="patchpipe-save-") as spool:
        try:
            stream = api.get_image(image, chunk_size=_SPOOL_CHUNK)
            for chunk in stream:
                spool.write(chunk)
        except docker.errors.NotFound:
            raise PatchpipeError(f"image {image} is not in the local Docker Engine") from None
        except docker.errors.APIError as exc:
            raise PatchpipeError(f"the Docker Engine could not export image {image}: {exc.explanation or exc}") from None
        except (docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise PatchpipeError(f"the Docker Engine is not reachable to export image {image}: {exc}") from None
        spool.seek(0)
        try:
            archive = tarfile.open(fileobj=spool, mode="r:")
        except tarfile.TarError as exc:
            raise LayerError(f"docker save of {image} is not a tar archive: {exc}") from None
        with archive:
            yield saved_layers(archive, image)


def saved_layers(archive: tarfile.TarFile, image: str) -> list[Layer]:
    """The layers listed by a ``docker save`` archive (random access), top first."""
    names = set(archive.getnames())
    if "manifest.json" in names:
        return _legacy_layers(archive, image)
    if "index.json" in names:
        return _oci_layers(archive, image)
    raise LayerError(f"docker save of {image} has neither manifest.json nor index.json")


def read_local_image_files(api: docker.APIClient, image: str, selector: FileSelector) -> ImageFiles:
    with saved_image(api, image) as layers:
        return read_image_files(layers, selector)


def _legacy_layers(archive: tarfile.TarFile, image: str) -> list[Layer]:
    entries = _json_member(archive, "manifest.json", image)
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise LayerError(f"docker save of {image}: manifest.json should describe exactly one image")
    paths = entries[0].get("Layers") or []
    config = _json_member(archive, entries[0].get("Config", ""), image)
    # Name layers by their diff id (sha256 of the plain tar) where the config gives them.
    diff_ids = config.get("rootfs", {}).get("diff_ids", []) if isinstance(config, dict) else []
    names = diff_ids if len(diff_ids) == len(paths) else paths
    return [_member_layer(archive, path, name, image) for path, name in reversed(list(zip(paths, names)))]


def _oci_layers(archive: tarfile.TarFile, image: str) -> list[Layer]:
    document = _json_member(archive, "index.json", image)
    # An index may nest: follow the first manifest down to an image manifest (docker save holds one image).
    for _ in range(4):
        manifests = document.get("manifests") if isinstance(document, dict) else None
        if not manifests or not isinstance(manifests[0], dict):
            break
        document = _json_member(archive, _blob_path(manifests[0].get("digest", "")), image)
        if isinstance(document, dict) and document.get("mediaType") not in _INDEX_TYPES and "layers" in document:
            digests = [layer.get("digest", "") for layer in document["layers"]]
            return [_member_layer(archive, _blob_path(d), d, image) for d in reversed(digests)]
    raise LayerError(f"docker save of {image}: index.json leads to no image manifest")


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _member_layer(archive: tarfile.TarFile, path: str, name: str, image: str) -> Layer:
    try:
        member = archive.getmember(path)
    except KeyError:
        raise LayerError(f"docker save of {image} lists layer {path} but holds no such entry") from None

    def open_layer():
        stream = archive.extractfile(member)  # follows the symlinks docker uses for repeated layers
        if stream is None:
            raise LayerError(f"docker save of {image}: layer entry {path} is not a file")
        return stream

    return Layer(name, open_layer)


def _json_member(archive: tarfile.TarFile, path: str, image: str) -> object:
    try:
        stream = archive.extractfile(path)
        return json.load(stream)
    except (KeyError, AttributeError):
        raise LayerError(f"docker save of {image} has no {path}") from None
    except ValueError as exc:
        raise LayerError(f"docker save of {image}: {path} is not valid JSON: {exc}") from None
