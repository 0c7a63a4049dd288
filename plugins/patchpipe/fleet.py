"""The fleet manifest (include/fleet.yaml): which images patchpipe keeps patched, and how.

``load_fleet(path)`` reads and validates a manifest; every problem in it is reported at once, as
``path: message`` with the manifest's own names (``images[0].deploy.production.url: field required``).
The models' attribute docstrings are the configuration reference (``Fleet.model_json_schema()``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

from patchpipe.errors import ImageReferenceError, ManifestError, PatchpipeError
from patchpipe.images.reference import ImageReference, parse_reference

Severity = Literal["critical", "high", "medium", "low", "negligible", "unknown"]
Stage = Literal["staging", "production"]
STAGES: tuple[Stage, ...] = ("staging", "production")


# --- value checks shared by the models ----------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_name(text: str) -> str:
    if not _DNS_LABEL.match(text):
        raise ValueError(
            f"must be lowercase letters, digits and '-', start and end with a letter or digit, "
            f"at most 63 characters (got {text!r})"
        )
    return text


def _check_tag_reference(text: str) -> str:
    try:
        ref = parse_reference(text)
    except ImageReferenceError as error:
        raise ValueError(str(error)) from None
    if ref.digest:
        raise ValueError(
            f"must be a tag, not a digest (got {text!r}); patchpipe resolves digests itself"
        )
    if not ref.tag:
        raise ValueError(f"needs a tag, e.g. {ref.name}:1.0 (got {text!r})")
    return text


def _check_http_url(text: str) -> str:
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"has an invalid port (got {text!r})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL (got {text!r})")
    return text


def _check_absolute_path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"must start with '/' (got {text!r})")
    return text


def _check_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error} (got {text!r})") from None
    return text


def _parse_iso_date(value: Any) -> Any:
    # Only YYYY-MM-DD: a manifest's dates must not depend on pydantic's wider choice of formats.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"must be a date written YYYY-MM-DD (got {value!r})")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"is not a real date: {error} (got {value!r})") from None


# Cron fields: (name, lowest, highest, names usable instead of numbers).
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}),
    ("day-of-week", 0, 7, {name: number for number, name in enumerate(_DAY_NAMES)}),
)
_CRON_ITEM = re.compile(r"^(?P<start>\*|[0-9a-z]+)(?:-(?P<end>[0-9a-z]+))?(?:/(?P<step>[0-9]+))?$")


def _cron_value(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(token) if not token.isdigit() else int(token)
    if number is None:
        raise ValueError(f"{field} {token!r} is not a number")
    if not low <= number <= high:
        raise ValueError(f"{field} {token!r} is out of range {low}-{high}")
    return number


def _check_cron_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    for item in text.lower().split(","):
        match = _CRON_ITEM.match(item)
        if not match:
            raise ValueError(f"{field} {item!r} is not '*', a number, a range a-b or a step x/n")
        start, end, step = match["start"], match["end"], match["step"]
        if start == "*" and end is not None:
            raise ValueError(f"{field} {item!r}: '*' cannot start a range")
        if step is not None and int(step) == 0:
            raise ValueError(f"{field} {item!r}: the step must be at least 1")
        if start == "*":
            continue
        first = _cron_value(start, field, low, high, names)
        if end is not None and _cron_value(end, field, low, high, names) < first:
            raise ValueError(f"{field} {item!r}: the range runs backwards")


def _check_cron(text: str) -> str:
    fields = text.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"must be a cron expression of 5 fields, minute hour day-of-month month day-of-week "
            f"(got {text!r})"
        )
    try:
        for value, (field, low, high, names) in zip(fields, _CRON_FIELDS):
            _check_cron_field(value, field, low, high, names)
    except ValueError as error:
        raise ValueError(f"not a valid cron expression: {error} (got {text!r})") from None
    return " ".join(fields)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Name = Annotated[str, AfterValidator(_check_name)]
TagReference = Annotated[str, AfterValidator(_check_tag_reference)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
AbsolutePath = Annotated[str, AfterValidator(_check_absolute_path)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Cron = Annotated[str, AfterValidator(_check_cron)]
IsoDate = Annotated[date, BeforeValidator(_parse_iso_date)]
Owners = Annotated[list[Text], Field(min_length=1)]


class _Model(BaseModel):
    # Unknown keys are errors so that a typo never passes silently; attribute docstrings are the docs.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _custom_error(loc: tuple[int | str, ...], message: str, given: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("manifest", message), loc=loc, input=given)


_PYDANTIC_ERROR_TYPES = frozenset(get_args(core_schema.ErrorType))


def _reraisable(detail: ErrorDetails) -> InitErrorDetails:
    if detail["type"] in _PYDANTIC_ERROR_TYPES:
        return InitErrorDetails(
            type=detail["type"], loc=detail["loc"], input=detail["input"], ctx=detail.get("ctx", {})
        )
    return _custom_error(detail["loc"], detail["msg"], detail["input"])


def _validate_reporting_also(model: type, data: Any, handler: Any, problems: list[InitErrorDetails]) -> Any:
    """Run a wrap validator's ``handler`` and report ``problems`` together with its own errors."""
    try:
        result = handler(data)
    except ValidationError as error:
        if not problems:
            raise
        earlier = [_reraisable(detail) for detail in error.errors()]
        raise ValidationError.from_exception_data(model.__name__, [*earlier, *problems]) from None
    if problems:
        raise ValidationError.from_exception_data(model.__name__, problems)
    return result


