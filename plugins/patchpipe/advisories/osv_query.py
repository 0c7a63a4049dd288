"""OSV's query API, for targeted look-ups: which advisories affect these exact packages?

``POST /v1/querybatch`` answers, per query, the ids of the vulnerabilities affecting that package at
that version (paged with ``next_page_token``); ``GET /v1/vulns/<id>`` gives each full record, parsed
with the same code as the bulk archives. The bulk archives stay the store's source of truth; this is
for a quick answer about a handful of packages (and where a site mirrors only the API).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests

from patchpipe.advisories.osv import InvalidOsvRecord, advisory_from_osv
from patchpipe.advisories.records import Advisory
from patchpipe.errors import PatchpipeError

OSV_API = "https://api.osv.dev"
BATCH_LIMIT = 1000  # queries per querybatch request (the API's documented maximum)


@dataclass(frozen=True)
class PackageQuery:
    ecosystem: str  # OSV spelling, e.g. "Debian:12", "Alpine:v3.20"
    name: str
    version: str

    def to_json(self, page_token: str | None = None) -> dict:
        query = {"package": {"ecosystem": self.ecosystem, "name": self.name}, "version": self.version}
        if page_token:
            query["page_token"] = page_token
        return query


class OsvQueryClient:
    def __init__(self, base: str = OSV_API, session: requests.Session | None = None, timeout: float = 30):
        self.base = base.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    def affecting(self, queries: Iterable[PackageQuery]) -> dict[PackageQuery, list[str]]:
        """The ids of the advisories affecting each queried package version."""
        pending = list(queries)
        found: dict[PackageQuery, list[str]] = {query: [] for query in pending}
        tokens: dict[PackageQuery, str | None] = {query: None for query in pending}
        while pending:
            batch, pending = pending[:BATCH_LIMIT], pending[BATCH_LIMIT:]
            answer = self._post("/v1/querybatch", {"queries": [q.to_json(tokens[q]) for q in batch]})
            results = answer.get("results")
            if not isinstance(results, list) or len(results) != len(batch):
                raise PatchpipeError(f"{self.base}/v1/querybatch: expected {len(batch)} results, got {results!r:.200}")
            for query, result in zip(batch, results):
                found[query].extend(vuln["id"] for vuln in (result or {}).get("vulns", []))
                if token := (result or {}).get("next_page_token"):
                    tokens[query] = token
                    pending.append(query)
        return found

    def advisories(self, ids: Iterable[str]) -> Iterator[Advisory]:
        """Each record, parsed like the bulk archives' (withdrawn records are left out)."""
        for advisory_id in dict.fromkeys(ids):
            url = f"{self.base}/v1/vulns/{advisory_id}"
            try:
                parsed = advisory_from_osv(self._request("GET", url))
            except InvalidOsvRecord as error:
                raise PatchpipeError(f"{url}: not a valid OSV record: {error}") from None
            if parsed is not None:
                yield parsed

    def _post(self, path: str, body: dict) -> dict:
        return self._request("POST", self.base + path, json=body)

    def _request(self, method: str, url: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise PatchpipeError(f"OSV API {url} is not reachable: {error}") from None
        if response.status_code != 200:
            raise PatchpipeError(f"OSV API {url} answered {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
        except ValueError:
            raise PatchpipeError(f"OSV API {url} answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise PatchpipeError(f"OSV API {url} answered JSON that is not an object")
        return answer
