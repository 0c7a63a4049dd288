"""Candidate images: immutable tags that say what happened, and labels that say where from.

A candidate of production tag ``1.0`` patched on 2026-11-24 is ``1.0-patch.20261124.1`` (then .2, ...).
Its labels record the source digest, the base digest and the patched packages, so a rerun finds
the candidate it already built instead of pushing a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

from patchpipe.plan import PatchPlan

LABEL_PREFIX = "io.patchpipe"
SOURCE_DIGEST = f"{LABEL_PREFIX}.source-digest"
PLAN_HASH = f"{LABEL_PREFIX}.plan-hash"
PACKAGES = f"{LABEL_PREFIX}.packages"
BUILD_ID = f"{LABEL_PREFIX}.build-id"
RUN_ID = f"{LABEL_PREFIX}.run-id"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def candidate_tag(production_tag: str, day: date, existing_tags: list[str]) -> str:
    """The next free ``<tag>-patch.<YYYYMMDD>.<n>`` among ``existing_tags``."""
    stem = f"{production_tag}-patch.{day:%Y%m%d}."
    taken = [int(t[len(stem):]) for t in existing_tags if t.startswith(stem) and t[len(stem):].isdigit()]
    return f"{stem}{max(taken, default=0) + 1}"


def candidate_tags_of(production_tag: str, tags: list[str]) -> list[str]:
    """Every candidate tag of ``production_tag``, newest first."""
    pattern = re.compile(rf"^{re.escape(production_tag)}-patch\.(\d{{8}})\.(\d+)$")
    found = [(m.group(1), int(m.group(2)), t) for t in tags if (m := pattern.match(t))]
    return [t for _, _, t in sorted(found, reverse=True)]


def plan_hash(plan: PatchPlan, base_digest: str | None = None) -> str:
    """Identifies the work: same source, base and target versions give the same hash."""
    key = {"source": plan.source_digest, "base": base_digest, "targets": plan.targets()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def candidate_labels(plan: PatchPlan, *, build_id: str, run_id: str, base_name: str | None = None,
                     base_digest: str | None = None) -> dict[str, str]:
    labels = {
        SOURCE_DIGEST: plan.source_digest,
        PLAN_HASH: plan_hash(plan, base_digest),
        PACKAGES: " ".join(f"{u.name}={u.target}" for u in plan.upgrades),
        BUILD_ID: build_id,
        RUN_ID: run_id,
    }
    if base_digest:
        labels[BASE_NAME] = base_name or ""
        labels[BASE_DIGEST] = base_digest
    return labels
