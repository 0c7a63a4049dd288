#!/usr/bin/env python3
"""bench-patch: patch the lab's vendor image in place versus rebuilding it, with the same upgrades.

Starts from 127.0.0.1:5000/vendor/app:2.4-lab-original (pinned to its digest), plans its upgrades
from the bookworm-security index, then measures two ways to ship them:

  patch in place  patchpipe's own path: patch_dockerfile + build_patch_layer, then publish.push
  full rebuild    the vendor's Dockerfile on the original base, with the same upgrade as one more RUN
                  before its final USER switch, built with no cache and --pull, then publish.push

Both builds ignore the build cache. Each variant is pushed to a repository of its own under
127.0.0.1:5000/bench/vendor-app/, so "bytes pushed" counts exactly the layer blobs that no
repository of the registry held before the push. See tests/bench/README.md for the method.

Prints a table with ratios and the two targets (a MISS is reported, not raised), writes the figures
to bench/results.json under "patch", and removes its local images (the registry keeps them).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin

import docker
import requests
from debian.deb822 import Deb822

from _results import record_results
from patchpipe.advisories.security_archive import DEBIAN_SECURITY_MIRROR, fetch_security_index
from patchpipe.errors import PatchpipeError
from patchpipe.images import build, publish
from patchpipe.images.candidates import candidate_labels
from patchpipe.images.layers import FileSelector, read_image_files
from patchpipe.images.reference import ImageReference, parse_reference
from patchpipe.images.registry import RegistryClient
from patchpipe.packages.dpkg import INSTALLED
from patchpipe.packages.inventory import DPKG_STATUS, inventory_registry_image
from patchpipe.plan import PatchPlan, plan_upgrades

REGISTRY = "127.0.0.1:5000"
SOURCE = f"{REGISTRY}/vendor/app:2.4-lab-original"
BASE = f"{REGISTRY}/base/debian:bookworm-lab-original"
VENDOR_CONTEXT = Path(__file__).resolve().parents[2] / "include" / "demo" / "vendor-app"
BENCH_REPOSITORIES = f"{REGISTRY}/bench/vendor-app/"  # every run pushes to fresh repositories below
LAYER_LIMIT = 1.5  # patch layer <= 1.5 x installed size of the upgraded packages
TIME_LIMIT = 0.5  # time to a pushed candidate (build + push) <= 0.5 x the rebuild's
MiB = 1024 * 1024

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench-patch {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class HistoryEntry:
    created_by: str
    size: int  # uncompressed layer bytes, as `docker history` reports them (0 for metadata steps)


@dataclass
class Variant:
    name: str
    ref: str
    digest: str
    build_seconds: float
    push_seconds: float
    layer_bytes: int  # uncompressed, every layer above the image it was built on
    layers: list[HistoryEntry]
    pushed_bytes: int  # compressed layer blobs the registry held in no repository before the push
    pushed_layers: int

    @property
    def pushed(self) -> ImageReference:
        return parse_reference(self.ref).with_digest(self.digest)


# --- the plan ---


def make_plan(registry: RegistryClient) -> tuple[PatchPlan, ImageReference]:
    source = parse_reference(SOURCE)
    progress(f"inventory of {source} from the registry")
    digest, inventory = inventory_registry_image(registry, source)
    release = inventory.os.version_codename
    progress(f"fetching the {release}-security index from {DEBIAN_SECURITY_MIRROR}")
    index = fetch_security_index(release, mirror=DEBIAN_SECURITY_MIRROR)
    installed = {p.name: (p.version, p.source_name) for p in inventory.packages}
    newest = {name: entry.version for name, entry in index.packages.items()}
    plan = PatchPlan(image="vendor-app", source_ref=str(source), source_digest=digest, release=release,
                     package_manager=inventory.package_manager, upgrades=plan_upgrades(installed, newest))
    if plan.is_empty:
        raise PatchpipeError(f"{source} has nothing to patch against {index.suite}; the benchmark needs "
                             "pending upgrades (is this the lab's original, unpatched image?)")
    return plan, source.with_digest(digest)


def security_source(plan: PatchPlan) -> str:
    return f"deb {DEBIAN_SECURITY_MIRROR} {plan.release}-security main"


# --- building ---


def patch_in_place(api, registry: RegistryClient, plan: PatchPlan, source: ImageReference,
                   target: ImageReference, build_id: str) -> str:
    user = registry.get_config(source).get("config", {}).get("User") or ""
    dockerfile = build.patch_dockerfile(source, plan, security_source=security_source(plan), user=user,
                                        build_id=build_id, labels=bench_labels(plan, build_id))
    return build.build_patch_layer(api, target=target, dockerfile=dockerfile, nocache=True).image_id


def full_rebuild(api, plan: PatchPlan, base: ImageReference, target: ImageReference, build_id: str) -> str:
    vendor_dockerfile = (VENDOR_CONTEXT / "Dockerfile").read_text()
    upgrade = build.apt_upgrade_script(plan, security_source(plan))
    with tempfile.TemporaryDirectory(prefix="bench-patch-") as workdir:
        dockerfile = Path(workdir) / "Dockerfile"
        dockerfile.write_text(with_upgrade_step(vendor_dockerfile, upgrade))
        # An absolute Dockerfile path outside the context: docker-py sends it along with the context.
        return build.rebuild(api, target=target, context=VENDOR_CONTEXT, dockerfile=str(dockerfile),
                             base=base, build_id=build_id, labels=bench_labels(plan, build_id),
                             nocache=True).image_id


def with_upgrade_step(dockerfile: str, upgrade_script: str) -> str:
    """``dockerfile`` with ``RUN upgrade_script`` just before its final USER switch (so it runs as
    root, after everything the vendor installs), or at the end when it never switches user."""
    lines = dockerfile.splitlines()
    user_switches = [i for i, line in enumerate(lines) if line.strip().upper().startswith("USER ")]
    at = user_switches[-1] if user_switches else len(lines)
    return "\n".join([*lines[:at], f"RUN {upgrade_script}", *lines[at:]]) + "\n"


def bench_labels(plan: PatchPlan, build_id: str) -> dict[str, str]:
    return candidate_labels(plan, build_id=build_id, run_id=build_id)


class EchoBuildSteps(logging.Handler):
    """Shows each ``Step n/m`` that patchpipe's build module logs, as progress."""

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage().split(": ", 1)[-1]
        if line.startswith("Step "):
            progress("  " + shorten(line, 100))


