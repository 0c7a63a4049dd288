"""``patchpipe vercmp {deb,apk,rpm} A B``: order two versions under one distribution's rules.

``add_vercmp_command(groups)`` registers the command on the ``patchpipe`` parser; ``patchpipe.cli.main``
turns a PatchpipeError (an invalid version) into its message and exit status 2.
"""

from __future__ import annotations

import argparse

from patchpipe.packages.versions import ECOSYSTEMS, compare

EXIT_OK = 0

_EXAMPLES = """\
prints -1, 0 or 1 as A sorts before, equal to or after B, and exits 0;
an invalid version is named on stderr with exit status 2.

examples:
  patchpipe vercmp deb 1:2.38.1-5+deb12u1 2.38.1-5+deb12u3     1   (the epoch wins)
  patchpipe vercmp deb 1.0~rc1 1.0                             -1  (~ sorts before the end)
  patchpipe vercmp apk 1.2.3_rc1-r0 1.2.3-r0                   -1  (_rc is a pre-release)
  patchpipe vercmp apk 1.01 1.1                                -1  (a leading zero compares as a fraction)
  patchpipe vercmp rpm 1.0^git1-1 1.0-1                        1   (^ is a post-release snapshot)
"""


def add_vercmp_command(groups: argparse._SubParsersAction) -> None:
    vercmp = groups.add_parser(
        "vercmp",
        help="compare two package versions (deb, apk or rpm rules)",
        description="Compare two package versions exactly as dpkg, apk or rpm would.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vercmp.add_argument("ecosystem", choices=ECOSYSTEMS, metavar="{" + ",".join(ECOSYSTEMS) + "}",
                        help="whose rules: deb (dpkg), apk (Alpine) or rpm (epoch:version-release)")
    vercmp.add_argument("a", metavar="A", help="a version, e.g. 1:2.38.1-5+deb12u1")
    vercmp.add_argument("b", metavar="B", help="the version to compare A with")
    vercmp.set_defaults(command=_vercmp, help_parser=vercmp)


def _vercmp(args: argparse.Namespace) -> int:
    print(compare(args.ecosystem, args.a, args.b))
    return EXIT_OK
