"""The OSV query API client against a local server that answers like api.osv.dev, from the real
OSV records in shared/data (the API itself is not reachable from here)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from patchpipe.advisories.osv_query import OsvQueryClient, PackageQuery
from patchpipe.errors import PatchpipeError
from support.http_server import closed_port_url

RECORDS = {p.stem: json.loads(p.read_text())
           for p in (Path(__file__).resolve().parents[3] / "shared/data/advisories/osv-debian").glob("*.json")}
PAGE = 2  # vulns per page, small so paging is exercised


class FakeOsvApi(BaseHTTPRequestHandler):
    """Answers querybatch with the records naming the package in that ecosystem, paged by PAGE."""

    bodies: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOsvApi.bodies.append(body)
        results = []
        for query in body["queries"]:
            ids = sorted(i for i, r in RECORDS.items() if any(
                a.get("package", {}).get("name") == query["package"]["name"]
                and a["package"]["ecosystem"].startswith(query["package"]["ecosystem"].split(":")[0])
                for a in r.get("affected", [])))
            start = int(query.get("page_token") or 0)
            result = {"vulns": [{"id": i} for i in ids[start:start + PAGE]]}
            if start + PAGE < len(ids):
                result["next_page_token"] = str(start + PAGE)
            results.append(result)
        self._send(200, {"results": results})

    def do_GET(self):
        record = RECORDS.get(self.path.rsplit("/", 1)[-1])
        self._send(200, record) if record else self._send(404, {"code": 5, "message": "Bug not found."})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsvApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeOsvApi.bodies = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def expected_ids(name: str) -> list[str]:
    return sorted(i for i, r in RECORDS.items() if any(a.get("package", {}).get("name") == name
                                                       for a in r.get("affected", [])))


def test_batch_query_follows_pages_and_keeps_queries_apart(api):
    vlc, nginx = PackageQuery("Debian:12", "vlc", "3.0.0-1"), PackageQuery("Debian:12", "nginx", "1.0-1")
    found = OsvQueryClient(api).affecting([vlc, nginx])
    assert found[vlc] == expected_ids("vlc") and len(found[vlc]) > PAGE  # four vlc advisories, two pages
    assert found[nginx] == expected_ids("nginx")
    assert FakeOsvApi.bodies[0]["queries"][0] == {"package": {"ecosystem": "Debian:12", "name": "vlc"},
                                                  "version": "3.0.0-1"}
    assert any("page_token" in q for body in FakeOsvApi.bodies[1:] for q in body["queries"])


def test_records_are_fetched_and_parsed_like_the_bulk_archive(api):
    [advisory] = OsvQueryClient(api).advisories(["DSA-3029-1"])
    assert advisory.id == "DSA-3029-1" and advisory.aliases == ("CVE-2014-3616",)
    assert advisory.affected[0].package == "nginx"


def test_an_unknown_id_is_a_clear_error(api):
    with pytest.raises(PatchpipeError, match="v1/vulns/NOPE-1 answered 404"):
        list(OsvQueryClient(api).advisories(["NOPE-1"]))


def test_an_unreachable_api_is_a_clear_error():
    with pytest.raises(PatchpipeError, match="is not reachable"):
        OsvQueryClient(closed_port_url()).affecting([PackageQuery("Debian:12", "openssl", "1")])
