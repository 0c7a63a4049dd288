"""The advisory store, kept in memory between scans: per process, per engine, per (ecosystem, release).

Why
    A scan of a 400-package image against a large store reads some 20,000 affected entries (80 ms in
    SQLite alone) and judges each one against the installed version (several times that in Python).
    A process scans many images of the same releases (an Airflow worker, a pipeline scanning the
    current image and its candidate) while the store changes a few times a day, when a feed is
    synced. So what a scan read and concluded is kept in a ``StoreSlice`` and reused: the entries of
    each source package asked about (all feeds, grouped by package), the advisories' fields, their
    linked ids, KEV and EPSS, and ``results``, what the matcher concluded for one (version rules,
    source package, installed version).

The validity rule: a slice is only ever used while the store is exactly what it was read from
    ``store.store_token`` changes in the transaction that replaces any feed's rows: each feed's
    generation and a random stamp, written with its rows. Every scan reads the token first (one
    small query) through the connection it then reads with, and uses the slice of its engine,
    ecosystem and release only when the slice was filled under an equal token; otherwise it starts
    a new, empty slice. Everything a scan adds to a slice is read after that token, through the same
    connection. On SQLite the scan's reads are one transaction (patchpipe's SQLite engines BEGIN
    IMMEDIATE), a snapshot: token and rows agree. On PostgreSQL (read committed) a feed may be
    replaced between two statements, so when a scan has read anything, it reads the token again at
    the end, and drops the slice if it moved: nothing read across a change is kept. (That scan's
    own answer then mixes rows from before and after the change, as a scan without this index
    would: it reads in several statements, too.)

    Slices belong to an engine object, never to a URL or a token alone: two engines (two database
    files, a file and its copy) never share anything, even with equal tokens. A database deleted
    and created again behind one engine is told apart by its stamps, which are random, not counted.
    The token only sees writes made through ``replace_feed`` / ``replace_feed_parts``, the only
    writers of feed rows in patchpipe; rows edited by hand in SQL are not noticed.

Memory
    At most ``SLICES_KEPT`` slices are kept, the most recently used. A slice holds the entries of the
    source packages that scans of its release asked about (at most every entry its release has:
    for 20,000 entries, some 10 MB), the advisory fields, links, KEV and EPSS of the ones they
    reported, and at most ``RESULTS_KEPT`` results (the oldest go first). ``forget`` drops slices.
    Version comparisons are remembered apart, in ``scan.match``, in a bounded LRU of their own.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from patchpipe.advisories.store import (
    AdvisoryFields,
    AffectedEntry,
    advisory_fields,
    affected_entries,
    kev_and_epss,
    linked_ids,
    store_token,
)

__all__ = ["RESULTS_KEPT", "SLICES_KEPT", "StoreSlice", "StoreView", "forget", "kept_slices", "store_view"]

SLICES_KEPT = 4
RESULTS_KEPT = 20_000

_Key = tuple[int, str, str]  # (id of the engine, ecosystem, release); the slice checks the engine itself
_slices: OrderedDict[_Key, StoreSlice] = OrderedDict()
_slices_lock = threading.Lock()


class StoreSlice:
    """What scans of one engine's (ecosystem, release) read and concluded under one store token."""

    def __init__(self, engine: Engine, ecosystem: str, release: str, token: tuple[Any, ...]):
        self.engine = weakref.ref(engine)
        self.ecosystem = ecosystem
        self.release = release
        self.token = token
        self.entries: dict[str, tuple[AffectedEntry, ...]] = {}  # every package asked about, () for none
        self.advisories: dict[tuple[str, str], AdvisoryFields | None] = {}
        self.linked: dict[str, tuple[str, ...]] = {}
        self.kev: dict[str, bool] = {}
        self.epss: dict[str, float | None] = {}
        self.results = _Bounded(RESULTS_KEPT)
        self.lock = threading.RLock()  # one scan at a time fills and reads a slice


