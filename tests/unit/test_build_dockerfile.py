"""The patch-in-place Dockerfile, its apt script (pins, isolation, cleanup, valid shell quoting), and its build,
which waits for a mirror that lags behind the plan."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.images.build import APT_CHURN, PATCH_SOURCES, apt_upgrade_script, patch_dockerfile
from patchpipe.images.reference import parse_reference
from patchpipe.plan import PackageUpgrade, PatchPlan

DIGEST = "sha256:" + "a" * 64
SOURCE = parse_reference("127.0.0.1:5000/vendor/app:2.4").with_digest(DIGEST)
SECURITY = "deb http://deb.debian.org/debian-security bookworm-security main"
UPGRADES = [
    PackageUpgrade("libssl3", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", "openssl"),
    PackageUpgrade("perl-base", "5.36.0-7", "5.36.0-7+deb12u1", "perl"),
    PackageUpgrade("tzdata", "2024a-0+deb12u1", "1:2025b-0+deb12u1", "tzdata"),  # an epoch: ':' in the pin
]


def plan_of(upgrades=UPGRADES, package_manager: str = "dpkg") -> PatchPlan:
    return PatchPlan(image="vendor-app", source_ref="127.0.0.1:5000/vendor/app:2.4", source_digest=DIGEST,
                     release="bookworm", package_manager=package_manager, upgrades=list(upgrades))


def dockerfile(user: str = "app", build_id: str | None = "2.4-patch.20261124.1",
               labels: dict[str, str] | None = None, plan: PatchPlan | None = None) -> list[str]:
    text = patch_dockerfile(SOURCE, plan or plan_of(), security_source=SECURITY, user=user, build_id=build_id,
                            labels={"io.patchpipe.build-id": "x"} if labels is None else labels)
    assert text.endswith("\n")
    return text.splitlines()


def commands(script: str) -> list[list[str]]:
    """The script's ``&&``-joined commands, each split into words the way a POSIX shell would."""
    words = shlex.split(script)
    found, current = [], []
    for word in words:
        if word == "&&":
            found.append(current)
            current = []
        else:
            current.append(word)
    return [*found, current]


# --- patch_dockerfile --------------------------------------------------------------------------


def test_the_dockerfile_starts_from_the_source_by_digest() -> None:
    lines = dockerfile()
    assert lines[0] == f"FROM 127.0.0.1:5000/vendor/app@{DIGEST}"


def test_the_layer_runs_as_root_and_then_returns_to_the_images_user() -> None:
    lines = dockerfile(user="app:app")
    assert lines[1] == "USER root"
    assert lines[2].startswith("RUN ")
    assert lines[3] == "USER app:app"


def test_the_run_line_is_the_apt_script() -> None:
    assert dockerfile()[2] == "RUN " + apt_upgrade_script(plan_of(), SECURITY)


@pytest.mark.parametrize("user", ["", "root", "0"])
def test_an_image_running_as_root_gets_no_user_line_after_the_patch(user: str) -> None:
    lines = dockerfile(user=user)
    assert [line for line in lines if line.startswith("USER")] == ["USER root"]


def test_a_numeric_non_root_user_is_restored() -> None:
    assert "USER 1000" in dockerfile(user="1000")


def test_the_build_id_becomes_an_env_line() -> None:
    assert "ENV PATCHPIPE_BUILD_ID=2.4-patch.20261124.1" in dockerfile(build_id="2.4-patch.20261124.1")


@pytest.mark.parametrize("build_id", [None, ""])
def test_without_a_build_id_there_is_no_env_line(build_id: str | None) -> None:
    assert not [line for line in dockerfile(build_id=build_id) if line.startswith("ENV")]


def test_the_exact_dockerfile_of_a_patch_layer() -> None:
    lines = dockerfile(user="app", build_id="b1", labels={"b": "2", "a": "1"})
    assert lines == [
        f"FROM 127.0.0.1:5000/vendor/app@{DIGEST}",
        "USER root",
        "RUN " + apt_upgrade_script(plan_of(), SECURITY),
        "USER app",
        "ENV PATCHPIPE_BUILD_ID=b1",
        'LABEL a="1" b="2"',
    ]


