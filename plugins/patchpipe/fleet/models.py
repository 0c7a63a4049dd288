"""The manifest's models, leaves first; their attribute docstrings are the configuration reference."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

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


def _names_unique(items: list, what: str) -> list:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"{what} {item.name!r} is used twice")
        seen.add(item.name)
    return items


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


# --- post-deploy analysis ---------------------------------------------------------------------------

QUERY_PLACEHOLDERS = ("service", "image", "environment", "interval")
"""What a metric query may contain in braces: ``{service}`` (the deploy target's Swarm service,
container or Deployment name), ``{image}`` (the fleet image's name), ``{environment}`` (staging or
production) and ``{interval}`` (the query range, a PromQL duration such as ``30s``)."""

# A placeholder is a bare word in braces. PromQL's own braces always hold label matchers
# (name="value"), never a bare word, so they pass through untouched; no brace doubling needed.
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_JINJA_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

PROMETHEUS_URL_ENV = "PATCHPIPE_PROMETHEUS_URL"
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
MIN_QUERY_RANGE_SECONDS = 30


def _check_query_template(text: str) -> str:
    jinja = _JINJA_PLACEHOLDER.search(text)
    if jinja:
        raise ValueError(f"write placeholders in single braces, {{{jinja.group(1)}}}, not {jinja.group(0)}")
    unknown = [name for name in _PLACEHOLDER.findall(text) if name not in QUERY_PLACEHOLDERS]
    if unknown:
        allowed = ", ".join(f"{{{name}}}" for name in QUERY_PLACEHOLDERS)
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; a query may use {allowed}")
    return text


def _promql_string(value: str) -> str:
    """``value`` made safe inside a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_duration(seconds: float) -> str:
    """A PromQL duration: 30 -> '30s', 2.5 -> '2500ms'."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


QueryTemplate = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_check_query_template)
]


class MetricCheck(_Model):
    """A Prometheus query whose value must stay within bounds at every analysis iteration."""

    name: Name
    """Name of the metric check, e.g. request-success-rate; a metric of the same name as an inherited one
    (built in, or from defaults.analysis) is merged over it, so an image can change only a bound."""
    query: QueryTemplate | None = None
    """PromQL instant query that returns one number; may use {service}, {image}, {environment} and
    {interval} (the query range, e.g. 30s). Required unless a metric of this name is inherited."""
    min: float | None = None
    """Lowest passing value (inclusive), e.g. 99 for a success rate in percent."""
    max: float | None = None
    """Highest passing value (inclusive), e.g. 500 for a latency in milliseconds."""
    enabled: bool = True
    """false drops an inherited metric of this name, e.g. for an app that exposes no such metric."""

    @model_validator(mode="after")
    def _bounds_in_order(self) -> MetricCheck:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value could pass")
        return self

    def merged_over(self, base: MetricCheck) -> MetricCheck:
        """This metric's explicitly set keys over ``base`` (an inherited metric of the same name)."""
        return base.model_copy(update={key: getattr(self, key) for key in self.model_fields_set})

    def render(self, *, service: str, image: str, environment: str, interval: str) -> str:
        """The query with its placeholders filled in (values escaped for PromQL strings)."""
        if self.query is None:
            raise PatchpipeError(f"metric {self.name!r} has no query (and inherits none)")
        values = {"service": service, "image": image, "environment": environment, "interval": interval}
        return _PLACEHOLDER.sub(lambda match: _promql_string(values[match.group(1)]), self.query)

    def judge(self, value: float) -> str:
        """Empty when ``value`` is within the bounds, else what is wrong, e.g. '95.2 < min 99'."""
        if math.isnan(value):
            return "no value (NaN)"
        if self.min is not None and value < self.min:
            return f"{value:g} < min {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value:g} > max {self.max:g}"
        return ""

    @property
    def bound(self) -> str:
        """The bounds as text: '>= 99', '<= 500' or '>= 1, <= 2'."""
        parts = [f">= {self.min:g}"] if self.min is not None else []
        parts += [f"<= {self.max:g}"] if self.max is not None else []
        return ", ".join(parts) or "no bound"


_SELECT = 'service="{service}", environment="{environment}"'
_COUNTED = 'path!~"/metrics|/healthz"'  # Prometheus' scrapes and the health check are not traffic