# --- measuring ---


def measure(name: str, api, registry: RegistryClient, target: ImageReference, built_on: str,
            build_image: Callable[[], str]) -> Variant:
    progress(f"{name}: building {target}")
    build_began = time.time()
    clock = time.monotonic()
    image_id = build_image()
    build_seconds = time.monotonic() - clock
    added = layers_added(api, image_id, built_on)
    require_fresh(name, api, image_id, len(added), build_began)
    progress(f"{name}: built in {build_seconds:.1f} s, {len(added)} new history entries; pushing")

    repositories_before = repositories(registry)
    clock = time.monotonic()
    digest = publish.push(api, target)
    push_seconds = time.monotonic() - clock
    uploaded = layers_not_held_before(registry, target.with_digest(digest), repositories_before)
    progress(f"{name}: pushed {digest} in {push_seconds:.1f} s, {len(uploaded)} new layer blob(s)")
    return Variant(
        name=name, ref=str(target), digest=digest, build_seconds=round(build_seconds, 2),
        push_seconds=round(push_seconds, 2), layer_bytes=sum(layer.size for layer in added), layers=added,
        pushed_bytes=sum(blob.size for blob in uploaded), pushed_layers=len(uploaded),
    )


def layers_added(api, image: str, built_on: str) -> list[HistoryEntry]:
    """The history entries of ``image`` above those of ``built_on``, oldest first."""
    own, beneath = api.history(image), api.history(built_on)
    added = own[: len(own) - len(beneath)]
    return [HistoryEntry(clean_created_by(entry.get("CreatedBy", "")), int(entry.get("Size", 0))) for entry in reversed(added)]


def require_fresh(name: str, api, image: str, count: int, build_began: float) -> None:
    """Fail when any new history entry predates the build: it came from the build cache."""
    stale = [entry for entry in api.history(image)[:count] if entry["Created"] < int(build_began)]
    if stale:
        raise PatchpipeError(f"{name}: {len(stale)} step(s) of {image} were created before the build began "
                             f"(build cache), e.g. {clean_created_by(stale[0].get('CreatedBy', ''))[:80]!r}")


