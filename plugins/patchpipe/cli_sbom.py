"""``patchpipe sbom (IMAGE | --rootfs DIR) [--local] [--format cyclonedx|table]``: what an image holds.

``add_sbom_command(groups)`` registers the command on the ``patchpipe`` parser; ``patchpipe.cli.main``
turns a PatchpipeError into its message and exit status 2. ``add_target_arguments`` and
``read_target`` are the IMAGE / ``--local`` / ``--rootfs`` handling, for other commands that read an
image the same way (``patchpipe scan``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from patchpipe.errors import PatchpipeError

if TYPE_CHECKING:  # imported when the command runs, so `patchpipe --help` stays quick
    from patchpipe.packages.inventory import Inventory
    from patchpipe.scan.sbom import SbomSubject

EXIT_OK = 0
FORMATS = ("cyclonedx", "table")
DEFAULT_PLATFORM = "linux/amd64"

_EXAMPLES = """\
examples:
  patchpipe sbom 127.0.0.1:5000/demo/web:1.0                  CycloneDX 1.6 JSON, read from the registry
  patchpipe sbom 127.0.0.1:5000/demo/web:1.0 --format table   one line per package
  patchpipe sbom --local demo/web:1.0                         from the local Docker Engine (docker save)
  patchpipe sbom --rootfs /srv/chroots/bookworm               an unpacked root filesystem

The image is read without running it: layers are read from the top down, and reading stops once
os-release and a package database (dpkg status or status.d, apk installed, rpm's rpmdb.sqlite) are found.
"""


def add_sbom_command(groups: argparse._SubParsersAction) -> None:
    sbom = groups.add_parser(
        "sbom",
        help="list the packages installed in an image (CycloneDX 1.6 SBOM)",
        description="Read the installed packages of an image or root filesystem, without running it, and print\n"
        "them as a CycloneDX 1.6 JSON SBOM (package URLs, source packages) or as a table.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_arguments(sbom)
    sbom.add_argument("--format", choices=FORMATS, default="cyclonedx", help="output format (default: cyclonedx)")
    sbom.set_defaults(command=_sbom, help_parser=sbom)


def add_target_arguments(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """IMAGE | --rootfs DIR, with --local and --platform for IMAGE; returns the IMAGE | --rootfs group."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("image", nargs="?", metavar="IMAGE",
                        help="an image reference with its registry, e.g. 127.0.0.1:5000/demo/web:1.0 "
                        "(with --local: any name or id the local Docker Engine knows)")
    target.add_argument("--rootfs", metavar="DIR", help="an unpacked root filesystem instead of an image")
    parser.add_argument("--local", action="store_true",
                        help="read IMAGE from the local Docker Engine (DOCKER_HOST) instead of its registry")
    parser.add_argument("--platform", help="the platform to read from a multi-platform IMAGE in a registry "
                        f"(default: {DEFAULT_PLATFORM})")
    return target


def read_target(args: argparse.Namespace) -> tuple[SbomSubject, Inventory]:
    """What ``add_target_arguments`` asked for, and its inventory."""
    from patchpipe.scan.sbom import SbomSubject

    if args.platform and (args.local or args.rootfs is not None):
        raise PatchpipeError("--platform picks an image from a registry's multi-platform index; "
                             "it does not apply to --local or --rootfs")
    if args.rootfs is not None:
        if args.local:
            raise PatchpipeError("--local reads an IMAGE from the Docker Engine; it does not apply to --rootfs")
        from patchpipe.scan.rootfs import inventory_rootfs

        return SbomSubject(args.rootfs, kind="rootfs"), inventory_rootfs(args.rootfs)
    if args.local:
        return _local_image(args.image)
    from patchpipe.images.reference import parse_reference
    from patchpipe.images.registry import RegistryClient
    from patchpipe.packages.inventory import inventory_registry_image

    ref = parse_reference(args.image)
    with RegistryClient(ref.registry) as client:
        digest, inventory = inventory_registry_image(client, ref, args.platform or DEFAULT_PLATFORM)
    return SbomSubject(ref.name + (f":{ref.tag}" if ref.tag else ""), digest), inventory


def _sbom(args: argparse.Namespace) -> int:
    subject, inventory = read_target(args)
    if args.format == "table":
        print(format_table(subject, inventory))
        return EXIT_OK
    from patchpipe.scan.sbom import build_sbom, sbom_json

    print(sbom_json(build_sbom(inventory, subject)))
    return EXIT_OK


def format_table(subject: SbomSubject, inventory: Inventory) -> str:
    """A heading naming the image and its system, then NAME VERSION ARCH SOURCE, one package a line."""
    os = inventory.os
    system = " ".join(filter(None, [os.id, os.version_id, f"({os.version_codename})" if os.version_codename else None]))
    what = f"{subject.name}@{subject.digest}" if subject.digest and "@" not in subject.name else subject.name
    count = len(inventory.packages)
    rows = [("NAME", "VERSION", "ARCH", "SOURCE")]
    for package in sorted(inventory.packages, key=lambda p: (p.name, p.architecture, p.version)):
        source = package.source_name
        if package.source_version != package.version:
            source += f" {package.source_version}"
        rows.append((package.name, package.version, package.architecture, source))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [f"{what}: {system}, {inventory.package_manager}, {count} package{'' if count == 1 else 's'}"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def _local_image(image: str) -> tuple[SbomSubject, Inventory]:
    import docker
    import docker.errors
    import requests

    from patchpipe.packages.inventory import inventory_local_image
    from patchpipe.scan.sbom import SbomSubject

    try:
        client = docker.from_env()
        details = client.api.inspect_image(image)
    except docker.errors.NotFound:
        raise PatchpipeError(f"image {image} is not in the local Docker Engine") from None
    except (docker.errors.DockerException, requests.RequestException) as error:
        raise PatchpipeError(f"the Docker Engine could not inspect image {image}: {error}") from None
    try:
        # Read the image by id, so a tag moved meanwhile cannot mix two images.
        inventory = inventory_local_image(client.api, details["Id"])
    finally:
        client.close()
    digest = _repo_digest(image, details.get("RepoDigests") or [])
    return SbomSubject(image, digest, image_id=details["Id"]), inventory


def _repo_digest(image: str, repo_digests: list[str]) -> str | None:
    """A registry manifest digest of a local image, when it came from (or went to) a registry: the one
    ``image`` pins, else the first the engine recorded for its repository. (The engine keeps no record of
    which tag a digest was pulled by; any of them names exactly this image's content.)"""
    if "@" in image:
        return image.split("@", 1)[1]
    name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for entry in repo_digests:
        repository, _, digest = entry.partition("@")
        if repository == name:
            return digest
    return None
