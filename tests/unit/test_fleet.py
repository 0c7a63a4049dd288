"""The fleet manifest: the demo fleet is valid and every kind of mistake is reported where it is."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import croniter
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from patchpipe import fleet as fleet_module
from patchpipe.errors import ImageReferenceError, ManifestError, PatchpipeError
from patchpipe.fleet import Analysis, DeployTarget, Fleet, IgnoreEntry, MetricCheck, Policy, load_fleet, parse_fleet
from patchpipe.fleet.models import DEFAULT_METRICS
from patchpipe.images.reference import ImageReference, parse_reference

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "fleet.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "fleet"

# The smallest manifest that uses every section: one base, a rebuild image and a patch image.
VALID = """
version: 1
defaults:
  patch_window: "0 2 * * 6"
bases:
  - name: base
    image: 127.0.0.1:5000/base/debian:bookworm
    owners: [platform@example.org]
images:
  - name: web
    kind: rebuild
    image: 127.0.0.1:5000/demo/web:1.0
    build: {context: web, base: "127.0.0.1:5000/base/debian:bookworm"}
    owners: [web@example.org]
    deploy:
      staging: {swarm_service: web-staging, url: "http://127.0.0.1:18081"}
      production: {swarm_service: web-production, url: "http://127.0.0.1:18080"}
    smoke:
      - {name: healthz, path: /healthz, body_pattern: "^ok"}
  - name: app
    kind: patch
    image: 127.0.0.1:5000/vendor/app:2.4
    owners: [ops@example.org]
    deploy:
      staging: {docker_container: app-staging, url: "http://127.0.0.1:18091"}
      production:
        kubernetes: {namespace: prod, deployment: app, container: main}
        url: https://app.example.org
    smoke:
      - {name: healthz, path: /healthz}
    policy:
      ignore: [{id: CVE-2023-4641, reason: not reachable, expires: "2027-06-30"}]
