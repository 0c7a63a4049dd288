"""Keeping the advisory store current: fetch each feed, parse it, swap its data in one transaction.

Per feed: a conditional GET (a 304 only marks the data fresh; nothing is parsed), then the feed's
source parses the body while the store writes it. A record that fails validation is skipped,
counted and logged with its id. A feed that is down or broken keeps its last good data,
marked stale with its age, and the sync goes on with the others and ends with a warning. It fails
(AdvisoriesTooOldError) only when a feed's data is older than ``settings.max_age``, or was never
fetched at all.

``import_files`` is the same path from files instead of URLs (air-gapped sites, the CLI).

A large feed (``WORKER_MIN_BYTES``) is parsed in a child process while this one writes: parsing
and storing a big OSV archive take about as long as each other, and each needs a CPU of its own.
The child hands on the records taken apart (``store.record_parts``); the swap stays one
transaction in this process.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import logging
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from patchpipe.advisories import sources as known_sources
from patchpipe.advisories.http import FeedClient, Validators, redact
from patchpipe.advisories.settings import Feed, SyncSettings
from patchpipe.advisories.source import AdvisorySource, Record, RecordProblem
from patchpipe.advisories.store import (
    FeedChanges,
    FeedOrigin,
    RecordParts,
    feed_state,
    record_failure,
    record_not_modified,
    record_parts,
    replace_feed_parts,
)
from patchpipe.advisories.zip_stream import is_zip, iter_zip_members
from patchpipe.db import utc_now
from patchpipe.errors import PatchpipeError

log = logging.getLogger(__name__)

UPDATED, UNCHANGED, FAILED = "updated", "unchanged", "failed"
# Inputs this large are parsed in a worker process; below it, starting one costs more than it saves.
WORKER_MIN_BYTES = 4 << 20


@dataclass(frozen=True)
class FeedResult:
    """What one feed's sync did. ``age`` is how old the feed's stored data is after it."""

    feed: str
    source: str
    outcome: str  # UPDATED (new copy stored), UNCHANGED (304), FAILED (last good data kept)
    age: timedelta | None  # None: there is no stored data at all
    changes: FeedChanges | None = None
    error: str | None = None

    @property
    def stale(self) -> bool:
        return self.outcome == FAILED


@dataclass(frozen=True)
class SyncReport:
    started: datetime
    results: tuple[FeedResult, ...]

    @property
    def stale(self) -> tuple[FeedResult, ...]:
        return tuple(result for result in self.results if result.stale)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{result.feed}: sync failed, keeping data {_age_text(result.age)}: {result.error}" for result in self.stale
        )

    def asset_extra(self, max_ids: int = 200) -> dict[str, Any]:
        """A JSON-able summary for an Asset event: per feed what changed, id lists cut at ``max_ids``."""
        feeds: dict[str, Any] = {}
        for result in self.results:
            entry: dict[str, Any] = {"outcome": result.outcome, "age_hours": _hours(result.age)}
            if result.error:
                entry["error"] = result.error
            if result.changes is not None:
                changes = result.changes
                for key, ids in (("new", changes.new_ids), ("updated", changes.updated_ids),
                                 ("removed", changes.removed_ids), ("new_kev", changes.new_kev)):
                    entry[key] = list(ids[:max_ids])
                    entry[f"{key}_count"] = len(ids)
                entry["records"] = {"advisories": changes.advisories, "kev": changes.kev, "epss": changes.epss,
                                    "skipped": changes.skipped}
            feeds[result.feed] = entry
        return {"synced_at": self.started.isoformat(), "feeds": feeds, "stale": [r.feed for r in self.stale]}


class AdvisoriesTooOldError(PatchpipeError):
    """A feed's data is older than the maximum age (or there is none); ``report`` says what the sync did."""

    def __init__(self, report: SyncReport, too_old: Sequence[FeedResult], max_age: timedelta):
        self.report = report
        self.too_old = tuple(too_old)
        lines = [
            f"  {result.feed}: data {_age_text(result.age)}" + (f"; last error: {result.error}" if result.error else "")
            for result in self.too_old
        ]
        super().__init__(
            f"advisory data older than the maximum age of {_hours(max_age):g} h:\n" + "\n".join(lines)
        )


def sync(
    engine: Engine,
    sources: Sequence[str] | None = None,
    settings: SyncSettings | None = None,
    *,
    now: Callable[[], datetime] = utc_now,
) -> SyncReport:
    """Sync the feeds called ``sources`` (default: every configured feed) into the store.

    Raises AdvisoriesTooOldError, after syncing every feed, when one of them has no data younger
    than ``settings.max_age``; a stale feed within that age is only a warning in the report.
    """
    settings = settings or SyncSettings()
    feeds = settings.select(sources)
    started = now()
    with FeedClient(timeout=settings.timeout, retry=settings.retry, download_dir=settings.download_dir) as client:
        results = tuple(_sync_feed(engine, feed, known_sources.SOURCES[feed.source], client, now) for feed in feeds)
    report = SyncReport(started, results)
    for warning in report.warnings:
        log.warning("advisory sync: %s", warning)
    too_old = [result for result in results if result.age is None or result.age > settings.max_age]
    if too_old:
        raise AdvisoriesTooOldError(report, too_old, settings.max_age)
    return report


