"""Read a zip archive one member at a time, in memory that does not grow with the member count.

``zipfile.ZipFile`` builds a ZipInfo object for every member when it opens an archive: about 700
bytes each, some 140 MB for an OSV bulk archive of 200,000 records before a single one is read.
This reader keeps only the raw central directory (about 70 bytes a member) and decodes its entries
as it goes, reading one member's bytes at a time.

Supported: stored and deflated members, zip64 archives (needed past 65,535 members), UTF-8 or
CP437 names. Not supported (FeedError): encryption, multi-disk archives, other compressions.
Every member's size and CRC-32 are checked, so a corrupt archive fails instead of yielding garbage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from patchpipe.advisories.source import FeedError

MAX_MEMBER_SIZE = 64 << 20  # an advisory record is kilobytes; anything this large is not one

_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ZIP64_EXTRA_ID = 0x0001
_ZIP64_MARK = 0xFFFFFFFF  # this size or offset is in the zip64 extra field
_MAX_COMMENT = 0xFFFF
_ENCRYPTED = 0x1
_UTF8_NAME = 0x800
_STORED, _DEFLATED = 0, 8


def is_zip(head: bytes) -> bool:
    """Whether the first bytes of a file are a zip archive's (an empty archive starts with its end)."""
    return head[:4] in (_LOCAL_SIGNATURE, _END_SIGNATURE)


def iter_zip_members(archive: BinaryIO, origin: str) -> Iterator[tuple[str, bytes]]:
    """(name, uncompressed bytes) of each file in a seekable zip archive, in directory order.

    Raises FeedError naming ``origin`` for a truncated, corrupt or unsupported archive; members
    already yielded stay valid, but the caller must treat the whole archive as unusable.
    """
    directory = _read_central_directory(archive, origin)
    position = 0
    while position < len(directory):
        entry = _parse_entry(directory, position, origin)
        position = entry.next_position
        if not entry.name.endswith("/"):
            yield entry.name, _read_member(archive, entry, origin)


class _Entry(NamedTuple):  # a tuple: one is made per member, and tuples are quick to make
    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    local_offset: int
    next_position: int


def _read_central_directory(archive: BinaryIO, origin: str) -> bytes:
    archive_size = archive.seek(0, 2)
    tail_start = max(0, archive_size - _END.size - _MAX_COMMENT)
    archive.seek(tail_start)
    tail = archive.read()
    end_at = len(tail) - _END.size  # the usual case: no archive comment
    if end_at < 0 or tail[end_at : end_at + 4] != _END_SIGNATURE:
        end_at = tail.rfind(_END_SIGNATURE)
    if end_at < 0 or end_at + _END.size > len(tail):
        raise FeedError(f"{origin}: not a complete zip archive (no end-of-directory record: truncated?)")
    _, disk, directory_disk, _, _, directory_size, directory_offset, comment_length = _END.unpack_from(tail, end_at)
    end_position = tail_start + end_at
    if end_position + _END.size + comment_length != archive_size:
        raise FeedError(f"{origin}: zip archive is damaged (its end-of-directory record does not end the file)")
    directory_end = end_position
    locator_at = end_at - _ZIP64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == _ZIP64_LOCATOR_SIGNATURE:
        directory_end, disk, directory_disk, directory_size, directory_offset = _zip64_end(
            archive, tail, locator_at, origin
        )
    if disk != 0 or directory_disk != 0:
        raise FeedError(f"{origin}: multi-disk zip archives are not supported")
    if directory_offset + directory_size != directory_end:
        raise FeedError(f"{origin}: zip archive is damaged (its central directory is not where the archive says)")
    archive.seek(directory_offset)
    directory = archive.read(directory_size)
    if len(directory) != directory_size:
        raise FeedError(f"{origin}: zip archive is truncated inside its central directory")
    return directory


