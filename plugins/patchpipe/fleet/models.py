"""The manifest's models, leaves first; their attribute docstrings are the configuration reference."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from patchpipe.errors import PatchpipeError
from patchpipe.fleet.field_types import (
    STAGES,
    AbsolutePath,
    Cron,
    HttpUrl,
    IsoDate,
    Name,
    Owners,
    Regex,
    Severity,
    Stage,
    TagReference,
    Text,
)
from patchpipe.fleet.raw_checks import custom_error, duplicate_name_errors, validate_reporting_also
from patchpipe.images.reference import ImageReference, parse_reference


class _Model(BaseModel):
    # Unknown keys are errors so that a typo never passes silently; attribute docstrings are the docs.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class AdvisorySettings(_Model):
    """Where advisories and fixed packages come from."""

    debian_security_mirror: HttpUrl = "http://deb.debian.org/debian-security"
    """Debian security archive to install fixes from; an air-gapped site points this at its own mirror."""
    debian_releases: list[Annotated[str, Field(pattern=r"^[a-z]+$")]] = ["bookworm"]
    """Debian release codenames whose security suite (`<codename>-security`) is fetched each run."""


class IgnoreEntry(_Model):
    """A vulnerability accepted on purpose, with a reason and an end date."""

    id: Text
    """Vulnerability id as the advisory names it, e.g. CVE-2023-4641."""
    reason: Text
    """Why the vulnerability is accepted; shown next to the finding in reports."""
    expires: IsoDate
    """Last day (YYYY-MM-DD) the entry applies; from the day after, the finding blocks again."""

    def is_active(self, today: date) -> bool:
        return today <= self.expires


class Policy(_Model):
    """Which findings block a release."""

    block_severities: list[Severity] = ["critical", "high"]
    """Severities that block: any of critical, high, medium, low, negligible, unknown."""
    fixable_only: bool = True
    """Block only on findings that have a fixed package version available."""
    ignore: list[IgnoreEntry] = []
    """Accepted vulnerabilities; each needs a reason and an expiry date."""
    vex: list[Text] = []
    """OpenVEX documents (JSON), relative to the manifest's directory; their not_affected statements
    about this image or its packages clear findings, even known-exploited ones."""

    def merged_over(self, base: Policy) -> Policy:
        """This policy's explicitly set keys over ``base``; ``ignore`` entries and ``vex`` documents add
        to the base's.

        An entry here with the same id as one in ``base`` replaces it; a document listed in both is read once.
        """
        own = {key: getattr(self, key) for key in self.model_fields_set - {"ignore", "vex"}}
        ignores = {entry.id: entry for entry in base.ignore} | {entry.id: entry for entry in self.ignore}
        vex = list(dict.fromkeys([*base.vex, *self.vex]))
        return base.model_copy(update={**own, "ignore": list(ignores.values()), "vex": vex})

    def vex_paths(self, base_dir: Path) -> list[Path]:
        """The ``vex`` documents, resolved against ``base_dir`` (the manifest's or policy file's directory)."""
        return [(base_dir / path).resolve() for path in self.vex]


class Defaults(_Model):
    """Settings every image inherits unless it sets its own."""

    policy: Policy = Policy()
    """Policy applied to every image; an image's own policy is merged over it."""
    patch_window: Cron | None = None
    """Cron expression (5 fields, UTC) of the scheduled patch window; unset means manual runs only."""


class Base(_Model):
    """A base image that patchpipe refreshes before the images built on it."""

    name: Name
    """Unique name across bases and images: lowercase letters, digits and '-'."""
    image: TagReference
    """Tag reference of the base image, e.g. 127.0.0.1:5000/base/debian:bookworm."""
    owners: Owners
    """Who is told about this base's patches (at least one)."""

    @property
    def ref(self) -> ImageReference:
        return parse_reference(self.image)


class BuildSpec(_Model):
    """How to rebuild an image from source."""

    context: Text
    """Build context directory, relative to the manifest file's directory."""
    dockerfile: Text = "Dockerfile"
    """Dockerfile path, relative to the build context."""
    base: TagReference
    """Base image the Dockerfile builds FROM; rebuilds use its current, patched digest."""

    @property
    def base_ref(self) -> ImageReference:
        return parse_reference(self.base)

    def context_path(self, manifest_dir: Path) -> Path:
        return (manifest_dir / self.context).resolve()

    def dockerfile_path(self, manifest_dir: Path) -> Path:
        return self.context_path(manifest_dir) / self.dockerfile