def _sync_feed(engine: Engine, feed: Feed, parser: AdvisorySource, client: FeedClient, now: Callable[[], datetime]
               ) -> FeedResult:
    state = feed_state(engine, feed.name)
    validators = None
    # Validators only describe the copy we hold if it came from this URL.
    if state is not None and state.last_success is not None and state.url == feed.url:
        validators = Validators(state.etag, state.last_modified)
    try:
        with client.download(feed.url, validators) as download:
            origin = FeedOrigin(feed.source, feed.url, download.validators.etag, download.validators.last_modified)
            if download.not_modified:
                record_not_modified(engine, feed.name, origin, at=now())
                log.info("%s: not modified since the last sync", feed.name)
                return FeedResult(feed.name, feed.source, UNCHANGED, age=timedelta(0))
            assert download.path is not None
            with _parsed(download.size, _parse_download, parser.name, download.path, redact(feed.url)) as parts:
                changes = replace_feed_parts(engine, feed.name, origin, parts, at=now(),
                                             on_problem=_problem_logger(feed.name))
    except Exception as error:  # noqa: BLE001 - one broken feed must not stop the others
        if isinstance(error, PatchpipeError):
            message = str(error)  # reported with the feed's age in the sync's closing warnings
        else:
            message = f"{type(error).__name__}: {error}"
            log.exception("%s: sync failed unexpectedly", feed.name)
        at = now()
        record_failure(engine, feed.name, FeedOrigin(feed.source, feed.url), message, at=at)
        age = at - state.last_success if state is not None and state.last_success is not None else None
        return FeedResult(feed.name, feed.source, FAILED, age=age, error=message)
    log.info(
        "%s: %d advisories, %d KEV, %d EPSS stored (%d new, %d updated, %d removed, %d skipped)",
        feed.name, changes.advisories, changes.kev, changes.epss, len(changes.new_ids), len(changes.updated_ids),
        len(changes.removed_ids), changes.skipped,
    )
    return FeedResult(feed.name, feed.source, UPDATED, age=timedelta(0), changes=changes)


def import_files(
    engine: Engine,
    source: str,
    paths: Sequence[Path],
    *,
    feed: str | None = None,
    now: Callable[[], datetime] = utc_now,
) -> FeedChanges:
    """Replace the data of ``feed`` (default: the source's name) with what ``paths`` hold, all or nothing.

    A path is a file, a directory (its files with the format's suffixes, recursively) or a zip
    archive. OSV reads its own zip archives (``all.zip``); for the other sources each zip member is
    parsed as one file.
    """
    parser = known_sources.get_source(source)
    files = _input_files(parser.name, paths)
    name = feed or parser.name.replace("_", "-")
    origin = FeedOrigin(parser.name, " ".join(str(path) for path in paths)[:2048])
    size = sum(path.stat().st_size for path in files)
    with _parsed(size, _parse_files, parser.name, files) as parts:
        return replace_feed_parts(engine, name, origin, parts, at=now(), on_problem=_problem_logger(name))


_SUFFIXES = {
    "osv": (".json", ".zip"),
    "debian_tracker": (".json", ".zip"),
    "alpine_secdb": (".json", ".zip"),
    "kev": (".json", ".zip"),
    "epss": (".csv", ".gz", ".zip"),
}
_READS_ZIP_ITSELF = {"osv"}


