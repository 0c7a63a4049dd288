"""Read rpm's sqlite database, ``var/lib/rpm/rpmdb.sqlite`` (rpm 4.16 and later; Fedora 33+, RHEL 9,
Rocky/Alma 9, Amazon Linux 2023, ...).

Each row of its ``Packages`` table is one installed package as an rpm header blob, in the byte order
rpm writes it (big-endian)::

    il: uint32, dl: uint32            number of index entries, size of the data store
    il x (tag, type, offset, count)   16-byte index entries, each uint32
    dl bytes                          the data store the entries point into

The database copy in an image holds the header without the 8-byte magic an ``.rpm`` file puts in
front. We read NAME, VERSION, RELEASE, EPOCH, ARCH and SOURCERPM; every index entry is checked
against the bounds rpm itself enforces, so a damaged blob fails loudly, naming its row, rather than
yield a wrong package. ``gpg-pubkey`` rows are imported signing keys, not software, and are left out
(``rpm -qa`` lists them, but no advisory ever names them).

rpm writes the database in WAL mode and checkpoints the log when it closes it, so the main file of an
image holds every committed transaction; a ``-wal`` file left by an interrupted rpm is not replayed.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass

from patchpipe.errors import PatchpipeError
from patchpipe.packages.dpkg import InstalledPackage

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PUBKEY = "gpg-pubkey"

# Header limits and types from rpm's header.c and rpmtag.h.
_MAX_ENTRIES = 0xFFFF
_MAX_DATA = 0x0FFFFFFF
_ENTRY = struct.Struct(">4I")
_CHAR, _INT8, _INT16, _INT32, _INT64, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = range(1, 10)
_FIXED_SIZE = {_CHAR: 1, _INT8: 1, _INT16: 2, _INT32: 4, _INT64: 8, _BIN: 1}
_REGION_TAGS = (61, 62, 63)  # HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE: 16-byte trailers

NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044


@dataclass(frozen=True)
class RpmHeader:
    """The identity of one installed rpm: what ``rpm -q --qf '%{NAME} %{EPOCH} ...'`` prints."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    sourcerpm: str | None

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, the form rpm compares and advisories quote."""
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"


class RpmHeaderError(PatchpipeError):
    """An rpm header blob is malformed; ``package`` is its NAME when that much could be read."""

    def __init__(self, message: str, package: str | None = None):
        super().__init__(message)
        self.package = package


def parse_rpmdb(content: bytes, source: str = "var/lib/rpm/rpmdb.sqlite") -> list[InstalledPackage]:
    """The installed packages of an rpm sqlite database; ``source`` names the file in messages."""
    packages = []
    for hnum, blob in _package_rows(content, source):
        try:
            header = parse_rpm_header(blob)
        except RpmHeaderError as error:
            which = f" (package {error.package})" if error.package else ""
            raise RpmHeaderError(f"{source}: Packages row {hnum}{which}: {error}", error.package) from None
        if header.name == _PUBKEY:
            continue
        if not header.arch:
            raise RpmHeaderError(f"{source}: Packages row {hnum} (package {header.name}) has no ARCH")
        packages.append(_installed(header))
    return packages


def parse_rpm_header(blob: bytes) -> RpmHeader:
    """The identity fields of one header blob as stored in the database (no leading magic)."""
    if len(blob) < 8:
        raise RpmHeaderError(f"the header is {len(blob)} bytes, too short for its 8-byte intro")
    entries, size = struct.unpack_from(">2I", blob)
    if not 1 <= entries <= _MAX_ENTRIES or size > _MAX_DATA:
        raise RpmHeaderError(f"the header claims {entries} index entries and {size} bytes of data")
    store = 8 + 16 * entries
    if len(blob) != store + size:
        raise RpmHeaderError(f"the header is {len(blob)} bytes but its intro says {store + size} "
                             f"({entries} index entries, {size} bytes of data)")
    data = blob[store:]
    index = {}
    for number, (tag, type_, offset, count) in enumerate(_ENTRY.iter_unpack(blob[8:store])):
        _check_entry(number, tag, type_, offset, count, size)
        index.setdefault(tag, (type_, offset, count))
    name = _string(index, data, NAME, "NAME", required=True)

    def field(tag: int, label: str, required: bool = False) -> str | None:
        try:
            return _string(index, data, tag, label, required)
        except RpmHeaderError as error:
            raise RpmHeaderError(str(error), name) from None

    return RpmHeader(
        name=name,
        version=field(VERSION, "VERSION", required=True),
        release=field(RELEASE, "RELEASE", required=True),
        epoch=_epoch(index, data, name),
        arch=field(ARCH, "ARCH"),
        sourcerpm=field(SOURCERPM, "SOURCERPM"),
    )


def split_source_rpm(filename: str) -> tuple[str, str] | None:
    """(name, version-release) of a source rpm file name such as ``bash-5.2.26-3.fc40.src.rpm``;
    None when it does not have that shape."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], f"{parts[1]}-{parts[2]}"
    return None


