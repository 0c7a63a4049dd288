#!/usr/bin/env python3
"""bench-scale: how patch_lifecycle scales with the fleet.

1. **Parse**: the time the dag-processor takes to parse each file of ``dags/`` with a generated
   1,000-image fleet (``PATCHPIPE_FLEET``; ``patch_lifecycle`` reads it for its trigger form), next to
   the demo fleet. Done the dag-processor's way: a process that has imported the Airflow modules the
   file imports (``[dag_processor] parsing_pre_import_modules``) forks one child per parse, and the
   child builds a ``BundleDagBag`` of the file and serializes its DAGs, as ``_parse_file`` does. So
   neither the interpreter's start-up nor Airflow's import counts, and patchpipe's own modules are
   imported again by every parse, as in the dag-processor. Median of several parses per file, after
   a first one (reported on its own) that finds no cached image names, as after a manifest change
   (``patchpipe.airflow.fleet_names``).
2. **No-op run**: ``patch_lifecycle`` over 200 generated images that have nothing to patch, on the
   LocalExecutor with a scheduler, dag-processor and api-server (``tests/support/airflow_services``),
   from the trigger to the end of the run; then the same over 20 images, so the cost per image is a
   difference of two runs. Every image must be recorded ``noop`` in the ledger, or the benchmark fails.

The images are made no-ops like this: the fleet's three bases are copies of the lab's original
images (base, demo-web, vendor-app; never retagged themselves) under ``127.0.0.1:5000/bench-scale/``,
patched in place by patchpipe's own stages (inventory, assess, patch, push, promote of the tag)
against today's ``bookworm-security``, and every image tag is its base plus one small layer of
its own (``patchpipe.fleet.generate``): 200 different digests that share their bases' layers, as
images built ``FROM`` a base do. Deploy targets are Swarm services that do not exist, at ``.invalid``
URLs: nothing is deployed, and the lab's services are never touched.

Prints the report (targets as ok / MISS, never asserted) and writes bench/results.json under "scale".
Progress goes to stderr. Exit 2 on an error, or when the run is not a true no-op.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.*

from _results import record_results  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
REGISTRY = "127.0.0.1:5000"
NAMESPACE = "bench-scale"
SOURCES = (f"{REGISTRY}/base/debian:bookworm-lab-original", f"{REGISTRY}/demo/web:1.0-lab-original",
           f"{REGISTRY}/vendor/app:2.4-lab-original")
REBUILD_CONTEXT = REPO / "include" / "demo" / "demo-web"
PARSE_IMAGES = 1000
PARSE_TARGET_S = 1.0
RUN_TARGET_S = 600.0
NEVER = "0 0 29 2 *"  # a patch window whose first interval after the DAG's start date ends in 2032
RUN_TIMEOUT_S = 3600

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench-scale {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --- 1. parse time ---------------------------------------------------------------------------------


def parse_child(files: list[str], repeats: int) -> dict:
    """Runs in a process of its own (``--parse-child``), with PATCHPIPE_FLEET set; see the docstring."""
    import importlib

    from airflow.utils.file import iter_airflow_imports

    for file in files:  # what DagFileProcessorProcess.start does before it forks
        for module in iter_airflow_imports(file):
            importlib.import_module(module)
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    def parse_once(file: str) -> dict:
        began = time.perf_counter()
        bag = BundleDagBag(dag_folder=file, bundle_path=DAGS, bundle_name="dags-folder", load_op_links=False)
        parsed = time.perf_counter()
        for dag in bag.dags.values():
            DagSerialization.to_dict(dag)
        return {"parse": parsed - began, "serialize": time.perf_counter() - parsed, "dags": len(bag.dags),
                "tasks": sum(len(dag.tasks) for dag in bag.dags.values()), "errors": dict(bag.import_errors)}

    def forked_parse(file: str) -> dict:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one parse, its figures up the pipe
            os.close(read_end)
            try:
                payload = json.dumps(parse_once(file)).encode()
            except BaseException as exc:  # noqa: BLE001 - reported by the parent
                payload = json.dumps({"crash": repr(exc)}).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as incoming:
            figures = json.loads(incoming.read() or b'{"crash": "no answer"}')
        os.waitpid(pid, 0)
        if "crash" in figures or figures["errors"]:
            raise BenchError(f"parsing {file} failed: {figures.get('crash') or figures['errors']}")
        return figures

    cache = Path(os.environ["PATCHPIPE_CACHE"])
    results = {}
    for file in files:
        forget_image_names(cache)
        first = forked_parse(file)  # the first parse after the manifest changed: no cached image names
        runs = [forked_parse(file) for _ in range(repeats)]
        results[Path(file).name] = {
            "runs": repeats, "dags": runs[0]["dags"], "tasks": runs[0]["tasks"],
            "parse_median_seconds": statistics.median(r["parse"] for r in runs),
            "serialize_median_seconds": statistics.median(r["serialize"] for r in runs),
            "total_median_seconds": statistics.median(r["parse"] + r["serialize"] for r in runs),
            "total_max_seconds": max(r["parse"] + r["serialize"] for r in runs),
            "first_parse_seconds": first["parse"] + first["serialize"],
        }
    # Now, after the forks (so that no parse found them imported): the parts of a parse on their own.
    began = time.perf_counter()
    for module in sorted({m for file in files for m in _imported_modules(file) if m.startswith("patchpipe")}):
        importlib.import_module(module)
    imports = time.perf_counter() - began
    from patchpipe import settings
    from patchpipe.airflow.fleet_names import image_names

    def timed_names(cached: bool) -> float:
        if not cached:
            forget_image_names(cache)
        began = time.perf_counter()
        image_names(settings.fleet_path())
        return time.perf_counter() - began

    loads = [timed_names(cached=False) for _ in range(3)]
    hits = [timed_names(cached=True) for _ in range(3)]
    return {"files": results, "patchpipe_imports_seconds": imports,
            "image_names_uncached_median_seconds": statistics.median(loads),
            "image_names_cached_median_seconds": statistics.median(hits)}


def forget_image_names(cache: Path) -> None:
    for names in cache.glob("fleet-names-*.json"):
        names.unlink()


def _imported_modules(file: str) -> set[str]:
    import ast

    tree = ast.parse(Path(file).read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def measure_parse(fleet: Path, home: Path, repeats: int) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PATCHPIPE_FLEET": str(fleet), "PATCHPIPE_CACHE": str(home / "cache")}
    home.mkdir(parents=True, exist_ok=True)
    files = sorted(str(path) for path in DAGS.glob("*.py"))
    done = subprocess.run([sys.executable, __file__, "--parse-child", str(repeats), *files], env=env,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise BenchError(f"the parse process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- 2. the no-op run: images that have nothing to patch -------------------------------------------


def prepare_bases(generated, workdir: Path) -> dict:
    """Seed the bases (once) and patch them in place until assess finds nothing; base name -> digest."""
    import docker

    from patchpipe import db
    from patchpipe.fleet.generate import seed_bases
    from patchpipe.lifecycle.assess import assess
    from patchpipe.lifecycle.fetch_advisories import fetch_advisories
    from patchpipe.lifecycle.inventory import inventory
    from patchpipe.lifecycle.patch import patch
    from patchpipe.lifecycle.promote import promote_tag
    from patchpipe.lifecycle.push import push
    from patchpipe.lifecycle.services import Services

    seed_bases(generated, SOURCES)
    engine = db.make_engine(f"sqlite:///{workdir / 'prepare.db'}")
    db.create_schema(engine)
    fleet = generated.fleet
    svc = Services(fleet=fleet, manifest_dir=fleet.manifest_dir, engine=engine,
                   docker_factory=lambda: docker.from_env(timeout=900).api)
    progress(f"bookworm-security: {fetch_advisories(svc)} packages with security versions")
    digests = {}
    for base in fleet.bases:
        plan = assess(svc, inventory(svc, base.name))
        if not plan.is_empty:
            progress(f"{base.name}: patching {len(plan.upgrades)} packages in place "
                     f"({', '.join(u.name for u in plan.upgrades)})")
            pushed = push(svc, patch(svc, plan, "bench-scale-prepare", date.today()))
            promote_tag(svc, base.name, pushed)
            plan = assess(svc, inventory(svc, base.name))
            if not plan.is_empty:
                raise BenchError(f"{base.name} still has {len(plan.upgrades)} upgrades after its patch")
        digests[base.name] = plan.source_digest
        progress(f"{base.name}: nothing to patch at {plan.source_digest[:19]}")
    return digests


def noop_run(fleet_path: Path, images: int, home: Path, parallelism: int, postgres) -> dict:
    """One triggered run of patch_lifecycle over ``fleet_path``; its timings, from Airflow's own records.

    The metadata database and the ledger are PostgreSQL: with SQLite, the scheduler, dag-processor and
    api-server lock each other out at this size ("database is locked", tasks failing on API timeouts)."""
    import sqlalchemy as sa
    from support.airflow_services import airflow_cli, airflow_services, wait_for_dag
    from support.dag_runs import make_runner

    from patchpipe import db
    from patchpipe.fleet import load_fleet
    from patchpipe.ledger.models import ImageStatus

    progress(f"{images} images: a fresh Airflow home in {home}")
    metadata_url = postgres.create_database("airflow")
    runner = make_runner(home, fleet_path, PATCHPIPE_PATCH_WINDOW=NEVER, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
                         AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=metadata_url)
    runner.env["PATCHPIPE_DB"] = postgres.create_database("ledger")
    db.create_schema(db.make_engine(runner.env["PATCHPIPE_DB"]))
    metadata = sa.create_engine(metadata_url, poolclass=sa.pool.NullPool)

    def rows(query: str, **params) -> list:
        with metadata.connect() as connection:
            return list(connection.execute(sa.text(query), params).mappings())
    run_id = f"bench_scale__{images}"
    with airflow_services(runner, ["scheduler", "dag-processor"], executor="LocalExecutor",
                          AIRFLOW__CORE__PARALLELISM=str(parallelism),
                          # Airflow's default re-parse interval, not the tests' 5 s: this is about a real set-up.
                          AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="30",
                          AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="30"):
        wait_for_dag(runner)
        for words in (("dags", "unpause", "patch_lifecycle"), ("dags", "trigger", "patch_lifecycle", "--run-id", run_id)):
            done = airflow_cli(runner, *words)
            if done.returncode != 0:
                raise BenchError(f"airflow {' '.join(words)}: {done.stdout[-1500:]}{done.stderr[-1500:]}")
        progress(f"{images} images: triggered {run_id}")
        deadline, state, shown = time.monotonic() + RUN_TIMEOUT_S, None, 0.0
        while state not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise BenchError(f"{run_id} did not finish within {RUN_TIMEOUT_S} s (state {state})")
            time.sleep(3)
            found = rows("SELECT state FROM dag_run WHERE run_id = :run_id", run_id=run_id)
            state = found[0]["state"] if found else None
            if time.monotonic() - shown > 60:
                done_count = rows("SELECT count(*) AS n FROM task_instance WHERE run_id = :run_id AND "
                                  "state IN ('success', 'skipped', 'failed', 'upstream_failed')", run_id=run_id)[0]["n"]
                progress(f"{images} images: {state}, {done_count} task instances done")
                shown = time.monotonic()
    runs = rows("SELECT run_id, state, queued_at, start_date, end_date FROM dag_run")
    run = next(r for r in runs if r["run_id"] == run_id)
    tasks = rows("SELECT task_id, map_index, state, queued_dttm, start_date, end_date, duration "
                 "FROM task_instance WHERE run_id = :run_id", run_id=run_id)
    metadata.dispose()
    ledger = runner.ledger()
    statuses = {r.image: r.status for r in ledger.run_summary(run_id)}
    work = {}
    for stage in ledger.stage_results(run_id):
        work.setdefault(stage.stage, []).append(stage.duration_seconds)

    queued, started, ended = run["queued_at"], run["start_date"], run["end_date"]
    ran = [t for t in tasks if t["queued_dttm"]]  # went through the executor (assess ends "skipped" by raising)
    by_task: dict[str, list] = {}
    for t in ran:
        by_task.setdefault(t["task_id"], []).append(t)
    waits = [(t["start_date"] - t["queued_dttm"]).total_seconds() for t in ran if t["start_date"]]
    figures = {
        "images": images, "parallelism": parallelism, "run_id": run_id, "state": run["state"],
        "other_runs": [r["run_id"] for r in runs if r["run_id"] != run_id],
        "wall_seconds": (ended - queued).total_seconds(),
        "queued_seconds": (started - queued).total_seconds(),
        "task_instances": len(tasks),
        "task_instances_by_state": {s: sum(t["state"] == s for t in tasks) for s in sorted({t["state"] for t in tasks})},
        "tasks_run": len(ran),
        "task_seconds_total": sum(t["duration"] or 0 for t in ran),
        "queued_to_start_median_seconds": statistics.median(waits) if waits else None,
        "per_task": {
            task_id: {"count": len(group), "mean_seconds": statistics.mean(t["duration"] or 0 for t in group),
                      "work_mean_seconds": statistics.mean(work[task_id.rsplit(".", 1)[-1]])
                      if task_id.rsplit(".", 1)[-1] in work else None}
            for task_id, group in sorted(by_task.items())
        },
        "statuses": {s.value: sum(v == s for v in statuses.values()) for s in set(statuses.values())},
        "images_recorded": len(statuses),
        "load_average": os.getloadavg(),
    }
    figures["per_image_seconds"] = figures["wall_seconds"] / images
    fleet_images = set(load_fleet(fleet_path).image_names)
    recorded = fleet_images & set(statuses)  # the ledger also holds the bases the run refreshed
    noop = run["state"] == "success" and recorded == fleet_images and set(statuses.values()) == {ImageStatus.NOOP}
    figures["all_noop"] = noop
    progress(f"{images} images: {run['state']} in {figures['wall_seconds']:.0f} s, ledger {figures['statuses']}")
    if not noop:
        not_noop = sorted(name for name, status in statuses.items() if status != ImageStatus.NOOP)
        raise BenchError(f"{run_id} was not a no-op: run {run['state']}, {len(recorded)} of {images} images "
                         f"recorded, not noop: {', '.join(not_noop[:10]) or 'none'} (Airflow home kept: {home})")
    return figures


# --- the report ------------------------------------------------------------------------------------


def verdict(value: float, limit: float) -> str:
    return "ok" if value <= limit else "MISS"


def report(parse_big: dict, parse_demo: dict, small: dict | None, big: dict | None) -> dict:
    files = sorted(parse_big["files"])
    parse_total = sum(parse_big["files"][f]["total_median_seconds"] for f in files)
    print(f"\nbench-scale: parse of dags/ as the dag-processor does it (fork per parse, BundleDagBag + "
          f"serialization; median of {parse_big['files'][files[0]]['runs']})")
    print(f"{'file':<22}{'fleet':>8}{'tasks':>7}{'parse':>9}{'serialize':>11}{'total':>9}{'max':>9}{'first':>9}")
    for label, parsed in (("demo", parse_demo), (str(PARSE_IMAGES), parse_big)):
        for name in files:
            f = parsed["files"][name]
            print(f"{name:<22}{label:>8}{f['tasks']:>7}{f['parse_median_seconds']:>8.3f}s"
                  f"{f['serialize_median_seconds']:>10.3f}s{f['total_median_seconds']:>8.3f}s{f['total_max_seconds']:>8.3f}s"
                  f"{f['first_parse_seconds']:>8.3f}s")
    print(f"  of which: importing the patchpipe modules the DAG files import (once per parse) "
          f"{parse_big['patchpipe_imports_seconds']:.3f} s;")
    print(f"            the trigger form's image list: {parse_big['image_names_cached_median_seconds']:.3f} s from "
          f"its cache; {parse_big['image_names_uncached_median_seconds']:.3f} s ({PARSE_IMAGES} images) and "
          f"{parse_demo['image_names_uncached_median_seconds']:.3f} s (demo fleet) when the manifest has changed")
    print("  'first' is the first parse after the manifest changed, which reads and validates it; the dag-processor")
    print("  parses each file again every 30 s (min_file_process_interval), so 'total' is what it pays steadily.")

    figures = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "parse": {"fleet_images": PARSE_IMAGES, "with_fleet": parse_big,
                                               "with_demo_fleet": parse_demo, "dags_total_seconds": parse_total}}
    targets = {"parse": {"target": f"<= {PARSE_TARGET_S:g} s", "measured": round(parse_total, 3),
                         "pass": parse_total <= PARSE_TARGET_S}}
    runs = [r for r in (small, big) if r]
    if runs:
        print(f"\nno-op patch_lifecycle runs (LocalExecutor, parallelism {runs[0]['parallelism']}; from trigger to "
              f"run end, Airflow's queued_at to end_date)")
        print(f"{'images':>7}{'wall':>10}{'per image':>11}{'tasks run':>11}{'task time':>11}{'TIs':>7}"
              f"{'queued->start':>15}  ledger")
        for r in runs:
            print(f"{r['images']:>7}{r['wall_seconds']:>9.0f}s{r['per_image_seconds']:>10.2f}s{r['tasks_run']:>11}"
                  f"{r['task_seconds_total']:>10.0f}s{r['task_instances']:>7}"
                  f"{r['queued_to_start_median_seconds'] or 0:>14.1f}s  {r['statuses']}")
        figures["runs"] = {str(r["images"]): r for r in runs}
    if small and big:
        marginal = (big["wall_seconds"] - small["wall_seconds"]) / (big["images"] - small["images"])
        fixed = small["wall_seconds"] - marginal * small["images"]
        figures["marginal_seconds_per_image"] = marginal
        figures["fixed_seconds"] = fixed
        print(f"  marginal cost: {marginal:.2f} s per image ((wall {big['images']} - wall {small['images']}) / "
              f"{big['images'] - small['images']}); fixed cost of a run about {fixed:.0f} s")
    if big:
        print(f"\nwhere the {big['images']}-image run's time goes (Airflow task duration vs. the stage's own work "
              f"in the ledger, per task instance):")
        for task_id, t in big["per_task"].items():
            work = "" if t["work_mean_seconds"] is None else f"  work {t['work_mean_seconds']:.2f} s"
            print(f"  {task_id:<28}{t['count']:>5} x {t['mean_seconds']:6.2f} s{work}")
        targets["noop_run"] = {"target": f"<= {RUN_TARGET_S:g} s for {big['images']} images",
                               "measured": round(big["wall_seconds"], 1), "pass": big["wall_seconds"] <= RUN_TARGET_S}
    print("\ntargets:")
    print(f"  parse of dags/ with a {PARSE_IMAGES}-image fleet <= {PARSE_TARGET_S:g} s"
          f"{parse_total:>12.3f} s  {verdict(parse_total, PARSE_TARGET_S)}")
    if big:
        print(f"  no-op run over {big['images']} images <= {RUN_TARGET_S / 60:g} min"
              f"{big['wall_seconds']:>17.0f} s  {verdict(big['wall_seconds'], RUN_TARGET_S)}"
              f"  ({big['per_image_seconds']:.2f} s per image)")
    figures["targets"] = targets
    return figures


def machine() -> dict:
    memory = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    release = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    return {"cpus": os.cpu_count(), "memory_gib": round(int(memory) / 1024 / 1024, 1), "debian": release,
            "load_average": os.getloadavg()}


# --- main ------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    from patchpipe.fleet.generate import generate_fleet, seed_images, write_fleet

    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-scale-"))
    try:
        progress(f"generating a {PARSE_IMAGES}-image fleet; parsing dags/ {args.repeats} times per file")
        big_fleet = write_fleet(generate_fleet(PARSE_IMAGES, namespace=NAMESPACE, rebuild_context=REBUILD_CONTEXT,
                                               manifest_dir=workdir), workdir / f"fleet-{PARSE_IMAGES}.yaml")
        parse_big = measure_parse(big_fleet, workdir / "parse-home", args.repeats)
        parse_demo = measure_parse(REPO / "include" / "fleet.yaml", workdir / "parse-home", args.repeats)
        partial = {"partial": True, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "machine": machine(), "parse": {"with_fleet": parse_big, "with_demo_fleet": parse_demo}}
        if not args.parse_only:
            record_results("scale", partial)  # so that an interrupted run still leaves what it measured
        small = big = None
        if not args.parse_only:
            fleets = {}
            for images in (args.small, args.images):
                generated = generate_fleet(images, namespace=NAMESPACE, rebuild_context=REBUILD_CONTEXT,
                                           manifest_dir=workdir)
                fleets[images] = (generated, write_fleet(generated, workdir / f"fleet-{images}.yaml"))
            generated, _ = fleets[args.images]
            progress("bases: seeded from the lab's original images, patched in place until nothing is left")
            prepare_bases(generated, workdir)
            progress(f"images: {seed_images(generated)} tags written: each image its base plus a layer of its own")
            from support.postgres import running_postgres

            with running_postgres() as postgres:
                small = noop_run(fleets[args.small][1], args.small, workdir / f"airflow-{args.small}",
                                 args.parallelism, postgres)
                record_results("scale", {**partial, "runs": {str(args.small): small}})
                big = noop_run(fleets[args.images][1], args.images, workdir / f"airflow-{args.images}",
                               args.parallelism, postgres)
        figures = report(parse_big, parse_demo, small, big)
        print(f"\nfigures written to {record_results('scale', figures)}")
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--parse-child"]:
        print(json.dumps(parse_child(argv[2:], int(argv[1]))))
        return 0
    parser = argparse.ArgumentParser(
        prog="bench_scale.py",
        description="Parse time of dags/ with a 1,000-image fleet, and the wall time of no-op patch_lifecycle "
                    "runs over generated images on the LocalExecutor; writes bench/results.json (key 'scale').",
    )
    parser.add_argument("--images", type=int, default=200, help="images of the large no-op run (default 200)")
    parser.add_argument("--small", type=int, default=20, help="images of the small no-op run (default 20)")
    parser.add_argument("--parallelism", type=int, default=4,
                        help="[core] parallelism of the LocalExecutor (default 4, for 2 cores)")
    parser.add_argument("--repeats", type=int, default=5, help="parses per DAG file (default 5)")
    parser.add_argument("--parse-only", action="store_true", help="measure the parse time only (no lab needed)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (Airflow homes and logs)")
    args = parser.parse_args(argv)
    if not len(SOURCES) <= args.small < args.images:
        parser.error(f"--small must be at least {len(SOURCES)} (one image per base) and fewer than --images")
    from patchpipe.errors import PatchpipeError

    try:
        run(args)
    except (BenchError, PatchpipeError, OSError, RuntimeError, subprocess.SubprocessError, AssertionError) as exc:
        print(f"bench-scale: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