def _input_files(source: str, paths: Sequence[Path]) -> list[Path]:
    if not paths:
        raise PatchpipeError("nothing to import: give at least one file, directory or zip archive")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(_SUFFIXES[source]))
            if not found:
                raise PatchpipeError(f"{path}: no {' or '.join(_SUFFIXES[source])} files in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PatchpipeError(f"{path}: no such file or directory")
    return files


def _parse_download(source: str, path: Path, origin: str) -> Iterator[Record]:
    with path.open("rb") as payload:
        yield from known_sources.SOURCES[source].parse(payload, origin)


def _parse_files(source: str, files: Sequence[Path]) -> Iterator[Record]:
    parser = known_sources.SOURCES[source]
    for path in files:
        with path.open("rb") as payload:
            head = payload.read(4)
            payload.seek(0)
            if parser.name not in _READS_ZIP_ITSELF and is_zip(head):
                for member, data in iter_zip_members(payload, str(path)):
                    yield from parser.parse(io.BytesIO(data), f"{path}!{member}")
            else:
                yield from parser.parse(payload, str(path))


def _parsed(size: int, parse: Callable[..., Iterable[Record]], *args: object
            ) -> AbstractContextManager[Iterable[RecordParts]]:
    """``record_parts(parse(*args))``, in a worker process when the input is ``size`` bytes or more.
    ``parse`` must be a module-level function and ``args`` picklable."""
    if size < WORKER_MIN_BYTES or not sys.executable:
        return nullcontext(record_parts(parse(*args)))
    return _parsed_in_worker(parse, args)


# --- the worker process ---------------------------------------------------------------------------

_WORKER_MAIN = "from patchpipe.advisories.sync import _worker_main; _worker_main()"
_PARTS_PER_MESSAGE = 500  # records per pickled message
_PIPE_BYTES = 1 << 20  # what Linux lets any process ask for (/proc/sys/fs/pipe-max-size)


@dataclass(frozen=True)
class _WorkerFailed:
    error: Exception


@contextmanager
def _parsed_in_worker(parse: Callable[..., Iterable[Record]], args: tuple[object, ...]
                      ) -> Iterator[Iterator[RecordParts]]:
    """``record_parts(parse(*args))`` from a child Python process, read as it comes.

    A plain subprocess rather than multiprocessing: Airflow and Celery run tasks in daemonic
    processes, which multiprocessing does not let have children. The child gets this process's
    ``sys.path``; its exception is raised here, its log records go to this process's handlers.
    Leaving the block early (the database failed, the parser raised) kills it.
    """
    job = pickle.dumps((parse, args), pickle.HIGHEST_PROTOCOL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    process = subprocess.Popen([sys.executable, "-c", _WORKER_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=env)
    assert process.stdin is not None and process.stdout is not None
    _widen_pipe(process.stdout)
    try:
        try:
            with process.stdin:
                process.stdin.write(job)
        except BrokenPipeError:  # it has already exited: reading from it says so
            pass
        yield _read_worker(process)
    finally:
        process.kill()  # nothing to do when it has exited
        process.wait()
        process.stdout.close()


def _widen_pipe(pipe: IO[bytes]) -> None:
    """Let the pipe hold what the worker parses while a batch is inserted: with the default 64 KiB it
    waits for every batch, and parsing and writing take turns instead of overlapping."""
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):  # not Linux, or a lower limit: slower, not wrong
        pass


def _read_worker(process: subprocess.Popen[bytes]) -> Iterator[RecordParts]:
    while True:
        try:
            message = pickle.load(process.stdout)  # type: ignore[arg-type]
        except EOFError:
            break
        if isinstance(message, list):
            yield from message
        elif isinstance(message, logging.LogRecord):
            logger = logging.getLogger(message.name)
            if logger.isEnabledFor(message.levelno):
                logger.handle(message)
        elif isinstance(message, _WorkerFailed):
            raise message.error
        elif message is None:  # the end
            return
    raise RuntimeError(f"the parsing process stopped before it finished (exit code {process.wait()})")


def _worker_main() -> None:
    """The worker process: read the job from stdin, send its RecordParts to stdout, pickled in lists."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() goes to stderr, not into the channel
    parse, args = pickle.load(sys.stdin.buffer)
    logging.getLogger().addHandler(_ForwardLogs(channel))
    logging.getLogger().setLevel(logging.DEBUG)  # the parent filters them with its own levels
    try:
        try:
            parts = record_parts(parse(*args))
            while message := list(itertools.islice(parts, _PARTS_PER_MESSAGE)):
                pickle.dump(message, channel, pickle.HIGHEST_PROTOCOL)
            pickle.dump(None, channel)
        except Exception as error:  # noqa: BLE001 - raised again in the parent
            pickle.dump(_WorkerFailed(_sendable(error)), channel, pickle.HIGHEST_PROTOCOL)
        channel.flush()
    except BrokenPipeError:  # the parent stopped reading: it failed or was stopped, and says so itself
        os._exit(1)


def _sendable(error: Exception) -> Exception:
    """``error`` with the worker's traceback as a note, or a RuntimeError saying it if it does not unpickle."""
    error.add_note("in the parsing process:\n" + "".join(traceback.format_exception(error)).rstrip())
    try:
        pickle.loads(pickle.dumps(error, pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - an exception class pickle cannot rebuild
        substitute = RuntimeError(f"{type(error).__name__}: {error}")
        substitute.__notes__ = error.__notes__  # type: ignore[attr-defined]
        return substitute
    return error


class _ForwardLogs(logging.Handler):
    def __init__(self, channel: io.BufferedWriter):
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        # As logging.handlers.QueueHandler does: the message formatted, nothing unpicklable left.
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        pickle.dump(record, self.channel, pickle.HIGHEST_PROTOCOL)


def _problem_logger(feed: str) -> Callable[[RecordProblem], None]:
    def log_problem(problem: RecordProblem) -> None:
        log.warning("%s: skipped record %s: %s", feed, problem.record_id or "(no id)", problem.message)

    return log_problem


def _age_text(age: timedelta | None) -> str:
    return "never fetched" if age is None else f"{_hours(age):.1f} h old"


def _hours(age: timedelta | None) -> float | None:
    return None if age is None else age.total_seconds() / 3600

