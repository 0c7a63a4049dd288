"""Stage 8: smoke test an environment: the manifest's checks, and /version must report the candidate."""

from __future__ import annotations

from patchpipe.verify.smoke import smoke_test


def smoke(svc, name: str, env: str, patched: dict) -> list[dict]:
    target = svc.target(name)
    results = smoke_test(target.deploy[env].url, target.smoke, target.version_path, patched["build_id"])
    return [r.to_dict() for r in results]