class StoreView:
    """One scan's way into its slice: what the slice lacks is read through the scan's connection."""

    def __init__(self, store_slice: StoreSlice, connection: Connection):
        self.slice = store_slice
        self.results = store_slice.results
        self._connection = connection
        self.read_store = False  # whether this scan read anything but the token

    def entries(self, packages: Iterable[str]) -> dict[str, tuple[AffectedEntry, ...]]:
        """Every entry about each of ``packages``, by package (sorted by advisory id and feed)."""
        kept = self.slice.entries
        missing = {p for p in packages if p not in kept}
        if missing:
            self.read_store = True
            found: dict[str, list[AffectedEntry]] = {p: [] for p in missing}
            for entry in affected_entries(self._connection, self.slice.ecosystem, self.slice.release, missing):
                found[entry.package].append(entry)
            kept.update((p, tuple(e)) for p, e in found.items())
        return kept

    def advisory_fields(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AdvisoryFields | None]:
        """The fields of each (feed, advisory id) of ``keys``; None for one that is not stored."""
        kept = self.slice.advisories
        missing = {k for k in keys if k not in kept}
        if missing:
            self.read_store = True
            found = advisory_fields(self._connection, missing)
            kept.update((k, found.get(k)) for k in missing)
        return kept

    def linked(self, advisory_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """``store.linked_ids`` of each of ``advisory_ids`` (() for a CVE or an id linked to nothing)."""
        kept = self.slice.linked
        missing = {i for i in advisory_ids if i not in kept}
        if missing:
            self.read_store = True
            found = linked_ids(self._connection, missing)
            kept.update((i, found.get(i, ())) for i in missing)
        return kept

    def kev_and_epss(self, cves: Iterable[str]) -> tuple[dict[str, bool], dict[str, float | None]]:
        """Whether each of ``cves`` is in KEV, and its EPSS score (None when unscored)."""
        kev, epss = self.slice.kev, self.slice.epss
        missing = {c for c in cves if c not in kev}
        if missing:
            self.read_store = True
            listed, scores = kev_and_epss(self._connection, missing)
            kev.update((c, c in listed) for c in missing)
            epss.update((c, scores.get(c)) for c in missing)
        return kev, epss


@contextmanager
def store_view(engine: Engine, ecosystem: str, release: str) -> Iterator[StoreView]:
    """The view of ``engine``'s (ecosystem, release) for one scan, valid for the store as it is now.

    Reads the token, takes the slice kept under that token (or a new one), and holds one connection
    open for what the slice lacks (see the module doc for the validity rule).
    """
    ecosystem = ecosystem.lower()
    with engine.connect() as connection:
        token = store_token(connection)
        store_slice = _slice(engine, ecosystem, release, token)
        with store_slice.lock:
            view = StoreView(store_slice, connection)
            yield view
            if view.read_store and store_token(connection) != token:
                _drop(store_slice)


def forget(engine: Engine | None = None) -> None:
    """Drop the slices of ``engine`` (every slice when None): the next scan reads the store again."""
    with _slices_lock:
        for key in [k for k, s in _slices.items() if engine is None or s.engine() is engine]:
            del _slices[key]


def kept_slices(engine: Engine) -> list[tuple[str, str]]:
    """The (ecosystem, release) of each slice kept for ``engine``, least recently used first."""
    with _slices_lock:
        return [(s.ecosystem, s.release) for s in _slices.values() if s.engine() is engine]


def _slice(engine: Engine, ecosystem: str, release: str, token: tuple[Any, ...]) -> StoreSlice:
    key = (id(engine), ecosystem, release)
    with _slices_lock:
        kept = _slices.get(key)
        # The engine check: an id is reused once its engine is gone, by an engine of another database.
        if kept is not None and kept.engine() is engine and kept.token == token:
            _slices.move_to_end(key)
            return kept
        kept = _slices[key] = StoreSlice(engine, ecosystem, release, token)
        _slices.move_to_end(key)
        while len(_slices) > SLICES_KEPT:
            _slices.popitem(last=False)
        return kept


def _drop(store_slice: StoreSlice) -> None:
    key = (id(store_slice.engine()), store_slice.ecosystem, store_slice.release)
    with _slices_lock:
        if _slices.get(key) is store_slice:
            del _slices[key]


class _Bounded:
    """A dict of at most ``size`` items: adding one more lets go of the oldest."""

    def __init__(self, size: int):
        self._size = size
        self._items: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        return self._items.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        while len(self._items) > self._size:
            del self._items[next(iter(self._items))]

    def __len__(self) -> int:
        return len(self._items)
