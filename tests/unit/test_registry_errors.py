"""How RegistryClient reacts to registry answers, good and bad.

A real registry (the lab's) never sends most of these answers on purpose, so this is the one place a
small scripted HTTP server stands in for it: it answers 401/404/500, broken JSON, wrong digests,
Bearer challenges and paginated tag lists exactly as scripted. The happy paths against a real
registry live in tests/integration/test_registry.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from patchpipe.errors import RegistryError
from patchpipe.images.layers import FileSelector, read_image_files
from patchpipe.images.registry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, RegistryClient

PASSWORD = "s3cret-pw"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ScriptedRegistry:
    """Answers each (method, path) with a scripted (status, headers, body), or with a function of
    the request returning one; records every request it sees."""

    def __init__(self):
        self.routes: dict[tuple[str, str], object] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                scripted.requests.append((self.command, self.path, dict(self.headers)))
                route = scripted.routes.get((self.command, path), (404, {}, b'{"errors":[{"code":"NOT_SCRIPTED"}]}'))
                status, headers, body = route(self) if callable(route) else route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.registry = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.registry}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def manifest(self, repository: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST,
                 digest_header: bool = True) -> None:
        headers = {"Content-Type": media_type}
        if digest_header:
            headers["Docker-Content-Digest"] = digest_of(body)
        self.routes[("GET", f"/v2/{repository}/manifests/{reference}")] = (200, headers, body)
        self.routes[("HEAD", f"/v2/{repository}/manifests/{reference}")] = (200, headers, body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = ScriptedRegistry()
    yield server
    server.close()


def image_manifest(layer_digests=(), config_digest=None) -> bytes:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest or digest_of(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1}
                   for d in layer_digests],
    }).encode()


UNAUTHORIZED = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}'


def test_401_says_authentication_failed_and_never_shows_the_password(fake):
    fake.routes[("GET", "/v2/app/manifests/1.0")] = (401, {"WWW-Authenticate": 'Basic realm="lab"'}, UNAUTHORIZED)
    client = RegistryClient(fake.registry, "patchpipe", PASSWORD)
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{fake.registry}/app:1.0")
    message = str(caught.value)
    assert f"authentication failed for {fake.registry} (check the credentials for this registry)" in message
    assert f"GET {fake.url}/v2/app/manifests/1.0 -> 401 Unauthorized: UNAUTHORIZED: authentication required" in message
    assert PASSWORD not in message and PASSWORD not in repr(client)
    # The credentials were offered, as HTTP Basic.
    sent = fake.requests[-1][2]["Authorization"]
    assert base64.b64decode(sent.split()[1]).decode() == f"patchpipe:{PASSWORD}"


def test_no_credentials_means_no_authorization_header(fake):
    fake.manifest("app", "1.0", image_manifest())
    RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app:1.0")
    assert "Authorization" not in fake.requests[-1][2]


def test_404_names_method_url_status_and_registry_message(fake):
    fake.routes[("GET", "/v2/app/manifests/9.9")] = (
        404, {"Content-Type": "application/json"},
        b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9.9"}}]}',
    )
    with pytest.raises(RegistryError) as caught:
        RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app:9.9")
    assert str(caught.value) == f"GET {fake.url}/v2/app/manifests/9.9 -> 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"


def test_500_with_a_body_that_is_not_json(fake):
    fake.routes[("GET", "/v2/app/tags/list")] = (500, {}, b"<html>\n  upstream   exploded\n</html>")
    with pytest.raises(RegistryError) as caught:
        RegistryClient(fake.registry).list_tags("app")
    assert str(caught.value) == f"GET {fake.url}/v2/app/tags/list -> 500 Internal Server Error: <html> upstream exploded </html>"


def test_head_errors_carry_the_status(fake):
    fake.routes[("HEAD", "/v2/app/manifests/1.0")] = (503, {}, b"")
    with pytest.raises(RegistryError, match=r"HEAD .*/v2/app/manifests/1.0 -> 503 Service Unavailable$"):
        RegistryClient(fake.registry).resolve(f"{fake.registry}/app:1.0")


def test_manifest_that_is_not_json(fake):
    fake.manifest("app", "1.0", b"{this is not json")
    with pytest.raises(RegistryError, match=rf"manifest of {fake.registry}/app:1.0 from .* is not valid JSON"):
        RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app:1.0")


def test_manifest_of_an_unknown_media_type(fake):
    body = json.dumps({"schemaVersion": 1, "name": "app"}).encode()
    fake.manifest("app", "1.0", body, media_type="application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(RegistryError, match=rf"manifest of {fake.registry}/app:1.0 has unsupported media type "
                                            r"'application/vnd.docker.distribution.manifest.v1\+prettyjws'"):
        RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app:1.0")


def test_media_type_falls_back_to_the_document(fake):
    body = image_manifest()
    fake.manifest("app", "1.0", body, media_type="application/json")
    assert RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app:1.0").media_type == OCI_MANIFEST


def test_manifest_fetched_by_digest_must_hash_to_it(fake):
    claimed = digest_of(b"something else")
    fake.manifest("app", claimed, image_manifest(), digest_header=False)
    with pytest.raises(RegistryError, match=rf"has digest {digest_of(image_manifest())}, but {claimed} was expected"):
        RegistryClient(fake.registry).get_manifest(f"{fake.registry}/app@{claimed}")


def test_blob_with_wrong_content_fails_when_read_to_the_end(fake):
    claimed = digest_of(b"the real layer")
    fake.routes[("GET", f"/v2/app/blobs/{claimed}")] = (200, {}, b"a forged layer")
    with RegistryClient(fake.registry).open_blob("app", claimed) as blob:
        assert blob.read(4) == b"a fo"
        with pytest.raises(RegistryError, match=rf"blob {claimed} from {fake.url}/v2/app/blobs/{claimed} "
                                                rf"has digest {digest_of(b'a forged layer')}"):
            blob.read()


def test_forged_layer_fails_the_file_read(fake):
    # Reading a layer drains it, so a blob that does not match its digest never yields files.
    import gzip
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("etc/os-release")
        info.size = 8
        tar.addfile(info, io.BytesIO(b"ID=evil\n"))
    forged = gzip.compress(buffer.getvalue())
    claimed = digest_of(b"the layer that was pushed")
    fake.manifest("app", "1.0", image_manifest([claimed]))
    fake.routes[("GET", f"/v2/app/blobs/{claimed}")] = (200, {}, forged)
    layers = RegistryClient(fake.registry).image_layers(f"{fake.registry}/app:1.0")
    with pytest.raises(RegistryError, match="does not match its name"):
        read_image_files(layers, FileSelector(paths=("etc/os-release",)))


def test_connection_refused(fake):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RegistryClient(f"127.0.0.1:{port}", "patchpipe", PASSWORD)
    with pytest.raises(RegistryError) as caught:
        client.list_tags("app")
    message = str(caught.value)
    assert message.startswith(f"registry 127.0.0.1:{port} is not reachable at http://127.0.0.1:{port}/v2/app/tags/list: ")
    assert "Connection refused" in message
    assert PASSWORD not in message


def test_timeout(fake):
    def slow(handler):
        threading.Event().wait(1.0)
        return 200, {}, b"{}"

    fake.routes[("GET", "/v2/")] = slow
    with pytest.raises(RegistryError, match=rf"registry {fake.registry} did not answer GET {fake.url}/v2/ within 0.2s"):
        RegistryClient(fake.registry, timeout=0.2).ping()


def test_resolve_uses_the_digest_header_or_hashes_the_manifest(fake):
    body = image_manifest()
    fake.manifest("app", "1.0", body)
    fake.manifest("app", "2.0", body, digest_header=False)
    client = RegistryClient(fake.registry)
    assert client.resolve(f"{fake.registry}/app:1.0") == digest_of(body)
    assert client.resolve(f"{fake.registry}/app:2.0") == digest_of(body)
    assert [r[0] for r in fake.requests] == ["HEAD", "HEAD", "GET"]
    accept = fake.requests[0][2]["Accept"]
    assert all(t in accept for t in (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST))


def test_index_picks_the_platforms_manifest(fake):
    amd64, arm64 = image_manifest([digest_of(b"amd64")]), image_manifest([digest_of(b"arm64")])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(arm64), "size": len(arm64),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": OCI_MANIFEST, "digest": digest_of(amd64), "size": len(amd64),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    fake.manifest("app", "1.0", index, media_type=OCI_INDEX)
    fake.manifest("app", digest_of(amd64), amd64)
    fake.manifest("app", digest_of(arm64), arm64)
    client = RegistryClient(fake.registry)
    assert client.get_image_manifest(f"{fake.registry}/app:1.0").digest == digest_of(amd64)
    chosen = client.get_image_manifest(f"{fake.registry}/app:1.0", platform="linux/arm64")
    assert [d.digest for d in chosen.layers] == [digest_of(b"arm64")]
    with pytest.raises(RegistryError, match="has no manifest for platform linux/s390x; it offers linux/amd64, linux/arm64/v8"):
        client.get_image_manifest(f"{fake.registry}/app:1.0", platform="linux/s390x")


def test_list_tags_follows_pagination(fake):
    def page(handler):
        last = parse_qs(urlsplit(handler.path).query).get("last", [None])[0]
        if last is None:
            return 200, {"Link": '</v2/app/tags/list?last=b&n=2>; rel="next"'}, b'{"name":"app","tags":["a","b"]}'
        if last == "b":
            return 200, {"Link": '</v2/app/tags/list?last=d&n=2>; rel="next"'}, b'{"name":"app","tags":["c","d"]}'
        return 200, {}, b'{"name":"app","tags":["e"]}'

    fake.routes[("GET", "/v2/app/tags/list")] = page
    assert RegistryClient(fake.registry).list_tags("app") == ["a", "b", "c", "d", "e"]


def test_repository_without_tags(fake):
    fake.routes[("GET", "/v2/app/tags/list")] = (200, {}, b'{"name":"app","tags":null}')
    assert RegistryClient(fake.registry).list_tags("app") == []


def test_copy_manifest_checks_the_digest_the_registry_reports(fake):
    body = image_manifest()
    fake.manifest("app", digest_of(body), body)
    fake.routes[("PUT", "/v2/app/manifests/prod")] = (201, {"Docker-Content-Digest": digest_of(b"rewritten")}, b"")
    with pytest.raises(RegistryError, match=rf"stored digest {digest_of(b'rewritten')}, not the source {digest_of(body)}"):
        RegistryClient(fake.registry).copy_manifest("app", digest_of(body), "prod")
    put = [r for r in fake.requests if r[0] == "PUT"][0]
    assert put[2]["Content-Type"] == OCI_MANIFEST


def test_tag_exists(fake):
    fake.manifest("app", "1.0", image_manifest())
    client = RegistryClient(fake.registry)
    assert client.tag_exists("app", "1.0") is True
    assert client.tag_exists("app", "nope") is False


def test_reference_on_another_registry_is_refused(fake):
    with pytest.raises(RegistryError, match=f"registry.example.com/app:1 is on registry registry.example.com, "
                                            f"but this client talks to {fake.registry}"):
        RegistryClient(fake.registry).resolve("registry.example.com/app:1")


@pytest.mark.parametrize(("registry", "scheme"), [
    ("127.0.0.1:5000", "http"), ("127.0.0.5", "http"), ("localhost:5000", "http"), ("[::1]:5000", "http"),
    ("registry.example.com", "https"), ("10.0.0.1:5000", "https"), ("localhost.example.com:5000", "https"),
])
def test_scheme_is_http_only_for_loopback(registry, scheme):
    assert RegistryClient(registry).scheme == scheme


def test_scheme_can_be_overridden():
    assert RegistryClient("127.0.0.1:5000", scheme="https").scheme == "https"


# --- Bearer tokens -------------------------------------------------------------------------------


def bearer_registry(fake: ScriptedRegistry, token: str = "tok-123") -> None:
    """/token hands out ``token`` for patchpipe's basic credentials; the registry wants it."""
    challenge = f'Bearer realm="{fake.url}/token",service="lab",scope="repository:app:pull"'

    def token_service(handler):
        query = parse_qs(urlsplit(handler.path).query)
        basic = "Basic " + base64.b64encode(f"patchpipe:{PASSWORD}".encode()).decode()
        if handler.headers.get("Authorization") != basic:
            return 401, {}, UNAUTHORIZED
        assert query == {"service": ["lab"], "scope": ["repository:app:pull"]}
        return 200, {}, json.dumps({"token": token}).encode()

    def manifest(handler):
        if handler.headers.get("Authorization") != f"Bearer {token}":
            return 401, {"WWW-Authenticate": challenge}, UNAUTHORIZED
        return 200, {"Content-Type": OCI_MANIFEST}, image_manifest()

    fake.routes[("GET", "/token")] = token_service
    fake.routes[("GET", "/v2/app/manifests/1.0")] = manifest