def clean_created_by(text: str) -> str:
    return text.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()


def repositories(registry: RegistryClient) -> list[str]:
    """Every repository the registry lists in its catalog."""
    names: list[str] = []
    url: str | None = f"{registry.scheme}://{registry.registry}/v2/_catalog?n=1000"
    while url:
        response = requests.get(url, timeout=30)
        response.raise_for_status()
        names += response.json().get("repositories") or []
        following = response.links.get("next", {}).get("url")
        url = urljoin(url, following) if following else None
    return names


def layers_not_held_before(registry: RegistryClient, pushed: ImageReference, repositories_before: list[str]):
    """The layer descriptors of ``pushed`` that none of ``repositories_before`` holds.

    ``pushed`` went to a repository that did not exist before, so these are exactly the layers that
    no repository had; a blob one of them held is mounted or skipped by the push, not uploaded."""
    manifest = registry.get_image_manifest(pushed)
    with requests.Session() as session:
        def held(digest: str) -> bool:
            return any(
                session.head(f"{registry.scheme}://{registry.registry}/v2/{repo}/blobs/{digest}", timeout=30).ok
                for repo in repositories_before
            )
        return [layer for layer in manifest.layers if not held(layer.digest)]


def installed_bytes(registry: RegistryClient, image: ImageReference, plan: PatchPlan) -> int:
    """Sum of Installed-Size (KiB x 1024) of the planned packages at their planned versions, read
    from ``image``'s dpkg status; fails unless ``image`` has every one of them installed."""
    files = read_image_files(registry.image_layers(image), FileSelector(paths=(DPKG_STATUS,)))
    if DPKG_STATUS not in files.files:
        raise PatchpipeError(f"{image} has no /{DPKG_STATUS}")
    installed = {
        (p["Package"], p["Version"]): int(p.get("Installed-Size", 0)) * 1024
        for p in Deb822.iter_paragraphs(files.files[DPKG_STATUS].splitlines(), use_apt_pkg=False)
        if p and " ".join(p.get("Status", "").split()) == INSTALLED
    }
    missing = [f"{u.name}={u.target}" for u in plan.upgrades if (u.name, u.target) not in installed]
    if missing:
        raise PatchpipeError(f"{image} does not have the planned versions of: {', '.join(missing)}")
    return sum(installed[(u.name, u.target)] for u in plan.upgrades)


def remove_bench_images(api) -> None:
    """Remove every local image tagged under the bench repositories (and so its build's parents)."""
    for image in api.images():
        names = (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
        if names and all(name.startswith(BENCH_REPOSITORIES) for name in names):
            api.remove_image(image["Id"])
            progress(f"removed local image {image['Id'][:19]} ({', '.join(image.get('RepoTags') or names)})")


# --- the report ---


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 3) if whole else None


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def mib(size: int) -> str:
    return f"{size / MiB:.2f} MiB"


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} x"


