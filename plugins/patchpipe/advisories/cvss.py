"""CVSS v3.0 / v3.1 base scores computed from a vector string, and the rating a score falls in.

The formulas and weights are those of the CVSS v3.1 specification, section 7 (v3.0 uses the same
weights; its round-up is the same function, which v3.1 only made immune to floating-point error).
Temporal and environmental metrics in a vector are allowed and ignored: only the base score is
computed. CVSS v2 and v4 vectors are not scored (``base_score`` returns None for them).
"""

from __future__ import annotations

import math

from patchpipe.advisories.records import Severity

_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required weighs more when the scope changes.
_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}
_BASE_METRICS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")
_VERSIONS = ("CVSS:3.0", "CVSS:3.1")


def base_score(vector: str) -> float | None:
    """The base score of a CVSS v3.x vector, or None when it is not a complete, valid v3.x vector."""
    metrics = _base_metrics(vector)
    if metrics is None:
        return None
    scope = metrics["S"]
    confidentiality, integrity, availability = (_WEIGHTS[m][metrics[m]] for m in ("C", "I", "A"))
    impact_subscore = 1 - (1 - confidentiality) * (1 - integrity) * (1 - availability)
    if scope == "U":
        impact = 6.42 * impact_subscore
    else:
        impact = 7.52 * (impact_subscore - 0.029) - 3.25 * (impact_subscore - 0.02) ** 15
    exploitability = (
        8.22
        * _WEIGHTS["AV"][metrics["AV"]]
        * _WEIGHTS["AC"][metrics["AC"]]
        * _PRIVILEGES[scope][metrics["PR"]]
        * _WEIGHTS["UI"][metrics["UI"]]
    )
    if impact <= 0:
        return 0.0
    if scope == "U":
        return round_up(min(impact + exploitability, 10))
    return round_up(min(1.08 * (impact + exploitability), 10))


def round_up(value: float) -> float:
    """The smallest one-decimal number >= ``value``, as CVSS v3.1 Appendix A defines it.

    Works on an integer of 1/100,000ths so that e.g. 4.000000000000001 (float noise) gives 4.0.
    """
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10


def severity_for_score(score: float) -> Severity:
    """The CVSS v3 qualitative rating; "None" (0.0) is reported as negligible."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.NEGLIGIBLE


def _base_metrics(vector: str) -> dict[str, str] | None:
    prefix, _, body = vector.strip().partition("/")
    if prefix not in _VERSIONS or not body:
        return None
    metrics: dict[str, str] = {}
    for part in body.split("/"):
        key, separator, value = part.partition(":")
        if not separator or key in metrics:
            return None
        metrics[key] = value
    base = {key: metrics.get(key, "") for key in _BASE_METRICS}
    if base["S"] not in _PRIVILEGES or base["PR"] not in _PRIVILEGES["U"]:
        return None
    if any(base[key] not in weights for key, weights in _WEIGHTS.items()):
        return None
    return base
