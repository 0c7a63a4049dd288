"""A client for one registry over the OCI distribution API.

Reads manifests, configs and blobs, lists tags, and promotes an image by putting its exact manifest
bytes under another tag (no layer moves). Authenticates with HTTP Basic when credentials are given
and follows a Bearer token challenge when the registry sends one. Every failure is a RegistryError
that names the request, the URL, the status and the registry's own message; secrets never appear in
messages or logs.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

from patchpipe.errors import RegistryError
from patchpipe.images.layers import Layer
from patchpipe.images.reference import ImageReference, parse_reference

log = logging.getLogger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MANIFEST_ACCEPT = ", ".join((*INDEX_TYPES, *IMAGE_TYPES))

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise RegistryError(f"platform {text!r} is not os/architecture[/variant], e.g. linux/amd64")
        return cls(*parts)

    def matches(self, other: "Platform") -> bool:
        return (self.os, self.architecture) == (other.os, other.architecture) and (
            self.variant is None or self.variant == other.variant
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry stores it: ``raw`` is the exact bytes, ``digest`` their sha256."""

    media_type: str
    raw: bytes
    digest: str
    content: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def manifests(self) -> list[Descriptor]:
        """The per-platform manifests of an index (empty for an image manifest)."""
        return [_descriptor(d, self.digest) for d in self.content.get("manifests", [])] if self.is_index else []

    @property
    def config(self) -> Descriptor:
        if self.is_index:
            raise RegistryError(f"manifest {self.digest} is an index; pick a platform's manifest first")
        return _descriptor(self.content.get("config"), self.digest)

    @property
    def layers(self) -> list[Descriptor]:
        """The image's layers, bottom (base) first as in the manifest."""
        if self.is_index:
            raise RegistryError(f"manifest {self.digest} is an index; pick a platform's manifest first")
        return [_descriptor(d, self.digest) for d in self.content.get("layers", [])]


def _descriptor(data: object, manifest_digest: str) -> Descriptor:
    try:
        platform = data.get("platform")
        return Descriptor(
            media_type=data["mediaType"],
            digest=data["digest"],
            size=int(data["size"]),
            platform=Platform(platform["os"], platform["architecture"], platform.get("variant")) if platform else None,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"manifest {manifest_digest} holds a malformed descriptor {data!r}: {exc!r}") from None