# --- the models, leaves first ------------------------------------------------------------------


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

    def merged_over(self, base: Policy) -> Policy:
        """This policy's explicitly set keys over ``base``; ``ignore`` entries add to the base's.

        An entry here with the same id as one in ``base`` replaces it.
        """
        own = {key: getattr(self, key) for key in self.model_fields_set - {"ignore"}}
        ignores = {entry.id: entry for entry in base.ignore} | {entry.id: entry for entry in self.ignore}
        return base.model_copy(update={**own, "ignore": list(ignores.values())})


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
            problems.append(_custom_error((), f"needs exactly one of {', '.join(_TARGET_KINDS)} (got {found})"))
        return _validate_reporting_also(cls, data, handler, problems)

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
        return _validate_reporting_also(cls, data, handler, _duplicate_name_errors(data))

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
        """The image's policy merged over defaults.policy."""
        return self._as_image(image).effective_policy(self.defaults.policy)

    def patch_window_for(self, image: FleetImage | str) -> str | None:
        """The image's patch window, else the default one (None: manual runs only)."""
        return self._as_image(image).patch_window or self.defaults.patch_window

    def build_context_path(self, image: FleetImage | str) -> Path:
        return self._as_image(image).build_context_path(self.manifest_dir)

    def _as_image(self, image: FleetImage | str) -> FleetImage:
        return self.image(image) if isinstance(image, str) else image


def _duplicate_name_errors(data: Any) -> list[InitErrorDetails]:
    if not isinstance(data, dict):
        return []
    errors: list[InitErrorDetails] = []
    first_seen: dict[str, str] = {}
    for section in ("bases", "images"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                continue
            here = f"{section}[{index}]"
            if name in first_seen:
                message = f"name {name!r} is already used by {first_seen[name]}"
                errors.append(_custom_error((section, index, "name"), message, name))
            else:
                first_seen[name] = here
    return errors


# --- reading a manifest ------------------------------------------------------------------------


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and leaves dates as text for the models to check."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (first at line {first_lines[key]})",
                    key_node.start_mark,
                )
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 turns 2027-06-30 into a date and 2027-13-45 into a crash; as text, IsoDate reports both.
_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate the manifest at ``path``; build contexts resolve against its directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PatchpipeError(f"fleet manifest not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(str(path), [f"not UTF-8 text: {error.reason} at byte {error.start}"]) from None
    except OSError as error:
        raise PatchpipeError(f"cannot read fleet manifest {path}: {error.strerror}") from None
    return parse_fleet(text, source=str(path), manifest_dir=path.parent)


def parse_fleet(text: str, source: str = "<string>", manifest_dir: Path | None = None) -> Fleet:
    """Validate manifest ``text``; ``source`` names it in errors.

    ``manifest_dir`` is where relative build contexts resolve (default: the working directory).
    Raises ManifestError listing every problem.
    """
    try:
        data = yaml.load(text, Loader=_ManifestLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ManifestError(source, [_yaml_problem(error)]) from None
    if data is None:
        raise ManifestError(source, ["the manifest is empty"])
    if not isinstance(data, dict):
        raise ManifestError(source, [f"the manifest must be a mapping of keys, not {_kind_of(data)}"])
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as error:
        raise ManifestError(source, [_problem(detail) for detail in error.errors()]) from None
    fleet._manifest_dir = (manifest_dir or Path.cwd()).resolve()
    return fleet


def _yaml_problem(error: yaml.YAMLError) -> str:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"not valid YAML: {error}"
    mark = error.problem_mark
    problem = f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if error.context and error.context_mark is not None:
        context_mark = error.context_mark
        problem += f" ({error.context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return problem


# --- pydantic errors in the manifest's words ---------------------------------------------------

_TYPE_WORDS = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "true/false",
    int: "an integer",
    float: "a number",
    type(None): "nothing (null)",
}

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _problem(error: ErrorDetails) -> str:
    return f"{_format_loc(error['loc'])}: {_message(error)}"


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: ErrorDetails) -> str:
    kind, ctx, given = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "literal_error":
        expected = re.sub(r" or (?=[^,]*$)", ", ", ctx["expected"])  # 'a', 'b' or 'c' -> 'a', 'b', 'c'
        if "," not in expected:
            return f"must be {expected} (got {_shown(given)})"
        return f"must be one of {expected} (got {_shown(given)})"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]} (got {_shown(given)})"
    if kind in ("too_short", "string_too_short"):
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must have at least {ctx['min_length']} items (got {ctx.get('actual_length')})"
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {_shown(ctx[key])} (got {_shown(given)})"
    return error["msg"]


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return _kind_of(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    return _TYPE_WORDS.get(type(value), type(value).__name__)


__all__ = [
    "STAGES",
    "AdvisorySettings",
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
    "Policy",
    "Severity",
    "SmokeCheck",
    "Stage",
    "load_fleet",
    "parse_fleet",
]
