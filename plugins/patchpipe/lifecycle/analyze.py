"""Stage 8: analyze an environment after its rollout: smoke checks, /version and Prometheus metrics
over the analysis window (``verify.analysis``). A failed analysis fails the stage, which rolls the
environment back."""

from __future__ import annotations

import logging

from patchpipe.verify.analysis import analyze_image

log = logging.getLogger(__name__)


def analyze(svc, name: str, env: str, patched: dict) -> dict:
    result = analyze_image(svc.fleet, name, env, patched["build_id"])
    log.info("%s %s: %s", name, env, result.reason)
    return result.raise_for_failure().to_dict()