def test_bearer_challenge_is_answered_with_a_token(fake):
    bearer_registry(fake)
    client = RegistryClient(fake.registry, "patchpipe", PASSWORD)
    assert client.get_manifest(f"{fake.registry}/app:1.0").media_type == OCI_MANIFEST
    client.get_manifest(f"{fake.registry}/app:1.0")
    paths = [r[1].split("?")[0] for r in fake.requests]
    # One challenge, one token, then the token is reused.
    assert paths == ["/v2/app/manifests/1.0", "/token", "/v2/app/manifests/1.0", "/v2/app/manifests/1.0"]


def test_bearer_token_refused_for_wrong_credentials(fake):
    bearer_registry(fake)
    client = RegistryClient(fake.registry, "patchpipe", "wrong-" + PASSWORD)
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(f"{fake.registry}/app:1.0")
    message = str(caught.value)
    assert f"authentication failed for {fake.registry}" in message and f"GET {fake.url}/token -> 401" in message
    assert PASSWORD not in message


def test_session_is_used_as_given(fake):
    fake.manifest("app", "1.0", image_manifest())
    session = requests.Session()
    session.headers["User-Agent"] = "patchpipe-test"
    RegistryClient(fake.registry, session=session).get_manifest(f"{fake.registry}/app:1.0")
    assert fake.requests[-1][2]["User-Agent"] == "patchpipe-test"
