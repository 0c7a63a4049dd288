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
