"""``patchpipe ledger history`` and ``patchpipe ledger report`` on a ledger holding a realistic run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchpipe.cli import main
from patchpipe.db import create_schema, make_engine
from patchpipe.ledger.history import promotions
from patchpipe.ledger.store import Ledger
from support.patch_runs import PUBLISHED, RUN, write_realistic_run

PERIOD = ["--since", "2026-11-01", "--until", "2026-12-01"]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    create_schema(engine)
    write_realistic_run(Ledger(engine))
    engine.dispose()
    return url


def test_history_as_json(url: str, capsys) -> None:
    assert main(["ledger", "history", "--db", url, "--format", "json", *PERIOD]) == 0
    out = json.loads(capsys.readouterr().out)

    fixed_at = promotions(Ledger(make_engine(url)), image="demo-web")[0].finished_at
    by_id = {entry["id"]: entry for entry in out["time_to_patch"]}
    assert set(by_id) == {"CVE-2026-0001", "CVE-2026-0002", "CVE-2026-0003"}
    assert by_id["CVE-2026-0001"]["fixed_at"] == fixed_at.isoformat()
    assert by_id["CVE-2026-0001"]["time_to_patch_seconds"] == (fixed_at - PUBLISHED["CVE-2026-0001"]).total_seconds()
    assert by_id["CVE-2026-0003"]["fixed_at"] is None and by_id["CVE-2026-0001"]["fixed_by_run"] == RUN
    mttr = out["mean_time_to_remediate"]
    expected = ((fixed_at - PUBLISHED["CVE-2026-0001"]) + (fixed_at - PUBLISHED["CVE-2026-0002"])) / 2
    assert (mttr["fixes"], mttr["mean_seconds"], mttr["without_published"]) == (2, expected.total_seconds(), 0)
    assert [(p["image"], p["total"], p["by_severity"]["critical"]) for p in out["open_findings"]] == [
        ("demo-web", 3, 1), ("demo-worker", 0, 0)]


def test_history_as_a_table(url: str, capsys) -> None:
    assert main(["ledger", "history", "--db", url, "--image", "demo-web", *PERIOD]) == 0
    out = capsys.readouterr().out

    assert out.startswith("time to patch (advisory published -> fixed in production)\n")
    assert "CVE-2026-0001" in out and "CVE-2026-0003" in out and "open " in out
    assert "mean time to remediate (2026-11-01 00:00:00 UTC to 2026-12-01 00:00:00 UTC): " in out
    assert "over 2 fixed findings" in out
    assert "open findings in production" in out and "demo-worker" not in out


def test_history_of_an_empty_period(url: str, capsys) -> None:
    assert main(["ledger", "history", "--db", url, "--since", "2020-01-01", "--until", "2020-02-01"]) == 0
    out = capsys.readouterr().out
    assert ": - over 0 fixed findings" in out and "no production snapshots in the period" in out


def test_bad_dates_are_user_errors(url: str, capsys) -> None:
    assert main(["ledger", "history", "--db", url, "--since", "last tuesday"]) == 2
    assert "--since 'last tuesday' is not a date" in capsys.readouterr().err
    assert main(["ledger", "history", "--db", url, "--since", "2026-12-01", "--until", "2026-11-01"]) == 2
    assert "is not before --until" in capsys.readouterr().err


def test_report_prints_the_latest_run_or_writes_both_files(url: str, tmp_path: Path, capsys) -> None:
    assert main(["ledger", "report", "--db", url]) == 0
    assert capsys.readouterr().out.startswith(f"# Patch run `{RUN}`")
    assert main(["ledger", "report", "--db", url, "--run", RUN, "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")

    assert main(["ledger", "report", "--db", url, "--output", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert capsys.readouterr().out.split() == [str(out / f"{RUN}.md"), str(out / f"{RUN}.html")]
    assert main(["ledger", "report", "--db", url, "--run", "nope"]) == 2
    assert "no patch run nope in the ledger" in capsys.readouterr().err