def verdict(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def report(plan: PatchPlan, base_digest: str, installed: int, patch: Variant, rebuild: Variant) -> dict:
    ratios = {
        "build_seconds": ratio(patch.build_seconds, rebuild.build_seconds),
        "push_seconds": ratio(patch.push_seconds, rebuild.push_seconds),
        "total_seconds": ratio(patch.build_seconds + patch.push_seconds, rebuild.build_seconds + rebuild.push_seconds),
        "layer_bytes": ratio(patch.layer_bytes, rebuild.layer_bytes),
        "pushed_bytes": ratio(patch.pushed_bytes, rebuild.pushed_bytes),
    }
    layer_vs_installed = ratio(patch.layer_bytes, installed)
    targets = {
        "patch_layer_vs_installed": {"limit": LAYER_LIMIT, "measured": layer_vs_installed,
                                     "pass": verdict(layer_vs_installed, LAYER_LIMIT)},
        "patch_time_vs_rebuild": {"limit": TIME_LIMIT, "measured": ratios["total_seconds"],
                                  "pass": verdict(ratios["total_seconds"], TIME_LIMIT)},
    }

    print(f"\nbench-patch: {plan.source_ref} @ {plan.source_digest}")
    print(f"  base {BASE} @ {base_digest}")
    print(f"\nplanned upgrades ({len(plan.upgrades)}, from {plan.release}-security):")
    for u in plan.upgrades:
        print(f"  {u.name:<22} {u.installed:<28} -> {u.target}")
    print(f"  installed size of the new versions: {mib(installed)} ({installed:,} bytes)")

    print(f"\n{'':<16}{'build':>9}{'push':>9}{'layer bytes added':>20}{'bytes pushed':>26}")
    for v in (patch, rebuild):
        pushed = f"{mib(v.pushed_bytes)} ({v.pushed_layers} layer{'s' * (v.pushed_layers != 1)})"
        print(f"{v.name:<16}{v.build_seconds:>8.1f}s{v.push_seconds:>8.1f}s{mib(v.layer_bytes):>20}{pushed:>26}")
    print(f"{'patch/rebuild':<16}{times(ratios['build_seconds']):>9}{times(ratios['push_seconds']):>9}"
          f"{times(ratios['layer_bytes']):>20}{times(ratios['pushed_bytes']):>26}")

    print("\nlayers added (uncompressed):")
    for v in (patch, rebuild):
        for layer in v.layers:
            if layer.size:
                print(f"  {v.name:<16}{mib(layer.size):>12}  {shorten(layer.created_by, 70)}")

    print("\ntargets:")
    for label, key in (("patch layer <= 1.5 x installed size of upgraded packages", "patch_layer_vs_installed"),
                       ("patch time  <= 0.5 x rebuild time (build + push)", "patch_time_vs_rebuild")):
        target = targets[key]
        outcome = {True: "PASS", False: "MISS", None: "n/a"}[target["pass"]]
        print(f"  {label:<58} {times(target['measured']):>8}  {outcome}")

    return {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": plan.source_ref, "source_digest": plan.source_digest,
        "base": BASE, "base_digest": base_digest, "release": plan.release,
        "upgrades": [asdict(u) for u in plan.upgrades], "installed_bytes": installed,
        "patch": asdict(patch), "rebuild": asdict(rebuild), "ratios": ratios, "targets": targets,
    }


# --- main ---


def run(keep_images: bool) -> None:
    registry = RegistryClient(REGISTRY)
    api = docker.from_env(timeout=900).api
    plan, source = make_plan(registry)
    base = parse_reference(BASE)
    base = base.with_digest(registry.resolve(base))
    progress(f"{len(plan.upgrades)} planned upgrades: {' '.join(f'{u.name}={u.target}' for u in plan.upgrades)}")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%S")
    patch_target = parse_reference(f"{BENCH_REPOSITORIES}patch-{stamp}:2.4")
    rebuild_target = parse_reference(f"{BENCH_REPOSITORIES}rebuild-{stamp}:2.4")
    logging.getLogger("patchpipe.images.build").addHandler(EchoBuildSteps())
    logging.getLogger("patchpipe.images.build").setLevel(logging.INFO)

    remove_bench_images(api)
    try:
        patch = measure("patch in place", api, registry, patch_target, str(source),
                        lambda: patch_in_place(api, registry, plan, source, patch_target, f"bench-patch-{stamp}"))
        rebuild = measure("full rebuild", api, registry, rebuild_target, str(base),
                          lambda: full_rebuild(api, plan, base, rebuild_target, f"bench-rebuild-{stamp}"))
        progress("reading both pushed images' dpkg status: the planned versions and their installed size")
        installed = installed_bytes(registry, patch.pushed, plan)
        installed_bytes(registry, rebuild.pushed, plan)  # fails unless the rebuild has the same versions
    finally:
        if not keep_images:
            remove_bench_images(api)
    figures = report(plan, base.digest, installed, patch, rebuild)
    print(f"\nfigures written to {record_results('patch', figures)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_patch.py",
        description="Patch the lab's vendor image in place versus a full no-cache rebuild with the same "
                    "upgrades; print time, layer and push sizes with ratios, and write bench/results.json.",
    )
    parser.add_argument("--keep-images", action="store_true",
                        help="leave the bench images in the local Docker Engine (to inspect them)")
    args = parser.parse_args(argv)
    try:
        run(args.keep_images)
    except (PatchpipeError, requests.RequestException, docker.errors.DockerException) as exc:
        print(f"bench-patch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