def _package_rows(content: bytes, source: str) -> list[tuple[int, bytes]]:
    if not content.startswith(_SQLITE_MAGIC):
        raise PatchpipeError(f"{source} is not an SQLite database (rpm's sqlite backend writes one)")
    image = bytearray(content)
    # Bytes 18-19 say 2 for a WAL-mode file; an in-memory copy cannot be in WAL mode, and the
    # content is the same either way, so read it as a rollback-journal database.
    image[18:20] = b"\x01\x01"
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(image))
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.Error as error:
        if "no such table" in str(error):
            raise PatchpipeError(f"{source} has no Packages table: not an rpm database") from None
        raise PatchpipeError(f"{source} is not a readable SQLite database: {error}") from None
    finally:
        connection.close()
    for hnum, blob in rows:
        if not isinstance(blob, bytes):
            raise RpmHeaderError(f"{source}: Packages row {hnum} holds {type(blob).__name__}, not a header blob")
    return rows


def _check_entry(number: int, tag: int, type_: int, offset: int, count: int, size: int) -> None:
    where = f"index entry {number} (tag {tag})"
    if not _CHAR <= type_ <= _I18NSTRING:
        raise RpmHeaderError(f"{where} has unknown type {type_}")
    if tag in _REGION_TAGS:
        if type_ != _BIN or count != 16 or offset + 16 > size:
            raise RpmHeaderError(f"{where} is a malformed region marker")
        return
    if count == 0 or offset >= size:
        raise RpmHeaderError(f"{where} points at offset {offset}, count {count}, outside the {size}-byte data store")
    width = _FIXED_SIZE.get(type_)
    if width is None:
        return  # strings: their terminators are checked when one is read
    if offset % width:
        raise RpmHeaderError(f"{where} is not aligned to {width} bytes (offset {offset})")
    if offset + width * count > size:
        raise RpmHeaderError(f"{where} runs past the end of the {size}-byte data store")


def _string(index: dict, data: bytes, tag: int, label: str, required: bool) -> str | None:
    if tag not in index:
        if required:
            raise RpmHeaderError(f"the header has no {label}")
        return None
    type_, offset, _ = index[tag]
    if type_ not in (_STRING, _I18NSTRING):  # I18NSTRING: the first, untranslated, value
        raise RpmHeaderError(f"{label} has type {type_}, not a string")
    end = data.find(b"\x00", offset)
    if end < 0:
        raise RpmHeaderError(f"{label} at offset {offset} has no terminating NUL before the end of the data store")
    try:
        text = data[offset:end].decode("utf-8")
    except UnicodeDecodeError:
        raise RpmHeaderError(f"{label} is not valid UTF-8") from None
    if required and not text:
        raise RpmHeaderError(f"{label} is empty")
    return text


def _epoch(index: dict, data: bytes, name: str) -> int | None:
    if EPOCH not in index:
        return None
    type_, offset, count = index[EPOCH]
    if type_ != _INT32 or count != 1:
        raise RpmHeaderError(f"EPOCH has type {type_} and count {count}, not one 32-bit integer", name)
    return struct.unpack_from(">I", data, offset)[0]


def _installed(header: RpmHeader) -> InstalledPackage:
    source = split_source_rpm(header.sourcerpm) if header.sourcerpm else None
    epoch = f"{header.epoch}:" if header.epoch is not None else ""
    return InstalledPackage(
        name=header.name,
        version=header.evr,
        architecture=header.arch or "",
        source_name=source[0] if source else header.name,
        # A source rpm and its binaries share the spec's epoch, which the file name leaves out.
        source_version=f"{epoch}{source[1]}" if source else header.evr,
    )