DEFAULT_METRICS: tuple[MetricCheck, ...] = (
    MetricCheck(
        name="request-success-rate",
        query=(
            f'sum(rate(http_requests_total{{{_SELECT}, {_COUNTED}, code!~"5.."}}[{{interval}}]))'
            f" / sum(rate(http_requests_total{{{_SELECT}, {_COUNTED}}}[{{interval}}])) * 100"
        ),
        min=99,
    ),
    MetricCheck(
        name="request-duration",
        query=(
            "histogram_quantile(0.99, sum by (le) ("
            f"rate(http_request_duration_seconds_bucket{{{_SELECT}}}[{{interval}}]))) * 1000"
        ),
        max=500,
    ),
)
"""Flagger's built-in checks: the percentage of non-5xx responses (without /metrics and /healthz) at
least 99, and the p99 request duration in milliseconds at most 500."""


class Analysis(_Model):
    """The analysis after each deploy, Flagger-style: every check runs once per interval, and when
    failure_threshold iterations have failed the deploy is rolled back; otherwise it is promoted."""

    interval_seconds: float = Field(5, gt=0)
    """Seconds between iterations; every smoke check, the version check and every metric runs once per iteration."""
    iterations: int = Field(6, ge=1)
    """Number of iterations; the analysis window is interval_seconds x iterations."""
    failure_threshold: int = Field(2, ge=1)
    """Failed iterations that stop the analysis and roll back (Flagger's threshold); at most iterations."""
    prometheus_url: HttpUrl | None = None
    """Prometheus HTTP API the metric queries go to; unset: $PATCHPIPE_PROMETHEUS_URL, else http://127.0.0.1:9090."""
    query_range_seconds: float | None = Field(None, gt=0)
    """Range {interval} stands for in metric queries (rate(...[{interval}])); unset: interval_seconds,
    but at least 30 s, so that a rate() spans several scrapes."""
    metrics: list[MetricCheck] = []
    """Metric checks, merged by name over the inherited ones (request-success-rate >= 99 and
    request-duration <= 500 built in, then defaults.analysis.metrics)."""
    traffic_per_second: float = Field(5, ge=0)
    """Requests per second patchpipe sends to the smoke checks' paths while it analyses (as Flagger's
    load tester does), so a quiet environment still has metrics; 0 sends none."""

    @field_validator("metrics")
    @classmethod
    def _metric_names_unique(cls, metrics: list[MetricCheck]) -> list[MetricCheck]:
        return _names_unique(metrics, "metric name")

    @model_validator(mode="after")
    def _threshold_reachable(self) -> Analysis:
        # Only when both are set here: an image may set one and inherit the other (checked by the Fleet).
        if {"failure_threshold", "iterations"} <= self.model_fields_set:
            problem = self._threshold_problem()
            if problem:
                raise ValueError(problem)
        return self

    def _threshold_problem(self) -> str:
        if self.failure_threshold > self.iterations:
            return (f"failure_threshold {self.failure_threshold} is more than iterations {self.iterations}: "
                    "the analysis could never fail")
        return ""

    def merged_over(self, base: Analysis) -> Analysis:
        """This block's explicitly set keys over ``base``; metrics merge by name."""
        own = {key: getattr(self, key) for key in self.model_fields_set - {"metrics"}}
        metrics = {metric.name: metric for metric in base.metrics}
        for metric in self.metrics:
            metrics[metric.name] = metric.merged_over(metrics[metric.name]) if metric.name in metrics else metric
        return base.model_copy(update={**own, "metrics": list(metrics.values())})

    def resolved(self, environ: Mapping[str, str] | None = None) -> Analysis:
        """This block over the built-in metrics, with prometheus_url filled in (from ``environ``,
        default os.environ). Idempotent; raises PatchpipeError when a metric has no query or no bound."""
        merged = self.merged_over(Analysis(metrics=list(DEFAULT_METRICS)))
        environ = os.environ if environ is None else environ
        url = merged.prometheus_url or environ.get(PROMETHEUS_URL_ENV) or DEFAULT_PROMETHEUS_URL
        problems = merged._problems()
        if problems:
            raise PatchpipeError("analysis settings: " + "; ".join(f"{where}: {what}" for where, what in problems))
        return merged.model_copy(update={"prometheus_url": url})

    def _problems(self) -> list[tuple[str, str]]:
        """(path below this block, message) of every problem of a merged block."""
        problems = []
        threshold = self._threshold_problem()
        if threshold:
            problems.append(("failure_threshold", threshold))
        for metric in self.metrics:
            if not metric.enabled:
                continue
            if metric.query is None:
                known = ", ".join(m.name for m in DEFAULT_METRICS)
                problems.append((f"metrics.{metric.name}.query",
                                 f"field required: no inherited metric named {metric.name!r} (built in: {known})"))
            elif metric.min is None and metric.max is None:
                problems.append((f"metrics.{metric.name}", "needs min or max: a bound the value must stay within"))
            elif metric.min is not None and metric.max is not None and metric.min > metric.max:
                problems.append((f"metrics.{metric.name}",
                                 f"min {metric.min:g} is above max {metric.max:g}: no value could pass"))
        return problems

    @property
    def active_metrics(self) -> list[MetricCheck]:
        """The metric checks that run (enabled ones)."""
        return [metric for metric in self.metrics if metric.enabled]

    @property
    def window_seconds(self) -> float:
        """interval_seconds x iterations: how long a passing analysis takes."""
        return self.interval_seconds * self.iterations

    @property
    def query_range(self) -> str:
        """What {interval} stands for in queries, as a PromQL duration."""
        seconds = self.query_range_seconds or max(self.interval_seconds, MIN_QUERY_RANGE_SECONDS)
        return promql_duration(seconds)