"""


def valid_data() -> dict[str, Any]:
    return yaml.safe_load(VALID)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ManifestError) as raised:
        parse_fleet(text)
    return raised.value.problems


def reference_error(text: str) -> str:
    with pytest.raises(ImageReferenceError) as raised:
        parse_reference(text)
    return str(raised.value)


# --- the demo fleet ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Fleet:
    return load_fleet(DEMO)


def test_demo_manifest_is_valid(demo: Fleet) -> None:
    assert demo.version == 1
    assert demo.image_names == ["demo-web", "vendor-app"]
    assert [base.name for base in demo.bases] == ["debian-bookworm"]
    assert demo.advisories.debian_security_mirror == "http://deb.debian.org/debian-security"
    assert demo.manifest_dir == DEMO.parent


def test_demo_web_is_rebuilt_on_the_fleet_base(demo: Fleet) -> None:
    web = demo.image("demo-web")
    assert web.kind == "rebuild"
    assert web.ref == ImageReference("127.0.0.1:5000", "demo/web", "1.0")
    assert web.build is not None
    assert web.build.base_ref == demo.bases[0].ref == ImageReference("127.0.0.1:5000", "base/debian", "bookworm")
    assert demo.build_context_path(web) == DEMO.parent / "demo" / "demo-web"
    assert web.build.dockerfile_path(demo.manifest_dir) == DEMO.parent / "demo" / "demo-web" / "Dockerfile"
    assert web.version_path == "/version"


def test_demo_web_deploys_to_swarm_and_smoke_checks_each_stage(demo: Fleet) -> None:
    web = demo.image("demo-web")
    assert web.deploy["staging"].kind == "swarm_service"
    assert web.deploy["staging"].swarm_service == "demo-web-staging"
    assert web.deploy["production"].url_for("/healthz") == "http://127.0.0.1:18080/healthz"
    healthz, home = web.smoke
    assert (healthz.name, healthz.path, healthz.expect_status, healthz.timeout_seconds) == ("healthz", "/healthz", 200, 5)
    assert healthz.body_regex is not None and healthz.body_regex.search("ok\n")
    assert not healthz.body_regex.search("not ok")
    assert (home.path, home.body_regex, home.retries) == ("/", None, 3)


def test_vendor_app_is_patched_in_place(demo: Fleet) -> None:
    app = demo.image("vendor-app")
    assert app.kind == "patch"
    assert app.build is None
    assert app.ref.tag == "2.4"
    with pytest.raises(PatchpipeError, match="'vendor-app' is kind 'patch' and has no build context"):
        demo.build_context_path(app)


def test_demo_policies_merge_over_the_defaults(demo: Fleet) -> None:
    assert demo.policy_for("demo-web") == Policy(block_severities=["critical", "high"], fixable_only=True)
    vendor = demo.policy_for("vendor-app")
    assert vendor.block_severities == ["critical"]
    assert vendor.fixable_only is True
    assert [(entry.id, entry.expires) for entry in vendor.ignore] == [("CVE-2023-4641", date(2027, 6, 30))]
    assert demo.patch_window_for("vendor-app") == "0 2 * * 6"


# --- policy merge and ignore entries -------------------------------------------------------------


def test_image_policy_overrides_only_the_keys_it_sets_and_adds_ignores() -> None:
    keep = IgnoreEntry(id="CVE-1", reason="fleet-wide", expires=date(2030, 1, 1))
    replaced = IgnoreEntry(id="CVE-2", reason="fleet-wide", expires=date(2030, 1, 1))
    defaults = Policy(block_severities=["critical", "high", "medium"], fixable_only=False, ignore=[keep, replaced])
    replacement = IgnoreEntry(id="CVE-2", reason="only here", expires=date(2031, 1, 1))
    added = IgnoreEntry(id="CVE-3", reason="only here", expires=date(2031, 1, 1))
    own = Policy(fixable_only=True, ignore=[replacement, added])

    merged = own.merged_over(defaults)

    assert merged.block_severities == ["critical", "high", "medium"]
    assert merged.fixable_only is True
    assert merged.ignore == [keep, replacement, added]


def test_ignore_entry_applies_through_its_expiry_day() -> None:
    entry = IgnoreEntry(id="CVE-1", reason="r", expires=date(2027, 6, 30))
    assert entry.is_active(date(2027, 6, 30))
    assert not entry.is_active(date(2027, 7, 1))


def test_image_patch_window_replaces_the_default() -> None:
    data = valid_data()
    data["images"][1]["patch_window"] = "30 3 * * sun"
    fleet = parse_fleet(yaml.safe_dump(data))
    assert fleet.patch_window_for("app") == "30 3 * * sun"
    assert fleet.patch_window_for("web") == "0 2 * * 6"


# --- lookups -------------------------------------------------------------------------------------


def test_select_returns_images_in_manifest_order(demo: Fleet) -> None:
    assert [image.name for image in demo.select(["vendor-app", "demo-web"])] == ["demo-web", "vendor-app"]
    assert [image.name for image in demo.select(["vendor-app"])] == ["vendor-app"]
    assert demo.select(None) == demo.images
    assert demo.select([]) == []


def test_select_names_every_unknown_image(demo: Fleet) -> None:
    with pytest.raises(PatchpipeError, match=r"no image named 'nope', 'zzz' in the fleet; known: demo-web, vendor-app"):
        demo.select(["zzz", "demo-web", "nope"])


def test_image_lookup_explains_unknown_and_base_names(demo: Fleet) -> None:
    assert demo.image("vendor-app").name == "vendor-app"
    with pytest.raises(PatchpipeError, match="no image named 'demo_web' in the fleet; known: demo-web, vendor-app"):
        demo.image("demo_web")
    with pytest.raises(PatchpipeError, match="'debian-bookworm' is a base, not an image"):
        demo.image("debian-bookworm")


def test_build_context_resolves_against_the_given_manifest_dir(tmp_path: Path) -> None:
    fleet = parse_fleet(VALID, manifest_dir=tmp_path)
    assert fleet.build_context_path("web") == tmp_path.resolve() / "web"


# --- broken manifests: each mistake at its own path ----------------------------------------------

DIGEST = "sha256:" + "a" * 64
NOT_ONE_TARGET = "needs exactly one of swarm_service, docker_container, kubernetes"
Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets a dotted path (``images.0.deploy``) in the manifest data."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return mutate


BROKEN: list[tuple[str, Mutation, list[str]]] = [
    ("typo'd key", _set("images.0.imgae", "x"), ["images[0].imgae: unknown key"]),
    ("typo'd nested key", _set("images.0.smoke.0.expect_stauts", 200), ["images[0].smoke[0].expect_stauts: unknown key"]),
    ("missing production target", _delete("images.1.deploy.production"), ["images[1].deploy.production: field required"]),
    (
        "unknown stage",
        _set("images.0.deploy", {"staging": {"swarm_service": "a", "url": "http://a"}, "prod": {"swarm_service": "b", "url": "http://b"}}),
        ["images[0].deploy.production: field required", "images[0].deploy.prod: unknown key"],
    ),
    (
        "two target kinds",
        _set("images.0.deploy.staging.docker_container", "web"),
        [f"images[0].deploy.staging: {NOT_ONE_TARGET} (got swarm_service and docker_container)"],
    ),
    ("no target kind", _delete("images.0.deploy.production.swarm_service"), [f"images[0].deploy.production: {NOT_ONE_TARGET} (got none)"]),
    (
        "staging is production",
        _set("images.0.deploy.staging.swarm_service", "web-production"),
        ["images[0].deploy: staging and production are the same swarm_service; a staging deploy would hit production"],
    ),
    (
        "kubernetes target without deployment",
        _delete("images.1.deploy.production.kubernetes.deployment"),
        ["images[1].deploy.production.kubernetes.deployment: field required"],
    ),
    ("url not http", _set("images.0.deploy.staging.url", "ftp://x"), ["images[0].deploy.staging.url: must be an http:// or https:// URL (got 'ftp://x')"]),
    ("kind typo", _set("images.0.kind", "rebiuld"), ["images[0].kind: must be one of 'rebuild', 'patch' (got 'rebiuld')"]),
    (
        "bad image ref",
        _set("images.0.image", "127.0.0.1:5000/Demo/Web:1.0"),
        [f"images[0].image: {reference_error('127.0.0.1:5000/Demo/Web:1.0')}"],
    ),
    (
        "digest instead of tag",
        _set("images.1.image", f"127.0.0.1:5000/vendor/app@{DIGEST}"),
        [f"images[1].image: must be a tag, not a digest (got '127.0.0.1:5000/vendor/app@{DIGEST}'); patchpipe resolves digests itself"],
    ),
    (
        "tag without registry",
        _set("bases.0.image", "debian:bookworm"),
        [f"bases[0].image: {reference_error('debian:bookworm')}"],
    ),
    (
        "no tag",
        _set("images.0.build.base", "127.0.0.1:5000/base/debian"),
        ["images[0].build.base: needs a tag, e.g. 127.0.0.1:5000/base/debian:1.0 (got '127.0.0.1:5000/base/debian')"],
    ),
    ("rebuild without build", _delete("images.0.build"), ["images[0].build: required when kind is 'rebuild'"]),
    (
        "patch with build",
        _set("images.1.build", {"context": "app", "base": "127.0.0.1:5000/base/debian:bookworm"}),
        ["images[1].build: not allowed when kind is 'patch' (a patched image is never rebuilt)"],
    ),
    ("duplicate image names", _set("images.1.name", "web"), ["images[1].name: name 'web' is already used by images[0]"]),
    ("image named like a base", _set("images.0.name", "base"), ["images[0].name: name 'base' is already used by bases[0]"]),
    (
        "name not a DNS label",
        _set("images.0.name", "Web_1"),
        ["images[0].name: must be lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters (got 'Web_1')"],
    ),
    (
        "bad regex",
        _set("images.0.smoke.0.body_pattern", "(ok"),
        ["images[0].smoke[0].body_pattern: not a valid regular expression: missing ), unterminated subpattern at position 0 (got '(ok')"],
    ),
    ("smoke path not absolute", _set("images.0.smoke.0.path", "healthz"), ["images[0].smoke[0].path: must start with '/' (got 'healthz')"]),
    ("status out of range", _set("images.0.smoke.0.expect_status", 99), ["images[0].smoke[0].expect_status: must be at least 100 (got 99)"]),
    ("zero timeout", _set("images.0.smoke.0.timeout_seconds", 0), ["images[0].smoke[0].timeout_seconds: must be greater than 0 (got 0)"]),
    ("no smoke checks", _set("images.1.smoke", []), ["images[1].smoke: must not be empty"]),
    (
        "smoke names repeat",
        _set("images.1.smoke", [{"name": "healthz", "path": "/a"}, {"name": "healthz", "path": "/b"}]),
        ["images[1].smoke: check name 'healthz' is used twice"],
    ),
    ("version_path not absolute", _set("images.0.version_path", "version"), ["images[0].version_path: must start with '/' (got 'version')"]),
    (
        "cron with four fields",
        _set("defaults.patch_window", "0 2 * *"),
        ["defaults.patch_window: must be a cron expression of 5 fields, minute hour day-of-month month day-of-week (got '0 2 * *')"],
    ),
    (
        "cron hour out of range",
        _set("defaults.patch_window", "0 24 * * 6"),
        ["defaults.patch_window: not a valid cron expression: hour '24' is out of range 0-23 (got '0 24 * * 6')"],
    ),
    (
        "cron backwards range",
        _set("images.0.patch_window", "0 2 * * fri-mon"),
        ["images[0].patch_window: not a valid cron expression: day-of-week 'fri-mon': the range runs backwards (got '0 2 * * fri-mon')"],
    ),
    (
        "date not YYYY-MM-DD",
        _set("images.1.policy.ignore.0.expires", "30/06/2027"),
        ["images[1].policy.ignore[0].expires: must be a date written YYYY-MM-DD (got '30/06/2027')"],
    ),
    (
        "date that does not exist",
        _set("images.1.policy.ignore.0.expires", "2027-02-30"),
        ["images[1].policy.ignore[0].expires: is not a real date: day is out of range for month (got '2027-02-30')"],
    ),
    ("ignore without reason", _set("images.1.policy.ignore.0.reason", "  "), ["images[1].policy.ignore[0].reason: must not be empty"]),
    ("empty owners", _set("images.0.owners", []), ["images[0].owners: must not be empty"]),
    ("owners not a list", _set("bases.0.owners", "platform@example.org"), ["bases[0].owners: must be a list (got 'platform@example.org')"]),
    (
        "bad severity",
        _set("images.1.policy.block_severities", ["critical", "severe"]),
        ["images[1].policy.block_severities[1]: must be one of 'critical', 'high', 'medium', 'low', 'negligible', 'unknown' (got 'severe')"],
    ),
    ("fixable_only not a boolean", _set("defaults.policy", {"fixable_only": "maybe"}), ["defaults.policy.fixable_only: must be true or false (got 'maybe')"]),
    ("wrong version", _set("version", 2), ["version: must be 1 (got 2)"]),
    ("version as text", _set("version", "1"), ["version: must be 1 (got '1')"]),
    ("no images", _delete("images"), ["images: field required"]),
    ("image not a mapping", _set("images.1", "app"), ["images[1]: must be a mapping (got 'app')"]),
    ("approval timeout not positive", _set("images.0.approval", {"timeout_minutes": 0}),
     ["images[0].approval.timeout_minutes: must be greater than 0 (got 0)"]),
    ("approval typo", _set("images.0.approval", {"timeout": 5}), ["images[0].approval.timeout: unknown key"]),
    (
        "mirror not a URL",
        _set("advisories", {"debian_security_mirror": "deb.debian.org"}),
        ["advisories.debian_security_mirror: must be an http:// or https:// URL (got 'deb.debian.org')"],
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_manifest_reports_the_exact_path_and_message(mutate: Mutation, expected: list[str]) -> None:
    data = copy.deepcopy(valid_data())
    mutate(data)
    assert problems_of(yaml.safe_dump(data, sort_keys=False)) == expected


def test_the_unbroken_manifest_is_valid() -> None:
    # The broken cases above are only meaningful if the manifest they start from is valid.
    fleet = parse_fleet(VALID)
    assert fleet.image("app").deploy["production"].kubernetes is not None
    assert fleet.image("app").deploy["production"].kind == "kubernetes"
    assert fleet.image("app").deploy["staging"].kind == "docker_container"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ManifestError) as raised:
        load_fleet(FIXTURES / "several-problems.yaml")
    assert raised.value.source == str(FIXTURES / "several-problems.yaml")
    assert raised.value.problems == [
        "defaults.patch_window: not a valid cron expression: day-of-week '8' is out of range 0-7 (got '0 2 * * 8')",
        "images[0].build: required when kind is 'rebuild'",
        "images[1].name: name 'demo-web' is already used by images[0]",
    ]


def test_target_problems_are_reported_next_to_field_problems() -> None:
    data = valid_data()
    data["images"][0]["deploy"]["staging"] = {"swarm_service": "a", "docker_container": "b", "url": "ftp://x"}
    assert problems_of(yaml.safe_dump(data)) == [
        "images[0].deploy.staging.url: must be an http:// or https:// URL (got 'ftp://x')",
        f"images[0].deploy.staging: {NOT_ONE_TARGET} (got swarm_service and docker_container)",
    ]


def test_problems_found_in_different_layers_are_all_reported() -> None:
    # A target-kind problem (DeployTarget) and a duplicate name (Fleet) are found by separate checks.
    data = valid_data()
    del data["images"][0]["deploy"]["staging"]["swarm_service"]
    data["images"][1]["name"] = "web"
    assert problems_of(yaml.safe_dump(data)) == [
        f"images[0].deploy.staging: {NOT_ONE_TARGET} (got none)",
        "images[1].name: name 'web' is already used by images[0]",
    ]


# --- YAML-level problems -------------------------------------------------------------------------


def test_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ManifestError) as raised:
        load_fleet(FIXTURES / "syntax-error.yaml")
    assert raised.value.problems == [
        "line 7, column 10: expected ',' or ']', but got ':' (while parsing a flow sequence at line 6, column 13)"
    ]


def test_duplicate_yaml_key_is_an_error_not_a_silent_override() -> None:
    text = VALID.replace("  - name: app\n    kind: patch\n", "  - name: app\n    kind: patch\n    kind: rebuild\n")
    first = text.splitlines().index("    kind: patch") + 1
    assert problems_of(text) == [f"line {first + 1}, column 5: duplicate key 'kind' (first at line {first})"]


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = VALID.replace(
        "      - {name: healthz, path: /healthz}\n",
        "      - &check {name: healthz, path: /healthz}\n      - {<<: *check, name: home, path: /}\n",
    )
    assert [check.path for check in parse_fleet(text).image("app").smoke] == ["/healthz", "/"]


def test_unquoted_impossible_date_is_a_problem_not_a_crash() -> None:
    text = VALID.replace('expires: "2027-06-30"', "expires: 2027-13-45")
    assert problems_of(text) == [
        "images[1].policy.ignore[0].expires: is not a real date: month must be in 1..12 (got '2027-13-45')"
    ]


def test_unquoted_date_is_read_as_a_date() -> None:
    text = VALID.replace('expires: "2027-06-30"', "expires: 2027-06-30")
    assert parse_fleet(text).image("app").policy.ignore[0].expires == date(2027, 6, 30)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the manifest is empty"),
        ("# nothing but a comment\n", "the manifest is empty"),
        ("- version: 1\n", "the manifest must be a mapping of keys, not a list"),
        ("just text\n", "the manifest must be a mapping of keys, not a string"),
    ],
)
def test_manifest_that_is_not_a_mapping(text: str, problem: str) -> None:
    assert problems_of(text) == [problem]


def test_source_names_the_manifest_in_the_error() -> None:
    with pytest.raises(ManifestError, match=r"^my-fleet\.yaml: 1 problem"):
        parse_fleet(VALID.replace("version: 1", "version: 2"), source="my-fleet.yaml")


# --- reading files -------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PatchpipeError, match=f"fleet manifest not found: {missing}"):
        load_fleet(missing)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(PatchpipeError, match=f"cannot read fleet manifest {tmp_path}: Is a directory"):
        load_fleet(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.yaml"
    manifest.write_bytes(b"version: 1\nname: \xff\n")
    with pytest.raises(ManifestError) as raised:
        load_fleet(manifest)
    assert raised.value.problems == ["not UTF-8 text: invalid start byte at byte 17"]


# --- cron ----------------------------------------------------------------------------------------

ACCEPTED_CRON = ["0 2 * * 6", "*/15 * * * *", "0 0-6/2 1,15 * mon-fri", "30 3 * jan,jul SUN", "5/10 0 31 12 7", "  0  2 * * 6 "]


@pytest.mark.parametrize("expression", ACCEPTED_CRON)
def test_accepted_cron_is_accepted_by_croniter_too(expression: str) -> None:
    # Airflow schedules with croniter: what the manifest accepts, the scheduler must accept.
    data = valid_data()
    data["defaults"]["patch_window"] = expression
    assert parse_fleet(yaml.safe_dump(data)).defaults.patch_window == " ".join(expression.split())
    assert croniter.croniter.is_valid(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("60 * * * *", "minute '60' is out of range 0-59"),
        ("0 2 0 * *", "day-of-month '0' is out of range 1-31"),
        ("0 2 * 13 *", "month '13' is out of range 1-12"),
        ("0 2 * foo *", "month 'foo' is not a number"),
        ("*/0 * * * *", "minute '*/0': the step must be at least 1"),
        ("*-5 * * * *", "minute '*-5': '*' cannot start a range"),
        ("0 2 * * 1,", "day-of-week '' is not '*', a number, a range a-b or a step x/n"),
        ("0 2 L * *", "day-of-month 'l' is not a number"),
    ],
)
def test_rejected_cron_says_which_field(expression: str, reason: str) -> None:
    data = valid_data()
    data["defaults"]["patch_window"] = expression
    assert problems_of(yaml.safe_dump(data)) == [f"defaults.patch_window: not a valid cron expression: {reason} (got {expression!r})"]


# --- the models themselves -----------------------------------------------------------------------

MODELS = [
    model
    for model in vars(fleet_module).values()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__.startswith(fleet_module.__name__) and not model.__name__.startswith("_")
]


def test_every_model_is_covered() -> None:
    assert {model.__name__ for model in MODELS} == {
        "AdvisorySettings", "Analysis", "Approval", "Base", "BuildSpec", "Defaults", "DeployTarget", "Deployments",
        "Fleet", "FleetImage", "IgnoreEntry", "KubernetesTarget", "MetricCheck", "Policy", "SmokeCheck",
    }  # fmt: skip


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_field_is_documented_and_unknown_keys_are_forbidden(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert model.__doc__
    undocumented = [name for name, field in model.model_fields.items() if not field.description]
    assert undocumented == []


def test_json_schema_carries_the_field_docs() -> None:
    schema = Fleet.model_json_schema()
    image = schema["$defs"]["FleetImage"]
    assert image["additionalProperties"] is False
    assert "required for kind rebuild" in image["properties"]["build"]["description"]
    assert image["properties"]["kind"]["enum"] == ["rebuild", "patch"]


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError, match=NOT_ONE_TARGET):
        DeployTarget(url="http://a")
    data = valid_data()
    data["images"][1]["name"] = "web"
    with pytest.raises(ValidationError, match="name 'web' is already used by images\\[0\\]"):
        Fleet.model_validate(data)


# --- OpenVEX documents in the policy -------------------------------------------------------------


def test_policy_vex_documents_add_to_the_defaults_and_resolve_against_the_manifest(tmp_path: Path) -> None:
    data = valid_data()
    data["defaults"]["policy"] = {"vex": ["vex/fleet.openvex.json"]}
    data["images"][1]["policy"]["vex"] = ["vex/app.openvex.json", "vex/fleet.openvex.json"]
    fleet = parse_fleet(yaml.safe_dump(data), manifest_dir=tmp_path)

    app = fleet.policy_for("app")
    assert app.vex == ["vex/fleet.openvex.json", "vex/app.openvex.json"]
    assert app.vex_paths(fleet.manifest_dir) == [tmp_path.resolve() / "vex" / "fleet.openvex.json",
                                                 tmp_path.resolve() / "vex" / "app.openvex.json"]
    assert [entry.id for entry in app.ignore] == ["CVE-2023-4641"]
    assert fleet.policy_for("web").vex == ["vex/fleet.openvex.json"]
    assert Policy().vex == []


def test_a_policy_vex_entry_must_be_a_path() -> None:
    data = valid_data()
    data["images"][1]["policy"]["vex"] = ["vex/app.openvex.json", {"path": "x"}, ""]
    assert problems_of(yaml.safe_dump(data)) == [
        "images[1].policy.vex[1]: must be a string (got a mapping)",
        "images[1].policy.vex[2]: must not be empty",
    ]


def test_a_policy_file_is_read_like_the_manifest(tmp_path: Path) -> None:
    from patchpipe.fleet.loader import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("fixable_only: false\nignore: [{id: CVE-1, reason: r, expires: 2027-06-30}]\nvex: [a.json]\n")
    policy = load_policy(path)
    assert (policy.fixable_only, policy.ignore[0].expires, policy.vex) == (False, date(2027, 6, 30), ["a.json"])
    for text, problem in [("", "the policy file is empty"), ("- vex\n", "the policy file must be a mapping of keys, "
                                                                           "not a list"),
                          ("vex: []\nvex: [a]\n", "duplicate key 'vex' (first at line 1)")]:
        path.write_text(text)
        with pytest.raises(ManifestError, match=re.escape(problem)) as raised:
            load_policy(path)
        assert raised.value.source == str(path)
    with pytest.raises(PatchpipeError, match="policy file not found: .*nope.yaml"):
        load_policy(tmp_path / "nope.yaml")


# --- post-deploy analysis ------------------------------------------------------------------------


def with_analysis(defaults: dict[str, Any] | None = None, web: dict[str, Any] | None = None) -> str:
    data = valid_data()
    if defaults is not None:
        data["defaults"]["analysis"] = defaults
    if web is not None:
        data["images"][0]["analysis"] = web
    return yaml.safe_dump(data, sort_keys=False)


def test_demo_analysis_is_flaggers_defaults(demo: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHPIPE_PROMETHEUS_URL", raising=False)
    for name in demo.image_names:
        analysis = demo.analysis_for(name)
        assert (analysis.interval_seconds, analysis.iterations, analysis.failure_threshold) == (5, 6, 2)
        assert analysis.window_seconds == 30
        assert analysis.prometheus_url == "http://127.0.0.1:9090"
        assert [(m.name, m.min, m.max) for m in analysis.active_metrics] == [
            ("request-success-rate", 99, None), ("request-duration", None, 500)]
    assert demo.image("demo-web").smoke[0].max_latency_ms is None


def test_analysis_defaults_without_any_analysis_block() -> None:
    analysis = parse_fleet(VALID).analysis_for("web", environ={})
    assert analysis == Analysis(metrics=list(DEFAULT_METRICS), prometheus_url="http://127.0.0.1:9090")


def test_the_prometheus_url_comes_from_the_manifest_else_the_environment() -> None:
    env = {"PATCHPIPE_PROMETHEUS_URL": "http://prometheus.example.org:9090"}
    assert parse_fleet(VALID).analysis_for("web", environ=env).prometheus_url == "http://prometheus.example.org:9090"
    fleet = parse_fleet(with_analysis({"prometheus_url": "http://fleet:9090"}, {"prometheus_url": "http://web:9090"}))
    assert fleet.analysis_for("web", environ=env).prometheus_url == "http://web:9090"
    assert fleet.analysis_for("app", environ=env).prometheus_url == "http://fleet:9090"


def test_an_image_analysis_merges_over_the_defaults_and_metrics_by_name() -> None:
    fleet = parse_fleet(with_analysis(
        {"interval_seconds": 10, "iterations": 12, "metrics": [
            {"name": "request-success-rate", "min": 95},
            {"name": "error-budget", "query": 'sum(slo_errors{service="{service}"})', "max": 3}]},
        {"iterations": 3, "failure_threshold": 1, "metrics": [
            {"name": "request-duration", "max": 800},
            {"name": "error-budget", "enabled": False},
            {"name": "queue-depth", "query": 'max(queue_depth{image="{image}", environment="{environment}"})', "max": 100}]},
    ))
    web, app = fleet.analysis_for("web", environ={}), fleet.analysis_for("app", environ={})
    assert (web.interval_seconds, web.iterations, web.failure_threshold, web.window_seconds) == (10, 3, 1, 30)
    assert (app.interval_seconds, app.iterations, app.failure_threshold) == (10, 12, 2)
    assert [(m.name, m.min, m.max) for m in web.active_metrics] == [
        ("request-success-rate", 95, None), ("request-duration", None, 800), ("queue-depth", None, 100)]
    assert [(m.name, m.min, m.max) for m in app.active_metrics] == [
        ("request-success-rate", 95, None), ("request-duration", None, 500), ("error-budget", None, 3)]
    assert web.metrics[1].query == DEFAULT_METRICS[1].query  # only the bound was overridden
    assert web.query_range == "30s" and Analysis(interval_seconds=45).query_range == "45s"


ANALYSIS_BROKEN: list[tuple[str, str, list[str]]] = [
    (
        "unknown placeholder",
        with_analysis(web={"metrics": [{"name": "m", "query": 'up{service="{servce}"}', "min": 1}]}),
        ["images[0].analysis.metrics[0].query: unknown placeholder {servce}; a query may use {service}, {image}, "
         "{environment}, {interval}"],
    ),
    (
        "Jinja braces",
        with_analysis({"metrics": [{"name": "m", "query": 'up{service="{{ service }}"}', "min": 1}]}),
        ["defaults.analysis.metrics[0].query: write placeholders in single braces, {service}, not {{ service }}"],
    ),
    (
        "a new metric without a query",
        with_analysis(web={"metrics": [{"name": "latency", "max": 3}]}),
        ["images[0].analysis.metrics[0].query: field required: no inherited metric named 'latency' "
         "(built in: request-success-rate, request-duration)"],
    ),
    (
        "a metric without a bound",
        with_analysis({"metrics": [{"name": "m", "query": "sum(up)"}]}),
        ["defaults.analysis.metrics[0]: needs min or max: a bound the value must stay within"],
    ),
    (
        "min above max",
        with_analysis(web={"metrics": [{"name": "m", "query": "sum(up)", "min": 2, "max": 1}]}),
        ["images[0].analysis.metrics[0]: min 2 is above max 1: no value could pass"],
    ),
    (
        "an override that crosses the inherited bound",
        with_analysis(web={"metrics": [{"name": "request-success-rate", "max": 50}]}),
        ["images[0].analysis.metrics[0]: min 99 is above max 50: no value could pass"],
    ),
    (
        "threshold above iterations in one block",
        with_analysis({"iterations": 3, "failure_threshold": 4}),
        ["defaults.analysis: failure_threshold 4 is more than iterations 3: the analysis could never fail"],
    ),
    (
        "threshold above inherited iterations",
        with_analysis({"iterations": 3}, {"failure_threshold": 5}),
        ["images[0].analysis.failure_threshold: failure_threshold 5 is more than iterations 3: the analysis could "
         "never fail"],
    ),
    (
        "metric names repeat",
        with_analysis(web={"metrics": [{"name": "request-duration", "max": 1}, {"name": "request-duration", "max": 2}]}),
        ["images[0].analysis.metrics: metric name 'request-duration' is used twice"],
    ),
    (
        "zero interval and iterations",
        with_analysis({"interval_seconds": 0, "iterations": 0}),
        ["defaults.analysis.interval_seconds: must be greater than 0 (got 0)",
         "defaults.analysis.iterations: must be at least 1 (got 0)"],
    ),
    ("typo'd analysis key", with_analysis(web={"treshold": 2}), ["images[0].analysis.treshold: unknown key"]),
    (
        "prometheus_url not a URL",
        with_analysis({"prometheus_url": "127.0.0.1:9090"}),
        ["defaults.analysis.prometheus_url: must be an http:// or https:// URL (got '127.0.0.1:9090')"],
    ),
    (
        "metric name not a DNS label",
        with_analysis(web={"metrics": [{"name": "Request_Rate", "query": "sum(up)", "min": 1}]}),
        ["images[0].analysis.metrics[0].name: must be lowercase letters, digits and '-', start and end with a letter "
         "or digit, at most 63 characters (got 'Request_Rate')"],
    ),
    (
        "smoke latency bound not positive",
        yaml.safe_dump({**valid_data(), "images": [{**valid_data()["images"][0], "smoke": [
            {"name": "healthz", "path": "/healthz", "max_latency_ms": -5}]}, valid_data()["images"][1]]}),
        ["images[0].smoke[0].max_latency_ms: must be greater than 0 (got -5)"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in ANALYSIS_BROKEN], ids=[c[0] for c in ANALYSIS_BROKEN])
def test_broken_analysis_reports_the_exact_path_and_message(text: str, expected: list[str]) -> None:
    assert problems_of(text) == expected


def test_a_disabled_metric_needs_neither_query_nor_bound() -> None:
    fleet = parse_fleet(with_analysis(web={"metrics": [{"name": "request-duration", "enabled": False},
                                                       {"name": "never-defined", "enabled": False}]}))
    assert [m.name for m in fleet.analysis_for("web", environ={}).active_metrics] == ["request-success-rate"]


def test_a_query_keeps_promql_braces_and_fills_placeholders() -> None:
    metric = MetricCheck(name="m", query='sum(rate(x{service="{service}",env=~"{ environment }"}[{interval}])) by (le)',
                         max=1)
    assert metric.render(service="web-staging", image="web", environment="staging", interval="30s") == (
        'sum(rate(x{service="web-staging",env=~"staging"}[30s])) by (le)')
    assert (metric.judge(1), metric.judge(1.5), metric.judge(float("nan"))) == ("", "1.5 > max 1", "no value (NaN)")
    assert (metric.bound, MetricCheck(name="m", query="q", min=1, max=2).bound) == ("<= 1", ">= 1, <= 2")


def test_approval_is_asked_only_where_the_manifest_says_so() -> None:
    data = copy.deepcopy(valid_data())
    data["images"][0]["approval"] = {}
    fleet = parse_fleet(yaml.safe_dump(data))
    assert fleet.images[0].approval.timeout_minutes == 60
    assert fleet.images[1].approval is None
