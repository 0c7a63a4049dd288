"""The patch plan: exactly which installed packages move to which newer security version.

An empty plan means the image has nothing to patch: the run records it as a no-op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from patchpipe.packages.versions import compare_deb


@dataclass(frozen=True)
class PackageUpgrade:
    name: str
    installed: str
    target: str
    source: str
    fixes: list[str] = field(default_factory=list)  # the findings (vulnerability ids) the upgrade clears


@dataclass(frozen=True)
class PatchPlan:
    image: str
    source_ref: str
    source_digest: str
    release: str
    package_manager: str
    upgrades: list[PackageUpgrade] = field(default_factory=list)
    why: list[str] = field(default_factory=list)  # in an emergency run: the advisories that made it one

    @property
    def is_empty(self) -> bool:
        return not self.upgrades

    def targets(self) -> dict[str, str]:
        return {u.name: u.target for u in self.upgrades}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PatchPlan":
        upgrades = [PackageUpgrade(**u) for u in data.get("upgrades", [])]
        return cls(**{**data, "upgrades": upgrades})


def plan_upgrades(installed: dict[str, tuple[str, str]], security_versions: dict[str, str]) -> list[PackageUpgrade]:
    """Upgrades for ``installed`` (name -> (version, source)) given the newest security versions."""
    upgrades = []
    for name in sorted(installed):
        version, source = installed[name]
        newest = security_versions.get(name)
        if newest is not None and compare_deb(newest, version) > 0:
            upgrades.append(PackageUpgrade(name=name, installed=version, target=newest, source=source))
    return upgrades
