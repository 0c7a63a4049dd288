"""A tiny client of the Prometheus HTTP API: one instant query (GET /api/v1/query) -> one number.

Every way of not getting a number is a PrometheusError with a message that says what and where, so
the metric analysis can fail closed and say why: Prometheus unreachable, a query Prometheus rejects,
no data (an empty result, or NaN such as 0/0 when a service had no traffic), or an ambiguous answer
(several series).
"""

from __future__ import annotations

import math
from typing import Any

import requests

from patchpipe.errors import PatchpipeError


class PrometheusError(PatchpipeError):
    """No usable number came back from Prometheus; the message says why."""


class PrometheusUnreachable(PrometheusError):
    """Nothing answered at the Prometheus URL (or not in time)."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered with an error: a bad query, a timeout inside Prometheus, a wrong URL."""


class PrometheusNoData(PrometheusError):
    """The query matched no series, or its value is NaN."""


class PrometheusClient:
    """``PrometheusClient("http://127.0.0.1:9090").query("up{service='x'}", name="up")`` -> 1.0."""

    def __init__(self, url: str, *, timeout: float = 10, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session or requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def query(self, promql: str, *, name: str = "query", service: str | None = None) -> float:
        """The value of instant query ``promql``: a one-series vector or a scalar.

        ``name`` (the metric check's) and ``service`` (what should be scraped) go into the messages.
        Raises PrometheusUnreachable, PrometheusQueryError or PrometheusNoData.
        """
        endpoint = f"{self.url}/api/v1/query"
        try:
            response = self._session.get(endpoint, params={"query": promql}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusUnreachable(
                f"Prometheus at {self.url} is unreachable: {type(exc).__name__}: {_short(exc)}; "
                f"{name} cannot be measured, so the analysis fails closed") from None
        body = _json(response)
        if body is None or body.get("status") not in ("success", "error"):
            raise PrometheusQueryError(
                f"{endpoint} answered HTTP {response.status_code} without a Prometheus API response "
                f"(is {self.url} a Prometheus?) for {name} (query {promql})")
        if body["status"] == "error":
            raise PrometheusQueryError(
                f"Prometheus rejected the query for {name}: {body.get('errorType', 'error')}: "
                f"{body.get('error', '(no message)')} (HTTP {response.status_code}, query {promql})")
        return _value(body.get("data") or {}, promql, name, service)


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _value(data: dict[str, Any], promql: str, name: str, service: str | None) -> float:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise PrometheusNoData(_no_data(name, promql, service, "the query matched no series"))
        if len(result) > 1:
            labels = [series.get("metric", {}) for series in result[:2] if isinstance(series, dict)]
            raise PrometheusQueryError(
                f"the query for {name} returned {len(result)} series, not one number (e.g. {labels}); "
                f"aggregate it, e.g. with sum(...) (query {promql})")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise PrometheusQueryError(
            f"the query for {name} returned a {kind or 'malformed'} result, not one number; "
            f"use an instant vector or scalar expression (query {promql})")
    try:
        value = float(sample[1])  # [timestamp, "value"]; Prometheus sends the number as text
    except (TypeError, IndexError, ValueError):
        raise PrometheusQueryError(
            f"the answer for {name} has no readable sample: {sample!r} (query {promql})") from None
    if math.isnan(value):
        raise PrometheusNoData(_no_data(name, promql, service, "the value is NaN (e.g. 0/0: no requests in the range)"))
    return value


def _no_data(name: str, promql: str, service: str | None, why: str) -> str:
    scraped = f"is {service} scraped, and did it serve requests?" if service else "is the target scraped?"
    return f"no data for {name} (query {promql}): {why}; {scraped} The analysis fails closed."


def _short(exc: Exception) -> str:
    # urllib3's messages repeat the whole pool repr; the last part says what happened.
    text = str(exc)
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if len(text) > 160 else text
