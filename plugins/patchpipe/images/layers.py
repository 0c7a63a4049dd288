"""Read selected files out of an image's layers without running the image.

Layers are given top (newest) first and are read as streams, one at a time, keeping only the bytes
of the wanted files. The result is what the running container would see (the overlay semantics):

* An entry in an upper layer shadows the same path in lower layers. Within one layer a later tar
  entry replaces an earlier one with the same name.
* ``dir/.wh.name`` deletes ``dir/name`` (and everything under it) from the layers below it.
* ``dir/.wh..wh..opq`` hides everything the layers below hold under ``dir``; the layer holding the
  marker keeps its own entries there.
* A non-directory in an upper layer hides everything under that path in lower layers; a directory
  in an upper layer merges with the lower ones.
* Symbolic links (also on parent directories) are followed inside the image root; a hard link gets
  the content of its target in the same layer.

Prefixes (``var/lib/dpkg/status.d/``) merge across layers like directories do, so a prefix stays
open down to the bottom layer unless a layer already read closes it: a whiteout or opaque marker
on the prefix directory or a parent, or a non-directory at one of those paths.

Reading stops early once the selection is settled: every exact path found or known absent and
every prefix closed, or, when the selector names ``enough`` groups, once every group has one member
found (a prefix counts once it is closed and holds a file: an empty one answers nothing). Whatever
could still change in the unread layers is reported in ``ImageFiles.unresolved``.

A link whose target lies outside the selection (for example ``etc/os-release`` pointing somewhere
that was not asked for) needs another pass over the layers for the target; ``layer_reads`` counts
these re-reads. Members of an ``enough`` group that another member already answers get no such
pass (on a merged-/usr Debian, ``lib/apk/db/installed`` leads into ``usr/lib``, but the dpkg
database was found) and are reported unresolved instead.

What a registry layer contributes to a selection is remembered in this process, by the layer's
digest (its content is checked against it as it is read): a fleet of images built on a few bases
reads each base layer once, not once per image. Only the top layers an image adds are read.

Unsafe entries (absolute names, ``..`` components, links whose target leaves the image root) fail
the whole read with a LayerError: we never write to disk, but an image that carries such entries
is not one we want to patch or vouch for. Symbolic link targets are resolved lexically, the way
``filepath.Clean`` does it, before the link is followed.

An ``UnpackedLayer`` (a layer directory of the engine's overlay2 storage) follows the same rules,
but only the paths the selection tracks are looked at, not every entry: a link leaving the image
root fails the read there too, and an unsafe entry elsewhere in the layer goes unseen.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from enum import Enum
from typing import BinaryIO, Callable, Iterable, Iterator

from patchpipe.errors import LayerError, PatchpipeError

MAX_FILE_SIZE = 64 * 1024 * 1024
_MAX_PASSES = 8
_MAX_LINK_HOPS = 40
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Layer:
    """One image layer: ``digest`` names it in messages, ``open()`` returns a fresh binary stream of
    its tar, gzip- or zstd-compressed or plain. ``verified``: the stream fails unless its content
    matches ``digest`` (a registry blob), so what was read from it may be remembered by digest."""

    digest: str
    open: Callable[[], BinaryIO]
    verified: bool = False


@dataclass(frozen=True)
class UnpackedLayer:
    """One image layer unpacked in a directory, the way Docker's overlay2 storage driver keeps it
    (``/var/lib/docker/overlay2/<id>/diff``): a whiteout is a character device 0/0 at the deleted
    path, an opaque directory carries the extended attribute ``trusted.overlay.opaque`` = ``y``.

    Only the paths the selection tracks are looked at: a layer holding 100 MB of other files costs
    a few ``lstat`` calls, where its tar would have to be read through. Symbolic links inside the
    directory are never followed on the host: each component is opened with ``O_NOFOLLOW``
    relative to its parent, and links are resolved inside the image as for tar layers.
    """

    digest: str
    directory: str


def _clean(path: str) -> str:
    return "/".join(part for part in path.split("/") if part not in ("", "."))


@dataclass(frozen=True)
class FileSelector:
    """Which files to read.

    ``paths`` are exact file paths and ``prefixes`` directory prefixes, both relative to the image
    root (a leading ``/`` is dropped; prefixes end with ``/``). ``enough`` optionally lists groups
    of alternatives among them: reading may stop once every group has one member found (a prefix
    member counts once it is closed and holds a file).
    """

    paths: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    enough: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(_clean(p) for p in self.paths))
        object.__setattr__(self, "prefixes", tuple(_clean(p) + "/" for p in self.prefixes))
        groups = tuple(tuple(_clean(m) + ("/" if m.endswith("/") else "") for m in g) for g in self.enough)
        object.__setattr__(self, "enough", groups)
        if any(not p for p in self.paths) or any(p == "/" for p in self.prefixes):
            raise ValueError("selector paths and prefixes must name something below the image root")
        known = set(self.paths) | set(self.prefixes)
        for group in groups:
            unknown = [m for m in group if m not in known]
            if unknown:
                raise ValueError(f"enough group names {unknown}, which are not selected paths or prefixes")


@dataclass(frozen=True)
class ImageFiles:
    """Files read from an image.

    ``files`` maps each selected path that exists as a regular file (links followed) to its bytes;
    files under a prefix appear under their full path. ``unresolved`` names selected paths and
    prefixes left open because of ``enough``: after an early stop, or spared another pass.
    ``layers_read`` is how deep reading went, counted from the top; ``layer_reads`` counts every
    time a layer was opened, passes for links included.
    """

    files: dict[str, bytes]
    unresolved: frozenset[str]
    layers_read: int
    layers_total: int
    layer_reads: int

    def under(self, prefix: str) -> dict[str, bytes]:
        """The files found below ``prefix``."""
        prefix = _clean(prefix) + "/"
        return {path: data for path, data in self.files.items() if path.startswith(prefix)}

    def summary(self) -> str:
        text = f"read {self.layers_read} of {self.layers_total} layers"
        if self.layer_reads > self.layers_read:
            text += f" ({self.layer_reads} layer reads, following links)"
        return text


def read_image_files(
    layers: Iterable[Layer | UnpackedLayer], selector: FileSelector, *, max_file_size: int = MAX_FILE_SIZE
) -> ImageFiles:
    """Read the files ``selector`` names from ``layers`` (top layer first); see the module doc."""
    layers = list(layers)
    files: dict[str, bytes] = {}
    unresolved: set[str] = set()
    deepest = reads = 0
    # Each pass reads the selection of that pass; `origin` maps its names back to what was asked.
    pass_selector = selector
    origin = {name: [name] for name in (*selector.paths, *selector.prefixes)}
    for _ in range(_MAX_PASSES):
        outcome = _Pass(layers, pass_selector, max_file_size).run()
        deepest = max(deepest, outcome.layers_read)
        reads += outcome.layer_reads
        for path, data in outcome.files.items():
            files.update((asked, data) for asked in _asked(path, origin))
        unresolved.update(asked for name in outcome.unresolved for asked in _asked(name, origin))
        if not outcome.follow:
            return ImageFiles(files, frozenset(unresolved), deepest, len(layers), reads)
        origin = {new: [a for name in names for a in _asked(name, origin)] for new, names in outcome.follow.items()}
        paths = tuple(n for n in outcome.follow if not n.endswith("/"))
        prefixes = tuple(n for n in outcome.follow if n.endswith("/"))
        pass_selector = FileSelector(paths, prefixes)
    asked = sorted({a for names in origin.values() for a in names})
    raise LayerError(f"symbolic links in the image nest more than {_MAX_PASSES} levels deep: {asked}")


def _asked(name: str, origin: dict[str, list[str]]) -> list[str]:
    """The originally selected names a name of this pass answers for."""
    if name in origin:
        return origin[name]
    for new, olds in origin.items():
        if new.endswith("/") and name.startswith(new):
            return [old + name[len(new):] for old in olds]
    return [name]


# --- one pass over the layers ------------------------------------------------------------------


class _Kind(Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"


@dataclass
class _Entry:
    kind: _Kind
    content: bytes | None = None
    target: str | None = None  # symlink: image path it points to; hard link: tar name of its target


@dataclass
class _Changes:
    """What one layer contributes; it applies to the view only once the layer is read."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)