def test_all_labels_go_on_one_label_line_sorted_by_key() -> None:
    labels = {"io.patchpipe.run-id": "manual__2026-11-24T02:00:00+00:00", "io.patchpipe.packages": "apt=2.6.1 x=1"}
    label_lines = [line for line in dockerfile(labels=labels) if line.startswith("LABEL")]
    assert label_lines == [
        'LABEL io.patchpipe.packages="apt=2.6.1 x=1" io.patchpipe.run-id="manual__2026-11-24T02:00:00+00:00"'
    ]


def test_quotes_and_backslashes_in_label_values_are_escaped() -> None:
    labels = {"a": 'say "hi"', "b": "C:\\path\\", "c": 'both \\"'}
    line = next(line for line in dockerfile(labels=labels) if line.startswith("LABEL"))
    assert line == r'LABEL a="say \"hi\"" b="C:\\path\\" c="both \\\""'
    # Dockerfile double quotes unescape \" and \\ exactly as a POSIX shell does: the values come back intact.
    parsed = dict(word.split("=", 1) for word in shlex.split(line.removeprefix("LABEL ")))
    assert parsed == labels


def test_no_labels_means_no_label_line() -> None:
    assert not [line for line in dockerfile(labels={}) if line.startswith("LABEL")]


def test_an_apk_image_cannot_be_patched_in_place() -> None:
    with pytest.raises(PatchpipeError, match=r"vendor-app: patching apk images in place is not supported"):
        dockerfile(plan=plan_of(package_manager="apk"))


# --- apt_upgrade_script ------------------------------------------------------------------------


def install_command(script: str) -> list[str]:
    found = [c for c in commands(script) if "install" in c]
    assert len(found) == 1, found
    return found[0]


def test_every_planned_package_is_pinned_to_its_planned_version() -> None:
    install = install_command(apt_upgrade_script(plan_of(), SECURITY))
    assert install[-3:] == ["libssl3=3.0.15-1~deb12u1", "perl-base=5.36.0-7+deb12u1", "tzdata=1:2025b-0+deb12u1"]


def test_the_install_only_upgrades_and_keeps_config_files_without_prompting() -> None:
    install = install_command(apt_upgrade_script(plan_of(), SECURITY))
    assert install[0] == "DEBIAN_FRONTEND=noninteractive"
    assert {"--only-upgrade", "-y", "--no-install-recommends", "Dpkg::Options::=--force-confold"} <= set(install)


def test_a_pin_with_shell_characters_is_one_quoted_word() -> None:
    # A tilde at the start of a word would be expanded by the shell; quoting keeps the pin literal.
    script = apt_upgrade_script(plan_of([PackageUpgrade("libfoo", "1", "1~deb12u1 $(reboot)", "foo")]), SECURITY)
    assert "'libfoo=1~deb12u1 $(reboot)'" in script
    assert install_command(script)[-1] == "libfoo=1~deb12u1 $(reboot)"


def test_apt_reads_only_the_patch_sources() -> None:
    cmds = commands(apt_upgrade_script(plan_of(), SECURITY))
    apt_runs = [c for c in cmds if "apt-get" in c and "clean" not in c]
    assert len(apt_runs) == 2  # update, install
    for command in apt_runs:
        assert f"Dir::Etc::SourceList={PATCH_SOURCES}/sources.list" in command
        assert f"Dir::Etc::SourceParts={PATCH_SOURCES}/parts" in command


def test_the_security_source_is_written_as_one_line() -> None:
    cmds = commands(apt_upgrade_script(plan_of(), SECURITY))
    assert ["echo", SECURITY, ">", f"{PATCH_SOURCES}/sources.list"] in cmds


def test_the_script_cleans_up_apt_and_ends_by_removing_its_own_sources() -> None:
    cmds = commands(apt_upgrade_script(plan_of(), SECURITY))
    assert cmds[0] == ["set", "-eu"]
    assert cmds[-2] == ["apt-get", "clean"]
    assert cmds[-1] == ["rm", "-rf", PATCH_SOURCES, *APT_CHURN]
    assert {"/var/lib/apt/lists/*", "/var/cache/apt/archives/*.deb", "/var/log/apt", "/var/log/dpkg.log"} <= set(APT_CHURN)


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_the_script_is_valid_shell(shell: str) -> None:
    script = apt_upgrade_script(plan_of(), SECURITY)
    result = subprocess.run([shell, "-n", "-c", script], capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stderr) == (0, "")


