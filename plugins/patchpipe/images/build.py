"""Patch: make a candidate image, either by rebuilding a Dockerfile or by adding one patch layer.

Rebuild: ``docker build`` of the image's own Dockerfile with ``BASE_IMAGE`` pinned to the base's
current digest and ``--pull``. Patch in place: one ``RUN`` on top of the current image that upgrades
exactly the planned packages to the planned versions with the image's own package manager, then
removes what the package manager leaves behind, so the layer holds only what changed.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from patchpipe.plan import PatchPlan
from patchpipe.errors import PatchpipeError
from patchpipe.images.reference import ImageReference

log = logging.getLogger(__name__)

# Left behind by apt and dpkg; none of it is needed at run time.
APT_CHURN = [
    "/var/lib/apt/lists/*",
    "/var/cache/apt/*.bin",
    "/var/cache/apt/archives/*.deb",
    "/var/cache/apt/archives/partial",
    "/var/log/apt",
    "/var/log/dpkg.log",
    "/var/log/alternatives.log",
    "/var/cache/debconf/*-old",
    "/var/lib/dpkg/*-old",
]
# The patch step's own apt sources: only the security suite, so the image's sources are neither
# changed nor merged with ours (apt refuses the same suite listed twice with different options).
PATCH_SOURCES = "/tmp/patchpipe-apt"
APT_ISOLATED = f"-o Dir::Etc::SourceList={PATCH_SOURCES}/sources.list -o Dir::Etc::SourceParts={PATCH_SOURCES}/parts"


class BuildError(PatchpipeError):
    """docker build failed; the message carries the builder's own error and the last log lines."""


# apt's answer when a pinned version is not in the index it fetched. The plan's versions come from
# the same security archive, so this means the mirror (or the CDN node) apt reached has not caught
# up yet with the index assessed minutes ago, right after a new security update is published.
_VERSION_NOT_FOUND = re.compile(r"Version '[^']+' for '[^']+' was not found")
MIRROR_LAG_ATTEMPTS = 4
MIRROR_LAG_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class BuiltImage:
    ref: ImageReference  # registry/repository:candidate-tag
    image_id: str


def apt_upgrade_script(plan: PatchPlan, security_source: str) -> str:
    """Shell for one layer: pin each planned package to its planned version, then clean up."""
    pins = " ".join(shlex.quote(f"{u.name}={u.target}") for u in plan.upgrades)
    return " && ".join([
        "set -eu",
        f"mkdir -p {PATCH_SOURCES}/parts",
        f"echo {shlex.quote(security_source)} > {PATCH_SOURCES}/sources.list",
        f"apt-get {APT_ISOLATED} update -qq",
        f"DEBIAN_FRONTEND=noninteractive apt-get {APT_ISOLATED} install -y -qq --no-install-recommends "
        f"--only-upgrade -o Dpkg::Options::=--force-confold {pins}",
        "apt-get clean",
        f"rm -rf {PATCH_SOURCES} {' '.join(APT_CHURN)}",
    ])


def patch_dockerfile(source: ImageReference, plan: PatchPlan, *, security_source: str, user: str,
                     build_id: str | None, labels: dict[str, str]) -> str:
    """The Dockerfile of a patch-in-place candidate: the source by digest plus one layer.

    ``build_id`` becomes ``PATCHPIPE_BUILD_ID`` for the service's /version; base images get none, as
    an ENV would override the build argument of every image built on them.
    """
    if plan.package_manager != "dpkg":
        raise PatchpipeError(
            f"{plan.image}: patching {plan.package_manager} images in place is not supported yet "
            "(only dpkg/apt images)"
        )
    lines = [f"FROM {source}", "USER root", f"RUN {apt_upgrade_script(plan, security_source)}"]
    if user and user not in ("root", "0"):
        lines.append(f"USER {user}")
    if build_id:
        lines.append(f"ENV PATCHPIPE_BUILD_ID={build_id}")
    if labels:
        lines.append("LABEL " + " ".join(f"{k}={_quote_label(v)}" for k, v in sorted(labels.items())))
    return "\n".join(lines) + "\n"


def _quote_label(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_patch_layer(api, *, target: ImageReference, dockerfile: str, nocache: bool = False,
                      attempts: int = MIRROR_LAG_ATTEMPTS,
                      wait_seconds: float = MIRROR_LAG_WAIT_SECONDS) -> BuiltImage:
    """Build the patch layer; when apt cannot find a planned version (the mirror lags behind the
    index the plan came from), try again after ``wait_seconds``, ``attempts`` times in all."""
    log.info("building patch layer for %s", target)
    attempt = 1
    while True:
        try:
            image_id = _run_build(api, str(target), fileobj=io.BytesIO(dockerfile.encode()), pull=True,
                                  nocache=nocache)
            return BuiltImage(target, image_id)
        except BuildError as error:
            lag = _VERSION_NOT_FOUND.search(str(error))
            if lag is None or attempt >= attempts:
                raise
            attempt += 1
            log.warning("build %s: %s: the mirror has not caught up with the security archive the plan "
                        "came from; trying again in %.0f s (attempt %d of %d)", target, lag.group(0),
                        wait_seconds, attempt, attempts)
            time.sleep(wait_seconds)


def rebuild(api, *, target: ImageReference, context: Path, dockerfile: str, base: ImageReference,
            build_id: str, labels: dict[str, str], nocache: bool = False) -> BuiltImage:
    if not (context / dockerfile).is_file():
        raise PatchpipeError(f"{target}: Dockerfile {context / dockerfile} does not exist")
    log.info("rebuilding %s from %s on base %s", target, context / dockerfile, base)
    image_id = _run_build(
        api, str(target), path=str(context), dockerfile=dockerfile, pull=True,
        buildargs={"BASE_IMAGE": str(base), "PATCHPIPE_BUILD_ID": build_id}, labels=labels, nocache=nocache,
    )
    return BuiltImage(target, image_id)


def _run_build(api, tag: str, **kwargs) -> str:
    tail: list[str] = []
    image_id = None
    for chunk in api.build(tag=tag, rm=True, forcerm=True, decode=True, **kwargs):
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            raise BuildError(f"docker build of {tag} failed: {detail.strip()}\n" + "".join(tail[-15:]))
        text = chunk.get("stream") or chunk.get("status")
        if text:
            tail.append(text if text.endswith("\n") else text + "\n")
            if text.strip():
                log.info("build %s: %s", tag, text.rstrip())
        image_id = (chunk.get("aux") or {}).get("ID", image_id)
    if not image_id:
        image_id = api.inspect_image(tag)["Id"]
    return image_id

