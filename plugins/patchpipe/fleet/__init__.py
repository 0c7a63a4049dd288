"""The fleet manifest (include/fleet.yaml): which images patchpipe keeps patched, and how.

``load_fleet(path)`` reads and validates a manifest; every problem in it is reported at once, as
``path: message`` with the manifest's own names (``images[0].deploy.production.url: field required``).
The models' attribute docstrings are the configuration reference (``Fleet.model_json_schema()``).

One concept a module: ``models`` (the manifest's shape), ``field_types`` and ``cron`` (checks of
single values), ``raw_checks`` (checks across entries), ``loader`` (YAML in, a Fleet out) and
``problems`` (validation errors as ``path: message`` lines).
"""

from __future__ import annotations

from patchpipe.fleet.field_types import STAGES, Severity, Stage
from patchpipe.fleet.loader import load_fleet, parse_fleet
from patchpipe.fleet.models import (
    AdvisorySettings,
    Analysis,
    Approval,
    Base,
    BuildSpec,
    Defaults,
    Deployments,
    DeployTarget,
    Fleet,
    FleetImage,
    IgnoreEntry,
    KubernetesTarget,
    MetricCheck,
    Policy,
    SmokeCheck,
)
from patchpipe.images.reference import ImageReference

__all__ = [
    "STAGES",
    "AdvisorySettings",
    "Analysis",
    "Approval",
    "Base",
    "BuildSpec",
    "Defaults",
    "DeployTarget",
    "Deployments",
    "Fleet",
    "FleetImage",
    "IgnoreEntry",
    "ImageReference",
    "KubernetesTarget",
    "MetricCheck",
    "Policy",
    "Severity",
    "SmokeCheck",
    "Stage",
    "load_fleet",
    "parse_fleet",
]
