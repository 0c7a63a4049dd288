"""``patchpipe fleet generate``: write a fleet manifest of N images on a few shared bases.

``add_fleet_generate_command(commands)`` registers it under ``patchpipe fleet``; the work is done by
``patchpipe.fleet.generate``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patchpipe.fleet.generate import (
    DEFAULT_BASES,
    DEFAULT_NAMESPACE,
    DEFAULT_REGISTRY,
    generate_fleet,
    seed_bases,
    seed_images,
    write_fleet,
)

EXIT_OK = 0

_DESCRIPTION = """\
Write a fleet manifest of N images that share a few base images, to try patchpipe (or benchmark
it, see tests/bench/bench_scale.py) on a large fleet. Bases are base-1..K and images app-0001..N,
each in its own repository REGISTRY/NAMESPACE/<name>; image i is built on base i mod K. Every
image is kind 'patch', unless --rebuild-context is given: then every other one is kind 'rebuild'
from that Dockerfile on its base. Deploy targets are Swarm services named NAMESPACE-<image>-staging
and -production with .invalid URLs, so a generated fleet never deploys over a service you have.

The manifest alone names tags that do not exist yet. With --seed-from (one real image per base,
on the same registry) the tags are made real too, through the registry's API (nothing goes
through Docker): each base tag that does not exist yet becomes a copy of its source (same digest),
and every image tag its base's current image plus one small layer of its own
(/etc/patchpipe-fleet/<name>), as if built FROM the base: its own digest, the base's layers."""

_EXAMPLES = """\
examples:
  patchpipe fleet generate --images 1000 --out /tmp/fleet-1000.yaml
  patchpipe fleet generate --images 200 --out /tmp/fleet-200.yaml --bases 2 \\
      --seed-from 127.0.0.1:5000/base/debian:bookworm-lab-original \\
      --seed-from 127.0.0.1:5000/vendor/app:2.4-lab-original
  patchpipe fleet validate /tmp/fleet-200.yaml

A fleet of more than 1024 images needs a higher [core] max_map_length
(AIRFLOW__CORE__MAX_MAP_LENGTH; the Makefile and the demo scripts set 4096).
"""


def add_fleet_generate_command(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser(
        "generate",
        help="write a manifest of N images on a few shared bases (for large-fleet tests)",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument("--images", type=int, required=True, metavar="N", help="how many images")
    generate.add_argument("--out", required=True, metavar="FILE", help="where to write the manifest")
    generate.add_argument("--bases", type=int, default=DEFAULT_BASES, metavar="K",
                          help=f"how many base images the images share (default {DEFAULT_BASES})")
    generate.add_argument("--registry", default=DEFAULT_REGISTRY, metavar="HOST[:PORT]",
                          help=f"registry of every tag (default {DEFAULT_REGISTRY})")
    generate.add_argument("--namespace", default=DEFAULT_NAMESPACE, metavar="NS",
                          help=f"repository prefix of every tag (default {DEFAULT_NAMESPACE})")
    generate.add_argument("--rebuild-context", metavar="DIR",
                          help="build context with a Dockerfile (FROM ${BASE_IMAGE}); every other image is then "
                               "kind 'rebuild' from it")
    generate.add_argument("--seed-from", action="append", default=[], metavar="IMAGE",
                          help="a real image to copy to a base tag, once per base (repeat it K times); "
                               "makes every base and image tag exist in the registry")
    generate.set_defaults(command=_fleet_generate, help_parser=generate)


def _fleet_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    generated = generate_fleet(args.images, bases=args.bases, registry=args.registry, namespace=args.namespace,
                               rebuild_context=args.rebuild_context, manifest_dir=out.resolve().parent)
    if args.seed_from:
        seed_bases(generated, args.seed_from)
        written = seed_images(generated)
        print(f"seeded {args.registry}/{args.namespace}/: {len(generated.fleet.bases)} bases, "
              f"{written} image tags written", file=sys.stderr)
    write_fleet(generated, out)
    print(f"{out}: {len(generated.fleet.images)} images on {len(generated.fleet.bases)} bases")
    return EXIT_OK