class KubernetesTarget(_Model):
    """A container of a Kubernetes Deployment."""

    namespace: Text = "default"
    """Namespace of the Deployment."""
    deployment: Text
    """Name of the Deployment."""
    container: Text
    """Name of the container in the Deployment's pod template whose image is replaced."""


_TARGET_KINDS = ("swarm_service", "docker_container", "kubernetes")


class DeployTarget(_Model):
    """Where one stage of an image runs: exactly one of swarm_service, docker_container, kubernetes."""

    swarm_service: Text | None = None
    """Name of the Docker Swarm service to update."""
    docker_container: Text | None = None
    """Name of the plain Docker container to replace."""
    kubernetes: KubernetesTarget | None = None
    """Kubernetes Deployment container to update."""
    url: HttpUrl
    """Base URL (http or https) the smoke checks and version_path are requested from."""

    @model_validator(mode="wrap")
    @classmethod
    def _exactly_one_target(cls, data: Any, handler: Any) -> DeployTarget:
        # Judged on the raw keys so it is reported even when, say, the url is invalid too.
        given = [kind for kind in _TARGET_KINDS if isinstance(data, dict) and data.get(kind) is not None]
        problems = []
        if isinstance(data, dict) and len(given) != 1:
            found = " and ".join(given) if given else "none"
            problems.append(custom_error((), f"needs exactly one of {', '.join(_TARGET_KINDS)} (got {found})"))
        return validate_reporting_also(cls, data, handler, problems)

    @property
    def kind(self) -> Literal["swarm_service", "docker_container", "kubernetes"]:
        return next(kind for kind in _TARGET_KINDS if getattr(self, kind) is not None)  # type: ignore[return-value]

    def url_for(self, path: str) -> str:
        """``url`` joined with an absolute ``path`` such as a smoke check's."""
        return self.url.rstrip("/") + path


class Deployments(_Model):
    """The two stages every image is deployed to: staging first, then production."""

    staging: DeployTarget
    """Where a patched image is deployed and smoke-checked first."""
    production: DeployTarget
    """Where the image is promoted, by digest, once staging passed."""

    @model_validator(mode="after")
    def _stages_differ(self) -> Deployments:
        staging, production = self.staging, self.production
        if staging.kind == production.kind and getattr(staging, staging.kind) == getattr(production, staging.kind):
            raise ValueError(
                f"staging and production are the same {staging.kind}; a staging deploy would hit production"
            )
        return self

    def __getitem__(self, stage: Stage) -> DeployTarget:
        if stage not in STAGES:
            raise KeyError(stage)
        return getattr(self, stage)


class SmokeCheck(_Model):
    """An HTTP request that must succeed after a deploy."""

    name: Text
    """Name of the check, unique within the image; shown in reports."""
    path: AbsolutePath
    """Path requested from the deploy target's url, starting with '/'."""
    expect_status: int = Field(200, ge=100, le=599)
    """HTTP status the response must have."""
    body_pattern: Regex | None = None
    """Regular expression the response body must match (re.search), if set."""
    timeout_seconds: float = Field(5, gt=0)
    """Seconds to wait for each attempt's response."""
    retries: int = Field(3, ge=0)
    """Further attempts after a failed one before the check fails."""

    @property
    def body_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.body_pattern) if self.body_pattern is not None else None


