"""The ``patchpipe`` command: the domain core from a shell, no Airflow needed.

Each command group registers itself in one ``_add_<group>_commands`` function; each command is a
``_<group>_<command>(args) -> int`` function. User mistakes (PatchpipeError) print their message and
exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from patchpipe.cli_advisories import add_advisories_commands
from patchpipe.cli_fleet_generate import add_fleet_generate_command
from patchpipe.cli_ledger_history import add_ledger_history_commands
from patchpipe.cli_sbom import add_sbom_command
from patchpipe.cli_scan import add_scan_command
from patchpipe.cli_vercmp import add_vercmp_command
from patchpipe.errors import ManifestError, PatchpipeError
from patchpipe.fleet import load_fleet

EXIT_OK = 0
EXIT_USER_ERROR = 2

Command = Callable[[argparse.Namespace], int]

_EXAMPLES = """\
examples:
  patchpipe fleet validate include/fleet.yaml
      check a fleet manifest; every problem is listed as path: message
  patchpipe fleet generate --images 1000 --out /tmp/fleet-1000.yaml
      a manifest of 1,000 images on 3 shared bases, to try a large fleet
  patchpipe ledger summary
      what the last patch run did, image by image
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors: keep main() returning an int
        return exit_.code if isinstance(exit_.code, int) else EXIT_USER_ERROR
    command: Command | None = getattr(args, "command", None)
    if command is None:
        args.help_parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        return command(args)
    except ManifestError as error:
        print(error, file=sys.stderr)
    except PatchpipeError as error:
        print(f"patchpipe: error: {error}", file=sys.stderr)
    return EXIT_USER_ERROR


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchpipe",
        description="Keep a fleet of container images patched. The same core the Airflow DAGs run.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(help_parser=parser)
    groups = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_fleet_commands(groups)
    _add_ledger_commands(groups)
    add_advisories_commands(groups)
    add_sbom_command(groups)
    add_scan_command(groups)
    add_vercmp_command(groups)
    return parser


def _add_fleet_commands(groups: argparse._SubParsersAction) -> None:
    fleet = groups.add_parser(
        "fleet",
        help="work with the fleet manifest",
        description="Work with the fleet manifest (include/fleet.yaml): the images patchpipe keeps patched.",
    )
    fleet.set_defaults(help_parser=fleet)
    commands = fleet.add_subparsers(title="commands", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a fleet manifest and list every problem",
        description="Check a fleet manifest. Prints 'FILE: ok (...)' and exits 0, or lists every\n"
        "problem as 'path: message' on stderr and exits 2.",
        epilog="example:\n  patchpipe fleet validate include/fleet.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("file", metavar="FILE", help="the manifest, e.g. include/fleet.yaml")
    validate.set_defaults(command=_fleet_validate)
    add_fleet_generate_command(commands)


def _fleet_validate(args: argparse.Namespace) -> int:
    fleet = load_fleet(args.file)
    print(f"{args.file}: ok ({_count(len(fleet.images), 'image')}, {_count(len(fleet.bases), 'base')})")
    return EXIT_OK


def _add_ledger_commands(groups: argparse._SubParsersAction) -> None:
    ledger = groups.add_parser(
        "ledger",
        help="read the patch ledger",
        description="Read the patch ledger: what was patched, when, and how each rollout went.",
    )
    ledger.set_defaults(help_parser=ledger)
    commands = ledger.add_subparsers(title="commands", metavar="COMMAND")
    summary = commands.add_parser(
        "summary",
        help="one run's outcome per image (default: the latest run)",
        description="Print one run's outcome per image: packages patched, digests, staging and production.\n"
        "Exits 1 when an image failed in that run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summary.add_argument("--run", metavar="RUN_ID", help="the Airflow run id (default: the latest run)")
    summary.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the ledger (default: $PATCHPIPE_DB, "
                         "else $AIRFLOW_HOME/patchpipe.db)")
    summary.set_defaults(command=_ledger_summary)
    add_ledger_history_commands(commands)


def _ledger_summary(args: argparse.Namespace) -> int:
    from patchpipe import db
    from patchpipe.ledger.store import Ledger
    from patchpipe.lifecycle.summary import FAILED, format_summary

    url = args.db or db.database_url()
    engine = db.make_engine(url)
    db.create_schema(engine)
    ledger = Ledger(engine)
    run = ledger.get_run(args.run) if args.run else ledger.latest_run()
    if run is None:
        raise PatchpipeError(f"no patch run {args.run or 'at all'} in the ledger at {url}")
    records = ledger.run_summary(run.run_id)
    print(f"patch run {run.run_id} ({run.run_type.value}, {run.status.value})")
    print(format_summary(records, ledger.stage_results(run.run_id)))
    return 1 if any(r.status in FAILED for r in records) else EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _version() -> str:
    try:
        return version("patchpipe")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