def _zip64_end(archive: BinaryIO, tail: bytes, locator_at: int, origin: str) -> tuple[int, int, int, int, int]:
    _, _, end_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
    archive.seek(end_offset)
    record = archive.read(_ZIP64_END.size)
    if len(record) != _ZIP64_END.size or record[:4] != _ZIP64_END_SIGNATURE:
        raise FeedError(f"{origin}: zip64 archive is damaged (no zip64 end-of-directory record)")
    _, _, _, _, disk, directory_disk, _, _, directory_size, directory_offset = _ZIP64_END.unpack(record)
    return end_offset, disk, directory_disk, directory_size, directory_offset


def _parse_entry(directory: bytes, position: int, origin: str) -> _Entry:
    if position + _CENTRAL.size > len(directory) or directory[position : position + 4] != _CENTRAL_SIGNATURE:
        raise FeedError(f"{origin}: zip archive is damaged (bad central directory entry at byte {position})")
    (_, _, _, flags, method, _, _, crc, compressed_size, size, name_length, extra_length, comment_length, _, _, _,
     local_offset) = _CENTRAL.unpack_from(directory, position)  # fmt: skip
    name_at = position + _CENTRAL.size
    extra_at = name_at + name_length
    next_position = extra_at + extra_length + comment_length
    if next_position > len(directory):
        raise FeedError(f"{origin}: zip archive is damaged (central directory entry runs past its end)")
    raw_name = directory[name_at:extra_at]
    name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437", "replace")
    if _ZIP64_MARK in (size, compressed_size, local_offset):
        size, compressed_size, local_offset = _apply_zip64_extra(
            directory[extra_at : extra_at + extra_length], size, compressed_size, local_offset
        )
    return _Entry(name, flags, method, crc, compressed_size, size, local_offset, next_position)


def _apply_zip64_extra(extra: bytes, size: int, compressed_size: int, local_offset: int) -> tuple[int, int, int]:
    """Sizes and offset that do not fit 32 bits are _ZIP64_MARK in the entry and given here instead."""
    position = 0
    while position + 4 <= len(extra):
        field_id, field_length = struct.unpack_from("<2H", extra, position)
        position += 4
        if field_id == _ZIP64_EXTRA_ID:
            count = min(field_length, len(extra) - position) // 8
            values = iter(struct.unpack_from(f"<{count}Q", extra, position))
            if size == _ZIP64_MARK:
                size = next(values, size)
            if compressed_size == _ZIP64_MARK:
                compressed_size = next(values, compressed_size)
            if local_offset == _ZIP64_MARK:
                local_offset = next(values, local_offset)
        position += field_length
    return size, compressed_size, local_offset


def _read_member(archive: BinaryIO, entry: _Entry, origin: str) -> bytes:
    where = f"{origin}: member {entry.name}"
    if entry.flags & _ENCRYPTED:
        raise FeedError(f"{where} is encrypted")
    if entry.method not in (_STORED, _DEFLATED):
        raise FeedError(f"{where} uses compression method {entry.method}; only stored and deflated are supported")
    if entry.size > MAX_MEMBER_SIZE or entry.compressed_size > MAX_MEMBER_SIZE:
        raise FeedError(f"{where} is {entry.size} bytes, more than the {MAX_MEMBER_SIZE} a record may be")
    archive.seek(entry.local_offset)
    header = archive.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIGNATURE:
        raise FeedError(f"{where}: zip archive is damaged (no local header where the directory points)")
    name_length, extra_length = _LOCAL.unpack(header)[-2:]
    archive.seek(name_length + extra_length, 1)
    stored = archive.read(entry.compressed_size)
    if len(stored) != entry.compressed_size:
        raise FeedError(f"{where} is truncated")
    data = stored if entry.method == _STORED else _inflate(stored, entry.size, where)
    if len(data) != entry.size or zlib.crc32(data) != entry.crc:
        raise FeedError(f"{where} is corrupt (size or CRC-32 does not match the directory)")
    return data


def _inflate(stored: bytes, size: int, where: str) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        # One byte more than declared is enough to notice a member that inflates past its size.
        data = inflater.decompress(stored, size + 1)
    except zlib.error as exc:
        raise FeedError(f"{where} does not decompress: {exc}") from None
    if not inflater.eof:
        raise FeedError(f"{where} is corrupt (its deflate stream does not end where it should)")
    return data