class _Found:
    def __init__(self, content: bytes):
        self.content = content


class _Absent:
    pass


class _Unknown:
    pass


class _Elsewhere:
    """The answer lies at ``path``, which this pass does not track: it needs another pass."""

    def __init__(self, path: str):
        self.path = path


_Answer = _Found | _Absent | _Unknown | _Elsewhere
_ABSENT, _UNKNOWN = _Absent(), _Unknown()


@dataclass
class _PassOutcome:
    files: dict[str, bytes]
    unresolved: set[str]
    follow: dict[str, list[str]]  # path or prefix for the next pass -> the names it answers for
    layers_read: int
    layer_reads: int


def _parents(path: str) -> list[str]:
    """Strict ancestors of ``path``, the root ("") first."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts))]


class _Pass:
    def __init__(self, layers: list[Layer | UnpackedLayer], selector: FileSelector, max_file_size: int):
        self.layers = layers
        self.selector = selector
        self.max_file_size = max_file_size
        self.exact = set(selector.paths)
        self.prefixes = selector.prefixes
        self.prefix_dirs = {p[:-1] for p in selector.prefixes}
        self.ancestors = {a for path in (*self.exact, *self.prefix_dirs) for a in _parents(path)} | self.prefix_dirs
        self.entries: dict[str, _Entry] = {}
        self.deleted: set[str] = set()
        self.opaque: set[str] = set()
        self.exhausted = False
        self.layer_reads = 0

    # What this pass keeps: wanted files, everything under a prefix, and the parents of both.
    def wants_content(self, path: str) -> bool:
        return path in self.exact or any(path.startswith(p) for p in self.prefixes)

    def tracks(self, path: str) -> bool:
        return path in self.ancestors or self.wants_content(path)

    def run(self) -> _PassOutcome:
        depth = 0
        for index, layer in enumerate(self.layers):
            changes = self._read_layer(layer)
            self._apply(changes)
            depth = index + 1
            if self._settled():
                break
        self.exhausted = depth == len(self.layers)
        return self._outcome(depth)

    # --- reading one layer ---

    def _read_layer(self, layer: Layer | UnpackedLayer) -> _Changes:
        if not (isinstance(layer, Layer) and layer.verified):
            return self._changes_of(layer)
        key = (layer.digest, self.selector, self.max_file_size)
        changes = _READ_LAYERS.get(key)
        if changes is None:
            changes = _READ_LAYERS.put(key, self._changes_of(layer))
        return changes

    def _changes_of(self, layer: Layer | UnpackedLayer) -> _Changes:
        """What the layer holds of this pass's selection, whatever the layers above it hide."""
        changes = _Changes()
        self.layer_reads += 1
        if isinstance(layer, UnpackedLayer):
            reading = _reading_unpacked(layer, (self.ancestors | self.exact) - {""}, self.prefix_dirs)
        else:
            reading = _reading(layer)
        with reading as members:
            for member, name, tar in members:
                self._take(layer, member, name, tar, changes)
        self._resolve_hardlinks(layer, changes)
        return changes

    def _take(self, layer: Layer, member: tarfile.TarInfo, name: str, tar: tarfile.TarFile, changes: _Changes) -> None:
        base = name.rsplit("/", 1)[-1]
        parent = name[: -len(base) - 1] if "/" in name else ""
        if base == _OPAQUE:
            if self.tracks(parent):
                changes.opaque.add(parent)
        elif base.startswith(_WHITEOUT):
            deleted = f"{parent}/{base[len(_WHITEOUT):]}".lstrip("/")
            if self.tracks(deleted):
                changes.deleted.add(deleted)
        elif self.tracks(name):
            changes.entries[name] = self._entry(layer, name, member, tar)

    def _entry(self, layer: Layer, name: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> _Entry:
        if member.isdir():
            return _Entry(_Kind.DIR)
        if member.issym():
            return _Entry(_Kind.SYMLINK, target=_symlink_target(layer, name, member.linkname))
        if not self.wants_content(name):
            return _Entry(_Kind.OTHER)
        if member.islnk():
            return _Entry(_Kind.HARDLINK, target=_safe_name(layer, member.linkname, entry=name))
        if member.isfile():
            return _Entry(_Kind.FILE, content=_file_content(layer, name, member, tar, self.max_file_size))
        return _Entry(_Kind.OTHER)

    def _resolve_hardlinks(self, layer: Layer, changes: _Changes) -> None:
        links = {name: e for name, e in changes.entries.items() if e.kind is _Kind.HARDLINK}
        missing = set()
        for entry in links.values():
            target = changes.entries.get(entry.target)
            if target is not None and target.kind is _Kind.FILE:
                entry.kind, entry.content = _Kind.FILE, target.content
            else:
                missing.add(entry.target)
        if not missing:
            return
        # The target went by before we knew we needed it: read this layer once more for it.
        self.layer_reads += 1
        contents = {}
        with _reading(layer) as members:
            for member, name, tar in members:
                if name in missing and member.isfile():
                    contents[name] = _file_content(layer, name, member, tar, self.max_file_size)
        for name, entry in links.items():
            if entry.kind is _Kind.HARDLINK:
                if entry.target not in contents:
                    raise LayerError(f"layer {layer.digest}: hard link {name} points to {entry.target}, "
                                     "which is not a regular file in the same layer")
                entry.kind, entry.content = _Kind.FILE, contents[entry.target]

    def _hidden(self, path: str) -> bool:
        """Whether a layer already read hides ``path`` in the layers below it."""
        if path in self.entries or path in self.deleted:
            return True
        for parent in _parents(path):
            if parent in self.deleted or parent in self.opaque:
                return True
            entry = self.entries.get(parent)
            if entry is not None and entry.kind is not _Kind.DIR:
                return True
        return False

    def _apply(self, changes: _Changes) -> None:
        visible = {name: entry for name, entry in changes.entries.items() if not self._hidden(name)}
        for name in list(visible):
            # A layer that holds a path holds its parents as directories, tar entry or not.
            for parent in _parents(name):
                if parent in self.ancestors and parent not in visible:
                    visible[parent] = _Entry(_Kind.DIR)
        for name, entry in visible.items():
            self.entries.setdefault(name, entry)
        self.deleted |= changes.deleted
        self.opaque |= changes.opaque

    # --- answering from what has been read ---

    def _lookup(self, path: str, hops: int = 0) -> _Answer:
        if hops > _MAX_LINK_HOPS:
            raise LayerError(f"too many levels of symbolic links resolving /{path} in the image")
        for parent in _parents(path)[1:]:
            entry = self.entries.get(parent)
            if entry is None:
                continue
            if entry.kind is _Kind.SYMLINK:
                return self._lookup(_join(entry.target, path[len(parent) + 1:]), hops + 1)
            if entry.kind is not _Kind.DIR:
                return _ABSENT
        entry = self.entries.get(path)
        if entry is not None:
            if entry.kind is _Kind.FILE:
                return _Found(entry.content)
            if entry.kind is _Kind.SYMLINK:
                return self._lookup(entry.target, hops + 1)
            return _ABSENT
        if self._closed_below(path):
            return _ABSENT
        if not self.wants_content(path):
            return _Elsewhere(path)
        return _ABSENT if self.exhausted else _UNKNOWN

    def _closed_below(self, path: str) -> bool:
        """Whether the layers read so far hide ``path`` in every layer below them."""
        return path in self.deleted or any(p in self.deleted or p in self.opaque for p in _parents(path))

    def _prefix_state(self, prefix: str) -> _Answer:
        """_Absent when the prefix is closed, _Unknown while lower layers may add to it."""
        directory = prefix[:-1]
        for parent in [*_parents(directory)[1:], directory]:
            entry = self.entries.get(parent)
            if entry is None:
                continue
            if entry.kind is _Kind.SYMLINK:
                return _Elsewhere(_join(entry.target, directory[len(parent) + 1:]) + "/")
            if entry.kind is not _Kind.DIR:
                return _ABSENT
        if self.exhausted or self._closed_below(directory) or directory in self.opaque:
            return _ABSENT
        return _UNKNOWN

    def _settled(self) -> bool:
        if self.selector.enough:
            return all(any(self._satisfies(member) for member in group) for group in self.selector.enough)
        return all(not isinstance(self._lookup(p), _Unknown) for p in self.exact) and all(
            not isinstance(self._prefix_state(p), _Unknown) for p in self.prefixes
        )

    def _satisfies(self, member: str) -> bool:
        """Whether ``member`` answers its ``enough`` group: a file found, or a prefix that is closed
        and holds at least one file. A prefix closed empty (no ``status.d/`` once every layer is
        read, or one a whiteout removed) answers nothing: it must neither stop reading early nor
        spare the group's other members their pass through a link."""
        if member.endswith("/"):
            return isinstance(self._prefix_state(member), _Absent) and any(
                name.startswith(member) and isinstance(self._lookup(name), _Found) for name in self.entries
            )
        return isinstance(self._lookup(member), _Found)

    def _outcome(self, depth: int) -> _PassOutcome:
        files, unresolved, follow = {}, set(), {}
        # Alternatives to a found member of an `enough` group are not worth another pass.
        spared = {m for g in self.selector.enough if any(self._satisfies(m) for m in g) for m in g}
        prefixed = [n for n in self.entries if any(n.startswith(p) for p in self.prefixes)]
        for name in [*self.exact, *prefixed]:
            answer = self._lookup(name)
            if isinstance(answer, _Found):
                files[name] = answer.content
            elif isinstance(answer, _Elsewhere) and not self._spared(name, spared):
                follow.setdefault(answer.path, []).append(name)
            elif not isinstance(answer, _Absent):
                unresolved.add(name)
        for prefix in self.prefixes:
            state = self._prefix_state(prefix)
            if isinstance(state, _Elsewhere) and prefix not in spared:
                follow.setdefault(state.path, []).append(prefix)
            elif not isinstance(state, _Absent):
                unresolved.add(prefix)
        return _PassOutcome(files, unresolved, follow, depth, self.layer_reads)

    def _spared(self, name: str, spared: set[str]) -> bool:
        return name in spared or any(name.startswith(p) for p in spared if p.endswith("/"))


class _LayerMemory:
    """The _Changes of the layers read last, by (digest, selector, size limit), up to a total of
    ``budget`` bytes of file content; least recently used first out."""

    def __init__(self, budget: int):
        self.budget = budget
        self.held: dict[tuple, tuple[_Changes, int]] = {}

    def get(self, key: tuple) -> _Changes | None:
        found = self.held.pop(key, None)
        if found is None:
            return None
        self.held[key] = found
        return found[0]

    def put(self, key: tuple, changes: _Changes) -> _Changes:
        size = sum(len(entry.content or b"") for entry in changes.entries.values())
        if size <= self.budget:
            self.held[key] = (changes, size)
            while sum(held for _, held in self.held.values()) > self.budget:
                del self.held[next(iter(self.held))]
        return changes


_READ_LAYERS = _LayerMemory(budget=256 * 1024 * 1024)


def _join(base: str, rest: str) -> str:
    return f"{base}/{rest}".strip("/") if rest else base


# --- tar streams -------------------------------------------------------------------------------


def _safe_name(layer: Layer, name: str, entry: str | None = None) -> str:
    """``name`` cleaned of ``./`` and empty components; ``entry`` is the hard link it is the target of."""
    what = f"{entry!r}: hard link to {name!r}" if entry else repr(name)
    if name.startswith("/"):
        raise LayerError(f"layer {layer.digest}: unsafe tar entry {what}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer {layer.digest}: unsafe tar entry {what}: '..' component")
    return "/".join(parts)


def _symlink_target(layer: Layer, name: str, target: str) -> str:
    """The image path a symbolic link at ``name`` points to, resolved lexically."""
    parts = [] if target.startswith("/") else name.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise LayerError(f"layer {layer.digest}: unsafe tar entry {name!r}: "
                                 f"symbolic link to {target!r} leaves the image root")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _file_content(layer: Layer, name: str, member: tarfile.TarInfo, tar: tarfile.TarFile, limit: int) -> bytes:
    if member.size > limit:
        raise LayerError(f"layer {layer.digest}: {name} is {member.size} bytes, more than the {limit}-byte limit")
    stream = tar.extractfile(member)
    data = stream.read() if stream is not None else b""
    if len(data) != member.size:
        raise LayerError(f"layer {layer.digest}: {name} is truncated ({len(data)} of {member.size} bytes)")
    return data


_CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError)