class Defaults(_Model):
    """Settings every image inherits unless it sets its own."""

    policy: Policy = Policy()
    """Policy applied to every image; an image's own policy is merged over it."""
    patch_window: Cron | None = None
    """Cron expression (5 fields, UTC) of the scheduled patch window; unset means manual runs only."""
    patch_window_hours: float = Field(4, gt=0)
    """Hours a patch window stays open after its cron fires; scheduled runs patch an image only then."""
    analysis: Analysis = Analysis()
    """Post-deploy analysis every image inherits; an image's own analysis block is merged over it."""


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
    max_latency_ms: float | None = Field(None, gt=0)
    """Slowest passing response in milliseconds, if set; a slower answer fails the attempt."""

    @property
    def body_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.body_pattern) if self.body_pattern is not None else None


class Approval(_Model):
    """An owner's approval in the Airflow UI (Required Actions) before the image reaches production."""

    timeout_minutes: int = Field(60, gt=0)
    """Minutes to wait for an answer; without one the promotion is rejected (the candidate stays in staging)."""


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
    analysis: Analysis | None = None
    """This image's post-deploy analysis; its keys are merged over defaults.analysis, its metrics by name."""
    approval: Approval | None = None
    """Ask an owner to approve each promotion to production; unset: promote as soon as staging passed."""

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
        return _names_unique(checks, "check name")

    @property
    def ref(self) -> ImageReference:
        return parse_reference(self.image)

    def effective_policy(self, defaults: Policy) -> Policy:
        return self.policy.merged_over(defaults) if self.policy else defaults

    def effective_analysis(self, defaults: Analysis) -> Analysis:
        return self.analysis.merged_over(defaults) if self.analysis else defaults

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
    """Policy, patch window and post-deploy analysis every image inherits."""
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
        fleet = validate_reporting_also(cls, data, handler, duplicate_name_errors(data))
        # Inherited analysis settings can only be judged once merged: after everything else is valid.
        problems = fleet._analysis_problems()
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return fleet

    def _analysis_problems(self) -> list[InitErrorDetails]:
        problems = []
        blocks = [(("defaults", "analysis"), self.defaults.analysis, Analysis())]
        blocks += [(("images", index, "analysis"), image.analysis, self.defaults.analysis)
                   for index, image in enumerate(self.images) if image.analysis is not None]
        for loc, block, base in blocks:
            merged = block.merged_over(base).merged_over(Analysis(metrics=list(DEFAULT_METRICS)))
            own_metrics = {metric.name: index for index, metric in enumerate(block.metrics)}
            for where, message in merged._problems():
                # Each problem is reported once, in the block that sets the key at fault.
                if where.startswith("metrics."):
                    name, _, field = where.removeprefix("metrics.").partition(".")
                    if name not in own_metrics:
                        continue
                    path = (*loc, "metrics", own_metrics[name], *([field] if field else []))
                elif block is self.defaults.analysis or {"iterations", "failure_threshold"} & block.model_fields_set:
                    path = (*loc, where)
                else:
                    continue
                problems.append(custom_error(path, message))
        return problems

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

    def analysis_for(self, image: FleetImage | str, environ: Mapping[str, str] | None = None) -> Analysis:
        """The image's analysis merged over defaults.analysis and the built-in metrics, with its
        prometheus_url filled in (manifest, else $PATCHPIPE_PROMETHEUS_URL, else http://127.0.0.1:9090)."""
        return self._as_image(image).effective_analysis(self.defaults.analysis).resolved(environ)

    def patch_window_for(self, image: FleetImage | str) -> str | None:
        """The image's patch window, else the default one (None: manual runs only)."""
        return self._as_image(image).patch_window or self.defaults.patch_window

    def build_context_path(self, image: FleetImage | str) -> Path:
        return self._as_image(image).build_context_path(self.manifest_dir)

    def _as_image(self, image: FleetImage | str) -> FleetImage:
        return self.image(image) if isinstance(image, str) else image