def test_run_by_sh_the_script_hands_apt_each_pin_as_one_argument(tmp_path: Path) -> None:
    """Runs the script under /bin/sh (what RUN uses) with recording stand-ins for apt-get, mkdir and rm.

    PATH holds only the stand-ins, so nothing on this machine is touched; the patch sources
    directory is moved under tmp_path for the same reason.
    """
    stubs, log = tmp_path / "bin", tmp_path / "calls.log"
    stubs.mkdir()
    recorder = f'#!/bin/sh\n{{ printf "%s" "${{0##*/}}"; for a in "$@"; do printf "\\037%s" "$a"; done; echo; }} >> {log}\n'
    for name in ("apt-get", "rm"):
        (stubs / name).write_text(recorder)
        (stubs / name).chmod(0o755)
    (stubs / "mkdir").write_text(recorder + 'exec /bin/mkdir "$@"\n')
    (stubs / "mkdir").chmod(0o755)
    sources = tmp_path / "patchpipe-apt"
    script = apt_upgrade_script(plan_of(), SECURITY).replace(PATCH_SOURCES, str(sources))

    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=10,
                            env={"PATH": str(stubs)}, cwd=tmp_path)

    assert (result.returncode, result.stderr) == (0, "")
    calls = [line.split("\x1f") for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["mkdir", "apt-get", "apt-get", "apt-get", "rm"]
    assert calls[1][-2:] == ["update", "-qq"]
    assert calls[2][-3:] == ["libssl3=3.0.15-1~deb12u1", "perl-base=5.36.0-7+deb12u1", "tzdata=1:2025b-0+deb12u1"]
    assert calls[3][1:] == ["clean"]
    assert calls[4][1:3] == ["-rf", str(sources)]
    assert (sources / "sources.list").read_text() == SECURITY + "\n"



# --- the build, against a fake Docker API that answers as the Engine does --------------------------

class _Engine:
    """``api.build`` answers: each entry of ``answers`` is one build's error, or None for success."""

    def __init__(self, *answers: str | None):
        self.answers = list(answers)
        self.builds = 0

    def build(self, **kwargs):
        self.builds += 1
        error = self.answers.pop(0)
        yield {"stream": "Step 3/4 : RUN set -eu && ...\n"}
        if error:
            yield {"stream": f"\x1b[91mE: \x1b[0m\x1b[91m{error}\x1b[0m\n"}
            yield {"error": "The command '/bin/sh -c set -eu ...' returned a non-zero code: 100",
                   "errorDetail": {"message": "The command '/bin/sh -c set -eu ...' returned a non-zero code: 100"}}
            return
        yield {"aux": {"ID": f"sha256:{'b' * 64}"}}


LAGGING = "Version '1.5.4+dfsg2-5+deb12u1' for 'libzstd1' was not found"


def test_a_mirror_that_lags_behind_the_plan_is_tried_again(monkeypatch, caplog) -> None:
    from patchpipe.images import build

    waits = []
    monkeypatch.setattr(build.time, "sleep", waits.append)
    engine = _Engine(LAGGING, LAGGING, None)
    built = build.build_patch_layer(engine, target=SOURCE, dockerfile="FROM x\n", wait_seconds=7)
    assert built.image_id == f"sha256:{'b' * 64}"
    assert (engine.builds, waits) == (3, [7, 7])
    assert "has not caught up" in caplog.text and "libzstd1" in caplog.text


def test_a_mirror_that_never_catches_up_fails_with_apts_message(monkeypatch) -> None:
    from patchpipe.images import build

    monkeypatch.setattr(build.time, "sleep", lambda seconds: None)
    engine = _Engine(*[LAGGING] * 3)
    with pytest.raises(build.BuildError, match=r"non-zero code: 100(.|\n)*libzstd1' was not found"):
        build.build_patch_layer(engine, target=SOURCE, dockerfile="FROM x\n", attempts=3)
    assert engine.builds == 3


def test_any_other_build_failure_is_not_tried_again(monkeypatch) -> None:
    from patchpipe.images import build

    monkeypatch.setattr(build.time, "sleep", lambda seconds: pytest.fail("waited for a failure that is not lag"))
    engine = _Engine("Unable to locate package libfoo", None)
    with pytest.raises(build.BuildError, match="Unable to locate package libfoo"):
        build.build_patch_layer(engine, target=SOURCE, dockerfile="FROM x\n")
    assert engine.builds == 1