@contextlib.contextmanager
def _reading(layer: Layer) -> Iterator[Iterator[tuple[tarfile.TarInfo, str, tarfile.TarFile]]]:
    """The layer's entries (see _members), with every way a stream can break turned into a
    LayerError naming the layer; errors of our own (a RegistryError from the blob) pass as they are."""
    members = _members(layer)
    try:
        yield members
    except PatchpipeError:
        raise
    except _CORRUPT as exc:
        raise LayerError(f"layer {layer.digest} is truncated or corrupt: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("zstandard"):
            raise LayerError(f"layer {layer.digest} is truncated or corrupt: {exc}") from exc
        raise
    finally:
        members.close()


def _members(layer: Layer) -> Iterator[tuple[tarfile.TarInfo, str, tarfile.TarFile]]:
    """Yield (member, safe name, tar) for every entry of the layer, checking each for safety and the
    archive for truncation; a member's content is only readable until the next one is yielded."""
    with contextlib.ExitStack() as stack:
        stream = _ForwardReader(_decompressed(layer, stack))
        tar = stack.enter_context(tarfile.open(fileobj=stream, mode="r:"))
        while (member := tar.next()) is not None:
            tar.members.clear()  # tarfile remembers every member; we never look back
            name = _safe_name(layer, member.name)
            if member.islnk():
                _safe_name(layer, member.linkname, entry=name)
            if member.issym():
                _symlink_target(layer, name, member.linkname)
            if name:
                yield member, name, tar
        _check_end_of_archive(layer, stream, tar.offset)


def _check_end_of_archive(layer: Layer, stream: "_ForwardReader", end: int) -> None:
    # tarfile treats a missing end-of-archive marker, or a garbled header after the first one, as
    # the end of the archive; a truncated layer would silently lose files. Demand the marker.
    stream.seek(end)
    zeros = 0
    while chunk := stream.read(1 << 16):
        if chunk.count(0) != len(chunk):
            raise LayerError(f"layer {layer.digest} is corrupt: unreadable tar header at offset {end}")
        zeros += len(chunk)
    if zeros < _END_OF_ARCHIVE:
        raise LayerError(f"layer {layer.digest} is truncated: the tar archive ends at offset {end} "
                         "without an end-of-archive marker")


def _decompressed(layer: Layer, stack: contextlib.ExitStack) -> BinaryIO:
    raw = stack.enter_context(contextlib.closing(layer.open()))
    head = _read_upto(raw, 6)
    stream = _Prefixed(head, raw)
    if head.startswith(b"\x1f\x8b"):
        return stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError:
            raise LayerError(f"layer {layer.digest}: unsupported compression zstd "
                             "(install the zstandard module to read it)") from None
        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        return stack.enter_context(contextlib.closing(reader))
    for magic, kind in ((b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz")):
        if head.startswith(magic):
            raise LayerError(f"layer {layer.digest}: unsupported compression {kind}")
    if raw.seekable():  # a plain tar in a file (docker save): seeking skips file contents unread
        raw.seek(-len(head), io.SEEK_CUR)
        return raw
    return stream


def _read_upto(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := stream.read(size - len(data))):
        data += chunk
    return data


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: puts the sniffed magic bytes back."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ForwardReader(io.RawIOBase):
    """A stream that looks seekable to tarfile: seeking forward skips, and seeking back is allowed
    within the last few blocks (enough to re-read the header at the end of the archive)."""

    _HISTORY = 4 * tarfile.BLOCKSIZE

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._position = 0
        self._history = bytearray()  # the last bytes read from the stream, ending at _position
        self._replay = b""  # bytes handed out again after a seek back

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        if self._replay:
            n = min(len(buffer), len(self._replay))
            buffer[:n], self._replay = self._replay[:n], self._replay[n:]
        else:
            data = _read_upto(self._stream, len(buffer))
            n = len(data)
            buffer[:n] = data
            self._history += data
            del self._history[: -self._HISTORY]
        self._position += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._position + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise OSError("layer streams cannot seek from the end")
        if target < self._position:
            back = self._position - target
            available = len(self._history) - len(self._replay)
            if back > available:
                raise OSError(f"cannot seek back from {self._position} to {target} in a layer stream")
            end = len(self._history) - len(self._replay)
            self._replay = bytes(self._history[end - back:end]) + self._replay
            self._position = target
        if target > self._position and not self._replay and self._stream.seekable():
            # Skipped, not read: a 100 MB file in a layer costs nothing. The end is not checked
            # here; tarfile reads the last byte before the next header and notices a short stream.
            self._stream.seek(target - self._position, io.SEEK_CUR)
            self._history.clear()
            self._position = target
        while self._position < target and self.read(min(target - self._position, 1 << 16)):
            pass
        return self._position


# --- unpacked layers (overlay2 directories) ----------------------------------------------------

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")  # the second: rootless overlay
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


@contextlib.contextmanager
def _reading_unpacked(
    layer: UnpackedLayer, names: set[str], prefix_dirs: set[str]
) -> Iterator[Iterator[tuple[tarfile.TarInfo, str, "_Unpacked"]]]:
    """What _reading yields for a tar layer, for ``names`` and everything below ``prefix_dirs`` of an
    unpacked layer; an unreadable directory is a LayerError naming the layer."""
    unpacked = _Unpacked(layer)
    try:
        yield unpacked.members(names, prefix_dirs)
    except OSError as exc:
        raise LayerError(f"layer {layer.digest}: cannot read its directory {layer.directory}: {exc}") from exc
    finally:
        unpacked.close()


class _Unpacked:
    """Tar members for the paths of an unpacked layer: whiteouts and opaque directories become the
    tar markers (``.wh.name``, ``.wh..wh..opq``) the overlay rules above already handle.
    ``extractfile`` reads a regular file it yielded, as tarfile's does."""

    def __init__(self, layer: UnpackedLayer):
        self.layer = layer
        self.dirs: dict[str, int | None] = {}  # path in the layer -> an open descriptor, None if no directory
        self.files: dict[str, tuple[int, str]] = {}  # regular file yielded -> (its directory's descriptor, name)

    def members(self, names: set[str], prefix_dirs: set[str]) -> Iterator[tuple[tarfile.TarInfo, str, "_Unpacked"]]:
        self.dirs[""] = os.open(self.layer.directory, os.O_RDONLY | os.O_DIRECTORY)
        for name in sorted(names):
            parent, _, base = name.rpartition("/")
            directory = self._directory(parent)
            if directory is not None and (found := _lstat(base, directory)) is not None:
                yield from self._members(name, base, directory, found)
        for prefix in sorted(prefix_dirs):
            if self.dirs.get(prefix) is not None:
                yield from self._walk(prefix)

    def extractfile(self, member: tarfile.TarInfo) -> BinaryIO:
        directory, base = self.files[member.name]
        with open(os.open(base, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directory), "rb") as file:
            return io.BytesIO(file.read())

    def close(self) -> None:
        for descriptor in self.dirs.values():
            if descriptor is not None:
                os.close(descriptor)

    def _directory(self, path: str) -> int | None:
        """A descriptor of directory ``path``, None when a component is missing or not a directory
        (a symbolic link included: it is an entry of its own, resolved inside the image)."""
        if path not in self.dirs:
            parent, _, base = path.rpartition("/")
            above = self._directory(parent)
            descriptor = None
            if above is not None:
                try:
                    descriptor = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=above)
                except OSError as exc:
                    if exc.errno not in _NOT_THERE:
                        raise
            self.dirs[path] = descriptor
        return self.dirs[path]

    def _members(self, name: str, base: str, directory: int, found: os.stat_result
                 ) -> Iterator[tuple[tarfile.TarInfo, str, "_Unpacked"]]:
        mode = found.st_mode
        if stat.S_ISCHR(mode) and found.st_rdev == 0:
            whiteout = f"{name.rpartition('/')[0]}/{_WHITEOUT}{base}".lstrip("/")
            yield tarfile.TarInfo(whiteout), whiteout, self
            return
        info = tarfile.TarInfo(name)
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            yield info, name, self
            descriptor = self._directory(name)
            if descriptor is not None and _opaque(descriptor):
                marker = f"{name}/{_OPAQUE}"
                yield tarfile.TarInfo(marker), marker, self
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(base, dir_fd=directory)
            _symlink_target(self.layer, name, info.linkname)  # refused when it leaves the image root
            yield info, name, self
        elif stat.S_ISREG(mode):
            info.size = found.st_size
            self.files[name] = (directory, base)
            yield info, name, self
        else:
            info.type = tarfile.FIFOTYPE  # a device, socket or fifo: present, but not a file to read
            yield info, name, self

    def _walk(self, path: str) -> Iterator[tuple[tarfile.TarInfo, str, "_Unpacked"]]:
        directory = self.dirs[path]
        for base in sorted(os.listdir(directory)):
            found = _lstat(base, directory)
            if found is None:
                continue
            name = f"{path}/{base}"
            yield from self._members(name, base, directory, found)
            if stat.S_ISDIR(found.st_mode) and self._directory(name) is not None:
                yield from self._walk(name)


def _lstat(base: str, directory: int) -> os.stat_result | None:
    try:
        return os.stat(base, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _opaque(descriptor: int) -> bool:
    for attribute in _OPAQUE_XATTRS:
        try:
            if os.getxattr(descriptor, attribute) == b"y":
                return True
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
                raise
    return False