class RegistryClient:
    """Talks to one registry (``host[:port]``). ``scheme`` defaults to http for loopback hosts and
    https elsewhere."""

    def __init__(
        self,
        registry: str,
        username: str | None = None,
        password: str | None = None,
        *,
        scheme: str | None = None,
        timeout: float = 30,
        session: requests.Session | None = None,
    ):
        if not registry or "/" in registry:
            raise RegistryError(f"registry {registry!r} is not a host[:port]")
        self.registry = registry
        self.scheme = scheme or ("http" if _is_loopback(registry) else "https")
        self.timeout = timeout
        self._basic = (username, password or "") if username else None
        self._bearer: str | None = None
        self._session = session or requests.Session()
        self._base = f"{self.scheme}://{registry}"

    def __repr__(self) -> str:
        user = f"{self._basic[0]}@" if self._basic else ""
        return f"RegistryClient({user}{self._base})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- reading ---

    def ping(self) -> None:
        """Check that the registry answers and accepts our credentials."""
        self._request("GET", "/v2/")

    def resolve(self, ref: ImageReference | str) -> str:
        """The digest ``ref`` points to now (for a multi-platform image, the index's digest)."""
        ref = self._own(ref)
        response = self._request("HEAD", self._manifest_path(ref.repository, ref.reference),
                                 headers={"Accept": MANIFEST_ACCEPT})
        digest = response.headers.get("Docker-Content-Digest", "")
        if _DIGEST.match(digest):
            return digest
        return self.get_manifest(ref).digest

    def get_manifest(self, ref: ImageReference | str) -> Manifest:
        ref = self._own(ref)
        url = self._manifest_path(ref.repository, ref.reference)
        response = self._request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
        raw = response.content
        digest = _sha256(raw)
        expected = ref.digest or response.headers.get("Docker-Content-Digest", "")
        if _DIGEST.match(expected) and expected != digest:
            raise RegistryError(f"manifest of {ref} from {self._base}{url} has digest {digest}, "
                                f"but {expected} was expected")
        try:
            content = json.loads(raw)
        except ValueError as exc:
            raise RegistryError(f"manifest of {ref} from {self._base}{url} is not valid JSON: {exc}") from None
        if not isinstance(content, dict):
            raise RegistryError(f"manifest of {ref} from {self._base}{url} is not a JSON object")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in (*INDEX_TYPES, *IMAGE_TYPES):
            media_type = content.get("mediaType") or media_type
        if media_type not in (*INDEX_TYPES, *IMAGE_TYPES):
            raise RegistryError(f"manifest of {ref} has unsupported media type {media_type!r} "
                                f"(patchpipe reads OCI and Docker v2 manifests)")
        return Manifest(media_type, raw, digest, content)

    def get_image_manifest(self, ref: ImageReference | str, platform: str = "linux/amd64") -> Manifest:
        """The image manifest of ``ref``; for an index, the one for ``platform``."""
        ref = self._own(ref)
        manifest = self.get_manifest(ref)
        if not manifest.is_index:
            return manifest
        wanted = Platform.parse(platform)
        for entry in manifest.manifests:
            if entry.platform is not None and wanted.matches(entry.platform):
                chosen = self.get_manifest(ref.with_digest(entry.digest))
                if chosen.is_index:
                    raise RegistryError(f"{ref}: the {platform} entry {entry.digest} is itself an index")
                return chosen
        offered = sorted({str(e.platform) for e in manifest.manifests if e.platform})
        raise RegistryError(f"{ref} has no manifest for platform {platform}; it offers {', '.join(offered) or 'none'}")

    def get_config(self, ref: ImageReference | str, platform: str = "linux/amd64") -> dict:
        ref = self._own(ref)
        manifest = self.get_image_manifest(ref, platform)
        with self.open_blob(ref.repository, manifest.config.digest) as blob:
            raw = blob.read()
        try:
            config = json.loads(raw)
        except ValueError as exc:
            raise RegistryError(f"config {manifest.config.digest} of {ref} is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise RegistryError(f"config {manifest.config.digest} of {ref} is not a JSON object")
        return config

    def open_blob(self, repository: str, digest: str) -> "BlobReader":
        """A stream of the blob; reading it to the end checks its sha256 against ``digest``."""
        if not _DIGEST.match(digest):
            raise RegistryError(f"blob digest {digest!r} is not sha256:<64 hex>")
        path = f"/v2/{repository}/blobs/{digest}"
        response = self._request("GET", path, stream=True)
        return BlobReader(response, digest, f"{self._base}{path}")

    def image_layers(self, ref: ImageReference | str, platform: str = "linux/amd64") -> list[Layer]:
        """The image's layers, top (newest) first, ready for ``layers.read_image_files``."""
        ref = self._own(ref)
        manifest = self.get_image_manifest(ref, platform)
        return [
            Layer(d.digest, lambda digest=d.digest: self.open_blob(ref.repository, digest), verified=True)
            for d in reversed(manifest.layers)
        ]

    def list_tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        url: str | None = f"{self._base}/v2/{repository}/tags/list"
        while url:
            response = self._request("GET", url)
            try:
                tags.extend(response.json().get("tags") or [])
            except (ValueError, AttributeError) as exc:
                raise RegistryError(f"tag list of {self.registry}/{repository} is not valid JSON: {exc}") from None
            following = response.links.get("next", {}).get("url")
            url = urljoin(url, following) if following else None
            if url and not url.startswith(f"{self._base}/"):  # our credentials go only to our registry
                raise RegistryError(f"tag list of {self.registry}/{repository} continues at {url}, "
                                    f"outside {self._base}")
        return tags

    def tag_exists(self, repository: str, tag: str) -> bool:
        response = self._request("HEAD", self._manifest_path(repository, tag),
                                 headers={"Accept": MANIFEST_ACCEPT}, ok_statuses=(404,))
        return response.status_code != 404

    # --- writing ---

    def copy_manifest(self, repository: str, source_digest: str, tag: str) -> str:
        """Put the manifest ``source_digest`` under ``tag`` in the same repository, byte for byte,
        so the tag points to the very same digest; no layer is pulled or pushed."""
        source = self.get_manifest(ImageReference(self.registry, repository, digest=source_digest))
        response = self._request("PUT", self._manifest_path(repository, tag), data=source.raw,
                                 headers={"Content-Type": source.media_type})
        digest = response.headers.get("Docker-Content-Digest", "")
        if digest != source_digest:
            raise RegistryError(f"PUT {self._base}{self._manifest_path(repository, tag)}: the registry stored "
                                f"digest {digest or '(none reported)'}, not the source {source_digest}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        if not _DIGEST.match(digest):
            raise RegistryError(f"manifests are deleted by digest; {digest!r} is not sha256:<64 hex>")
        self._request("DELETE", self._manifest_path(repository, digest))

    # --- plumbing ---

    def _own(self, ref: ImageReference | str) -> ImageReference:
        ref = parse_reference(ref) if isinstance(ref, str) else ref
        if ref.registry != self.registry:
            raise RegistryError(f"{ref} is on registry {ref.registry}, but this client talks to {self.registry}")
        return ref

    @staticmethod
    def _manifest_path(repository: str, reference: str) -> str:
        return f"/v2/{repository}/manifests/{reference}"

    def _request(self, method: str, path: str, *, headers: dict | None = None, data: bytes | None = None,
                 stream: bool = False, ok_statuses: tuple[int, ...] = ()) -> requests.Response:
        url = path if "://" in path else f"{self._base}{path}"
        response = self._send(method, url, headers, data, stream)
        if response.status_code == 401 and _bearer_challenge(response):
            self._bearer = self._fetch_token(_bearer_challenge(response), url)
            response.close()
            response = self._send(method, url, headers, data, stream)
        if response.ok or response.status_code in ok_statuses:
            return response
        try:
            raise _status_error(self.registry, method, url, response)
        finally:
            response.close()

    def _send(self, method: str, url: str, headers: dict | None, data: bytes | None, stream: bool) -> requests.Response:
        headers = dict(headers or {})
        auth = None
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        elif self._basic:
            auth = self._basic
        log.debug("%s %s", method, url)
        try:
            return self._session.request(method, url, headers=headers, data=data, auth=auth,
                                         stream=stream, timeout=self.timeout)
        except requests.Timeout as exc:
            raise RegistryError(f"registry {self.registry} did not answer {method} {url} "
                                f"within {self.timeout}s: {exc}") from None
        except requests.RequestException as exc:
            raise RegistryError(f"registry {self.registry} is not reachable at {url}: {_reason(exc)}") from None

    def _fetch_token(self, challenge: dict[str, str], url: str) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry} asked for a Bearer token at {url} but named no realm")
        params = {k: challenge[k] for k in ("service", "scope") if k in challenge}
        try:
            response = self._session.get(realm, params=params, auth=self._basic, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(f"token service of {self.registry} is not reachable at {realm}: {_reason(exc)}") from None
        with response:
            if not response.ok:
                raise _status_error(self.registry, "GET", realm, response)
            try:
                body = response.json()
                token = body.get("token") or body.get("access_token")
            except (ValueError, AttributeError):
                token = None
        if not token:
            raise RegistryError(f"token service of {self.registry} at {realm} answered without a token")
        return token


def _status_error(registry: str, method: str, url: str, response: requests.Response) -> RegistryError:
    status = f"{response.status_code} {response.reason or ''}".strip()
    detail = _registry_message(response)
    if response.status_code == 401:
        return RegistryError(f"authentication failed for {registry} (check the credentials for this registry): "
                             f"{method} {url} -> {status}{detail}")
    return RegistryError(f"{method} {url} -> {status}{detail}")


def _registry_message(response: requests.Response) -> str:
    if response.request is not None and response.request.method == "HEAD":
        return ""
    try:
        errors = response.json().get("errors") or []
        text = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError, TypeError):
        text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""


def _bearer_challenge(response: requests.Response) -> dict[str, str] | None:
    header = response.headers.get("WWW-Authenticate", "")
    if not header.lower().startswith("bearer "):
        return None
    return dict(_CHALLENGE_PARAM.findall(header))


def _reason(exc: requests.RequestException) -> str:
    # requests nests the socket error a few levels deep; its innermost text is the useful part.
    cause: BaseException = exc
    while cause.__context__ is not None and not isinstance(cause, ConnectionRefusedError):
        cause = cause.__context__
    return str(cause) if isinstance(cause, OSError) else str(exc)


def _is_loopback(registry: str) -> bool:
    host = registry[1:].split("]")[0] if registry.startswith("[") else registry.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobReader(io.RawIOBase):
    """Streams a blob and checks its sha256 when the end is reached."""

    def __init__(self, response: requests.Response, digest: str, url: str):
        self._response = response
        self._digest = digest
        self._url = url
        self._hash = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._response.raw.read(len(buffer), decode_content=False)
        except Exception as exc:  # urllib3's protocol and timeout errors have no common base we can name
            raise RegistryError(f"reading blob {self._digest} from {self._url} failed after "
                                f"{self._size} bytes: {exc}") from None
        if not data:
            actual = "sha256:" + self._hash.hexdigest()
            if actual != self._digest:
                raise RegistryError(f"blob {self._digest} from {self._url} has digest {actual} "
                                    f"({self._size} bytes): the content does not match its name")
            return 0
        self._hash.update(data)
        self._size += len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()