class FleetImage(_Model):
    """An image patchpipe keeps patched, and where it runs."""

    name: Name
    """Unique name across bases and images: lowercase letters, digits and '-'."""
    kind: Literal["rebuild", "patch"]
    """rebuild: built again from its Dockerfile on the patched base; patch: one layer of package upgrades added."""
    image: TagReference
    """The production tag reference, e.g. 127.0.0.1:5000/demo/web:1.0; patched images are pushed next to it."""
    build: BuildSpec | None = Field(None, validate_default=True)
    """How to rebuild the image; required for kind rebuild, not allowed for kind patch."""
    owners: Owners
    """Who is told about this image's patches and approves promotions (at least one)."""
    deploy: Deployments
    """Deploy targets for the staging and production stages."""
    smoke: list[SmokeCheck] = Field(min_length=1)
    """Checks run against each stage after a deploy; at least one."""
    version_path: AbsolutePath | None = None
    """Path (starting with '/') that answers with the running version, to confirm what is live."""
    policy: Policy | None = None
    """This image's policy; its keys are merged over defaults.policy."""
    patch_window: Cron | None = None
    """Cron expression (5 fields, UTC) replacing defaults.patch_window for this image."""

    @field_validator("build")
    @classmethod
    def _build_matches_kind(cls, build: BuildSpec | None, info: ValidationInfo) -> BuildSpec | None:
        kind = info.data.get("kind")  # absent when kind itself is invalid: that error is reported already
        if kind == "rebuild" and build is None:
            raise ValueError("required when kind is 'rebuild'")
        if kind == "patch" and build is not None:
            raise ValueError("not allowed when kind is 'patch' (a patched image is never rebuilt)")
        return build

    @field_validator("smoke")
    @classmethod
    def _smoke_names_unique(cls, checks: list[SmokeCheck]) -> list[SmokeCheck]:
        seen: set[str] = set()
        for check in checks:
            if check.name in seen:
                raise ValueError(f"check name {check.name!r} is used twice")
            seen.add(check.name)
        return checks

    @property
    def ref(self) -> ImageReference:
        return parse_reference(self.image)

    def effective_policy(self, defaults: Policy) -> Policy:
        return self.policy.merged_over(defaults) if self.policy else defaults

    def build_context_path(self, manifest_dir: Path) -> Path:
        if self.build is None:
            raise PatchpipeError(f"image {self.name!r} is kind {self.kind!r} and has no build context")
        return self.build.context_path(manifest_dir)


class Fleet(_Model):
    """The whole manifest: settings, base images and the images patchpipe keeps patched."""

    version: Literal[1]
    """Manifest format version; this patchpipe reads version 1."""
    advisories: AdvisorySettings = AdvisorySettings()
    """Where advisories and fixed packages come from."""
    defaults: Defaults = Defaults()
    """Policy and patch window every image inherits."""
    bases: list[Base] = []
    """Base images, refreshed before the images built on them."""
    images: list[FleetImage] = Field(min_length=1)
    """The images patchpipe keeps patched; at least one."""
    registries: dict[str, str] = {}
    """Registry host (e.g. `registry.example.org:5000`) -> Airflow connection id holding its login and
    password. Registries not listed are used anonymously."""

    _manifest_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="wrap")
    @classmethod
    def _names_unique(cls, data: Any, handler: Any) -> Fleet:
        # Checked on the raw input so duplicates are reported next to every other problem, at the
        # second occurrence's own path, rather than only once everything else is valid.
        return validate_reporting_also(cls, data, handler, duplicate_name_errors(data))

    @property
    def manifest_dir(self) -> Path:
        """Directory relative paths in the manifest (build contexts) are resolved against."""
        return self._manifest_dir

    def image(self, name: str) -> FleetImage:
        for image in self.images:
            if image.name == name:
                return image
        if any(base.name == name for base in self.bases):
            raise PatchpipeError(f"{name!r} is a base, not an image of the fleet")
        raise PatchpipeError(f"no image named {name!r} in the fleet; known: {', '.join(self.image_names)}")

    def select(self, names: Iterable[str] | None = None) -> list[FleetImage]:
        """The named images in manifest order (all images when ``names`` is None).

        Raises PatchpipeError naming every unknown name.
        """
        if names is None:
            return list(self.images)
        wanted = set(names)
        unknown = sorted(wanted - set(self.image_names))
        if unknown:
            raise PatchpipeError(
                f"no image named {', '.join(map(repr, unknown))} in the fleet; known: {', '.join(self.image_names)}"
            )
        return [image for image in self.images if image.name in wanted]

    @property
    def image_names(self) -> list[str]:
        return [image.name for image in self.images]

    def policy_for(self, image: FleetImage | str) -> Policy:
        """The image's policy merged over defaults.policy; a base has defaults.policy."""
        if isinstance(image, str) and any(base.name == image for base in self.bases):
            return self.defaults.policy
        return self._as_image(image).effective_policy(self.defaults.policy)

    def patch_window_for(self, image: FleetImage | str) -> str | None:
        """The image's patch window, else the default one (None: manual runs only)."""
        return self._as_image(image).patch_window or self.defaults.patch_window

    def build_context_path(self, image: FleetImage | str) -> Path:
        return self._as_image(image).build_context_path(self.manifest_dir)

    def _as_image(self, image: FleetImage | str) -> FleetImage:
        return self.image(image) if isinstance(image, str) else image

