"""The ``patchpipe`` command, run as installed (a subprocess) and in-process through ``main``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from patchpipe.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "fleet.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "fleet"
PATCHPIPE = Path(sys.executable).with_name("patchpipe")  # the console script of the venv running the tests


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=60)


# --- the installed entry point -------------------------------------------------------------------


def test_installed_command_validates_the_demo_fleet() -> None:
    result = run(PATCHPIPE, "fleet", "validate", "include/fleet.yaml")
    assert (result.returncode, result.stdout, result.stderr) == (0, "include/fleet.yaml: ok (2 images, 1 base)\n", "")


def test_installed_command_names_the_typo_and_exits_2() -> None:
    result = run(PATCHPIPE, "fleet", "validate", FIXTURES / "typo-key.yaml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{FIXTURES / 'typo-key.yaml'}: 1 problem(s)\n  images[0].imgae: unknown key\n"


def test_installed_command_help_shows_the_commands_and_an_example() -> None:
    result = run(PATCHPIPE, "--help")
    assert result.returncode == 0
    assert "fleet" in result.stdout
    assert "patchpipe fleet validate include/fleet.yaml" in result.stdout


def test_module_runs_as_a_script() -> None:
    result = run(sys.executable, "-m", "patchpipe.cli", "fleet", "validate", DEMO)
    assert (result.returncode, result.stdout) == (0, f"{DEMO}: ok (2 images, 1 base)\n")


@pytest.mark.parametrize(
    "manifest", ["typo-key.yaml", "syntax-error.yaml", "several-problems.yaml", "does-not-exist.yaml"]
)
def test_user_mistakes_never_show_a_traceback(manifest: str) -> None:
    result = run(PATCHPIPE, "fleet", "validate", FIXTURES / manifest)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert manifest in result.stderr


# --- main() in-process ---------------------------------------------------------------------------


def test_main_returns_0_and_summarises_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "validate", str(DEMO)]) == 0
    assert capsys.readouterr().out == f"{DEMO}: ok (2 images, 1 base)\n"


def test_main_lists_every_problem_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "validate", str(FIXTURES / "several-problems.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[1:] == [
        "  defaults.patch_window: not a valid cron expression: day-of-week '8' is out of range 0-7 (got '0 2 * * 8')",
        "  images[0].build: required when kind is 'rebuild'",
        "  images[1].name: name 'demo-web' is already used by images[0]",
    ]


def test_main_reports_yaml_syntax_errors_with_their_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "validate", str(FIXTURES / "syntax-error.yaml")]) == 2
    assert "  line 7, column 10: " in capsys.readouterr().err


def test_main_reports_a_missing_file_by_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "fleet.yaml"
    assert main(["fleet", "validate", str(missing)]) == 2
    assert capsys.readouterr().err == f"patchpipe: error: fleet manifest not found: {missing}\n"


def test_help_returns_0_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "validate", "--help"]) == 0
    assert "usage: patchpipe fleet validate [-h] FILE" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        ([], "usage: patchpipe [-h] [--version] COMMAND ..."),
        (["fleet"], "usage: patchpipe fleet [-h] COMMAND ..."),
        (["fleet", "validate"], "the following arguments are required: FILE"),
        (["flet"], "invalid choice: 'flet'"),
    ],
)
def test_incomplete_commands_print_usage_and_exit_2(argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert usage in capsys.readouterr().err


# --- patchpipe ledger summary ----------------------------------------------------------------------

SUMMARY_T0 = "2026-11-21T02:00:00+00:00"
OLD_DIGEST = "sha256:" + "0" * 64
NEW_DIGEST = "sha256:" + "1" * 64


def ledger_at(tmp_path: Path):
    """A real SQLite ledger in tmp_path, and the --db URL the command reads it with."""
    from patchpipe.db import create_schema, make_engine
    from patchpipe.ledger.store import Ledger

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    create_schema(engine)
    return Ledger(engine), url


def start(ledger, run_id: str, hours: int = 0, run_type: str = "scheduled"):
    from datetime import datetime, timedelta

    started = datetime.fromisoformat(SUMMARY_T0) + timedelta(hours=hours)
    ledger.start_run(run_id, run_type, started_at=started)


def summarise(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(PATCHPIPE, "ledger", "summary", "--db", url, *extra)


def test_ledger_summary_prints_the_latest_run_and_each_image(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "scheduled__2026-11-21T02:00:00+00:00")
    ledger.record_image("scheduled__2026-11-21T02:00:00+00:00", "demo-web", kind="rebuild", status="promoted",
                        source_ref="127.0.0.1:5000/demo/web:1.0", before_digest=OLD_DIGEST,
                        candidate_tag="127.0.0.1:5000/demo/web:1.0-patch.20261121.1", after_digest=NEW_DIGEST,
                        packages=[{"name": "libssl3", "from": "3.0.11-1~deb12u1", "to": "3.0.15-1~deb12u1"}])
    ledger.record_image("scheduled__2026-11-21T02:00:00+00:00", "vendor-app", kind="patch", status="noop",
                        source_ref="127.0.0.1:5000/vendor/app:2.4", before_digest=OLD_DIGEST)
    ledger.finish_run("scheduled__2026-11-21T02:00:00+00:00", "success")

    result = summarise(url)

    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "patch run scheduled__2026-11-21T02:00:00+00:00 (scheduled, success)"
    assert "demo-web (rebuild): promoted" in lines
    assert "  package     libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1" in lines
    assert "vendor-app (patch): noop" in lines
    assert lines[-1] == "2 images: 1 patched and promoted, 1 with nothing to patch, 0 failed"


def test_ledger_summary_exits_1_when_an_image_failed(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "r1")
    ledger.record_image("r1", "demo-web", kind="rebuild", status="promoted")
    ledger.record_image("r1", "vendor-app", kind="patch", status="failed", failure_stage="verify",
                        failure_reason="candidate rejected: perl-base is missing")
    ledger.finish_run("r1", "failed")

    result = summarise(url)

    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "patch run r1 (scheduled, failed)"
    assert "  failed at   verify: candidate rejected: perl-base is missing" in result.stdout.splitlines()
    assert "Traceback" not in result.stderr


def test_ledger_summary_exits_1_when_an_image_was_rolled_back(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "r1")
    ledger.record_image("r1", "demo-web", kind="rebuild", status="rolled_back", failure_stage="analyze_production",
                        failure_reason="healthz: status 502, expected 200")
    assert summarise(url).returncode == 1


def test_ledger_summary_exits_0_for_a_run_with_nothing_to_patch(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "r1")
    ledger.record_image("r1", "demo-web", kind="rebuild", status="noop")
    result = summarise(url)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "nothing left to patch"


def test_ledger_summary_of_a_run_that_recorded_no_images(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "manual__2026-11-21T09:00:00+00:00", run_type="manual")
    result = summarise(url)
    assert (result.returncode, result.stdout) == (
        0, "patch run manual__2026-11-21T09:00:00+00:00 (manual, running)\nno images in this run\n")


def test_ledger_summary_shows_the_run_that_started_last_by_default(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "z-older", hours=0)
    ledger.record_image("z-older", "demo-web", kind="rebuild", status="failed")
    start(ledger, "a-newer", hours=168)
    ledger.record_image("a-newer", "demo-web", kind="rebuild", status="promoted")

    result = summarise(url)

    assert result.returncode == 0
    assert result.stdout.startswith("patch run a-newer ")


def test_ledger_summary_run_selects_an_older_run(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "older", hours=0)
    ledger.record_image("older", "demo-web", kind="rebuild", status="failed")
    start(ledger, "newer", hours=168)
    ledger.record_image("newer", "demo-web", kind="rebuild", status="promoted")

    result = summarise(url, "--run", "older")

    assert result.returncode == 1
    assert result.stdout.startswith("patch run older ")
    assert "demo-web (rebuild): failed" in result.stdout


def test_ledger_summary_of_an_empty_ledger_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = summarise(url)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"patchpipe: error: no patch run at all in the ledger at {url}\n"


def test_ledger_summary_of_an_unknown_run_exits_2_and_names_it(tmp_path: Path) -> None:
    ledger, url = ledger_at(tmp_path)
    start(ledger, "r1")
    result = summarise(url, "--run", "manual__1999-01-01")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"patchpipe: error: no patch run manual__1999-01-01 in the ledger at {url}\n"
    assert "Traceback" not in result.stderr


def test_ledger_summary_with_a_malformed_db_url_exits_2_without_a_traceback() -> None:
    result = run(PATCHPIPE, "ledger", "summary", "--db", "not a url")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("patchpipe: error: database URL ")
    assert "Traceback" not in result.stderr


def test_ledger_summary_with_a_database_that_cannot_be_opened_exits_2_without_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'ledger.db'}"  # a mistyped path: SQLite cannot create it
    result = run(PATCHPIPE, "ledger", "summary", "--db", url)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith("patchpipe: error: ")
    assert str(tmp_path / "no-such-dir" / "ledger.db") in result.stderr
