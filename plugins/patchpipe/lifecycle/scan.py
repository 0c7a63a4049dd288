"""Stage 6: scan. Match the current image and the candidate against the advisory store, gate the
candidate by the image's policy (with its OpenVEX documents), and stop a candidate that introduces a blocking finding.

Blocking findings the current image already has are reported but do not stop the candidate (see
``patchpipe.scan.diff``): it still fixes what it fixes, and production would keep them anyway.
"""

from __future__ import annotations

import logging
from datetime import date

from patchpipe.advisories.published import published_dates
from patchpipe.errors import PatchpipeError
from patchpipe.lifecycle.verify import candidate_inventory
from patchpipe.packages.inventory import Inventory
from patchpipe.scan.diff import diff_findings, new_blocking
from patchpipe.scan.match import match
from patchpipe.scan.policy import gate
from patchpipe.scan.priority import prioritized
from patchpipe.scan.vex import load_vex
from patchpipe.scan.vex_match import VexStatements, VexTarget

log = logging.getLogger(__name__)


def scan(svc, name: str, inventoried: dict, patched: dict, today: date, run_id: str) -> dict:
    policy = svc.fleet.policy_for(name)
    statements = load_vex(policy.vex_paths(svc.manifest_dir))  # first: a broken VEX file fails before any work
    current = prioritized(match(svc.engine, Inventory.from_dict(inventoried["inventory"])))
    after = candidate_inventory(svc, patched)
    candidate = prioritized(match(svc.engine, after))
    svc.ledger.record_findings(run_id, name, patched["digest"] or patched["image_id"], candidate,
                               published_dates(svc.engine, candidate), environment="candidate")
    diff = diff_findings(current, candidate)
    result = gate(candidate, policy, today, VexStatements(statements, VexTarget.of(after, patched["candidate"])))
    stopped = new_blocking(diff, result)

    log.info("%s: %d findings before, %d in the candidate: %d fixed, %d still open, %d introduced",
             name, len(current), len(candidate), len(diff.fixed), len(diff.still_open), len(diff.introduced))
    for decision in result.decisions:
        if decision.outcome != "allowed":
            log.info("%s: %s in %s %s: %s", name, decision.finding_id, decision.package, decision.outcome,
                     decision.reason)
    for entry in result.expired_ignores:
        log.warning("%s: ignore entry for %s expired on %s: %s", name, entry.id, entry.expires, entry.reason)
    if stopped:
        listed = "; ".join(f"{d.finding_id} in {d.package}: {d.reason}" for d in stopped)
        raise PatchpipeError(f"{patched['candidate']} introduces {len(stopped)} blocking "
                             f"finding{'s' if len(stopped) > 1 else ''} and is not promoted: {listed}")
    return {
        "candidate": patched["candidate"],
        "findings_before": len(current),
        "findings_after": len(candidate),
        **diff.summary(),
        "gate": {
            "passed": result.passed,
            "decisions": [vars(d) for d in result.decisions if d.outcome != "allowed"],
            "expired_ignores": [entry.id for entry in result.expired_ignores],
        },
    }
