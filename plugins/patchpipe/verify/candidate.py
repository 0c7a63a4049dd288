"""Verify a candidate: every planned package at its planned version, nothing removed or downgraded."""

from __future__ import annotations

from patchpipe.plan import PatchPlan
from patchpipe.errors import PatchpipeError
from patchpipe.packages.versions import compare_deb


class CandidateRejected(PatchpipeError):
    def __init__(self, candidate: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"candidate {candidate} rejected: " + "; ".join(problems))


def verify_candidate(candidate: str, plan: PatchPlan, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Compare package versions (name -> version) before and after; return the changes as text.

    Raises CandidateRejected listing every problem. For a rebuild, packages the new Dockerfile
    build adds are allowed; what the old image had must still be there, at the same or a newer version.
    """
    problems = []
    for upgrade in plan.upgrades:
        got = after.get(upgrade.name)
        if got is None:
            problems.append(f"{upgrade.name} is missing (planned {upgrade.target})")
        elif compare_deb(got, upgrade.target) < 0:
            problems.append(f"{upgrade.name} is at {got}, planned {upgrade.target}")
    for name, version in sorted(before.items()):
        if name not in after:
            problems.append(f"{name} {version} was removed")
        elif compare_deb(after[name], version) < 0:
            problems.append(f"{name} was downgraded from {version} to {after[name]}")
    if problems:
        raise CandidateRejected(candidate, problems)
    return [f"{n} {before[n]} -> {after[n]}" for n in sorted(before) if after.get(n) != before[n]]
