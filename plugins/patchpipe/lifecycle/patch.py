"""Stage 4: patch. Build a candidate: rebuild from the Dockerfile on the current base, or add one patch layer.

A candidate already built for the same source, base and plan (a rerun, a backfill) is reused, so no
image is built or pushed twice.
"""

from __future__ import annotations

import logging
from datetime import date

from patchpipe.images import build, candidates
from patchpipe.plan import PatchPlan

log = logging.getLogger(__name__)
REUSE_LOOKBACK = 10  # candidate tags examined for a reusable build


def patch(svc, plan: PatchPlan, run_id: str, day: date, force: bool = False) -> dict:
    """Build (or reuse) the candidate for ``plan``; ``force``: never reuse, build without the cache."""
    target = svc.target(plan.image)
    ref = target.ref
    registry = svc.registry(ref)
    base_ref = base_digest = None
    if getattr(target, "kind", None) == "rebuild":  # bases are always patched in place
        base_ref = target.build.base_ref
        base_digest = svc.registry(base_ref).resolve(base_ref)
    wanted = candidates.plan_hash(plan, base_digest)
    tags = registry.list_tags(ref.repository)

    for tag in [] if force else candidates.candidate_tags_of(ref.tag, tags)[:REUSE_LOOKBACK]:
        labels = registry.get_config(ref.with_tag(tag)).get("config", {}).get("Labels") or {}
        if labels.get(candidates.PLAN_HASH) == wanted:
            log.info("%s: reusing candidate %s built for the same plan", plan.image, tag)
            return _result(plan, ref.with_tag(tag), labels.get(candidates.BUILD_ID, tag), base_digest,
                           image_id=None, digest=registry.resolve(ref.with_tag(tag)))

    candidate = ref.with_tag(candidates.candidate_tag(ref.tag, day, tags))
    build_id = candidate.tag
    labels = candidates.candidate_labels(plan, build_id=build_id, run_id=run_id,
                                         base_name=str(base_ref) if base_ref else None, base_digest=base_digest)
    if base_ref is not None:
        built = build.rebuild(svc.docker, target=candidate, context=svc.manifest_dir / target.build.context,
                              dockerfile=target.build.dockerfile, base=base_ref.with_digest(base_digest),
                              build_id=build_id, labels=labels, nocache=force)
    else:
        source = ref.with_digest(plan.source_digest)
        user = registry.get_config(source).get("config", {}).get("User") or ""
        mirror = str(svc.fleet.advisories.debian_security_mirror).rstrip("/")
        security_source = f"deb {mirror} {plan.release}-security main"
        deployed = hasattr(target, "deploy")  # bases are not deployed and carry no build id
        dockerfile = build.patch_dockerfile(source, plan, security_source=security_source, user=user,
                                            build_id=build_id if deployed else None, labels=labels)
        built = build.build_patch_layer(svc.docker, target=candidate, dockerfile=dockerfile, nocache=force)
    return _result(plan, candidate, build_id, base_digest, image_id=built.image_id, digest=None)


def _result(plan, candidate, build_id, base_digest, *, image_id, digest) -> dict:
    return {"image": plan.image, "candidate": str(candidate), "build_id": build_id, "base_digest": base_digest,
            "image_id": image_id, "digest": digest, "reused": digest is not None}
