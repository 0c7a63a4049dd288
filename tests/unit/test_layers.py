"""Reading files out of image layers: overlay semantics, early stop, links, unsafe and broken layers.

Layers are real tar archives built here with ``tarfile`` (gzip-compressed unless a test says so).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

import pytest

from patchpipe.errors import LayerError
from patchpipe.images.layers import FileSelector, Layer, UnpackedLayer, read_image_files
from patchpipe.images.local import saved_layers
from patchpipe.packages.inventory import INVENTORY_SELECTOR

DEBIAN_OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def tar_bytes(*entries: tuple, gzip_it: bool = False) -> bytes:
    """A tar archive of entries: ("file", name, bytes), ("dir", name), ("symlink", name, target),
    ("hardlink", name, target), ("whiteout", path) or ("opaque", directory)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            if kind == "whiteout":
                parent, _, base = name.rpartition("/")
                kind, name, rest = "file", f"{parent}/.wh.{base}".lstrip("/"), [b""]
            elif kind == "opaque":
                kind, name, rest = "file", f"{name}/.wh..wh..opq", [b""]
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            if rest:
                info.linkname = rest[0]
            tar.addfile(info)
    data = buffer.getvalue()
    return gzip.compress(data) if gzip_it else data


def layer(*entries: tuple, plain: bool = False) -> Layer:
    data = tar_bytes(*entries, gzip_it=not plain)
    return layer_of(data)


def layer_of(data: bytes) -> Layer:
    return Layer("sha256:" + hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))


def exploding_layer(name: str = "sha256:" + "e" * 64) -> Layer:
    def never():
        raise AssertionError(f"layer {name} was opened, but reading should have stopped above it")

    return Layer(name, never)


SELECT_STATUS = FileSelector(paths=("var/lib/dpkg/status",))


def test_upper_layer_shadows_lower():
    top = layer(("file", "var/lib/dpkg/status", b"new"))
    base = layer(("file", "var/lib/dpkg/status", b"old"), ("file", "etc/os-release", DEBIAN_OS_RELEASE))
    result = read_image_files([top, base], FileSelector(paths=("var/lib/dpkg/status", "etc/os-release")))
    assert result.files == {"var/lib/dpkg/status": b"new", "etc/os-release": DEBIAN_OS_RELEASE}
    assert (result.layers_read, result.layers_total) == (2, 2)


def test_later_entry_in_the_same_layer_wins():
    only = layer(("file", "var/lib/dpkg/status", b"first"), ("file", "var/lib/dpkg/status", b"second"))
    assert read_image_files([only], SELECT_STATUS).files == {"var/lib/dpkg/status": b"second"}


def test_whiteout_deletes_a_file_of_lower_layers():
    top = layer(("whiteout", "etc/os-release"))
    base = layer(("file", "etc/os-release", DEBIAN_OS_RELEASE), ("file", "var/lib/dpkg/status", b"s"))
    result = read_image_files([top, base], FileSelector(paths=("etc/os-release", "var/lib/dpkg/status")))
    assert result.files == {"var/lib/dpkg/status": b"s"}
    assert result.unresolved == frozenset()


def test_whiteout_of_a_directory_deletes_everything_below_it():
    top = layer(("whiteout", "var/lib/dpkg"))
    base = layer(("file", "var/lib/dpkg/status", b"s"), ("file", "var/lib/dpkg/status.d/libc6", b"p"))
    result = read_image_files([top, base], FileSelector(paths=("var/lib/dpkg/status",), prefixes=("var/lib/dpkg/status.d/",)))
    assert result.files == {}


def test_whiteout_applies_only_below_its_own_layer():
    # The top layer recreates what the middle layer deleted from the base.
    top = layer(("file", "etc/os-release", b"ID=recreated\n"))
    middle = layer(("whiteout", "etc/os-release"))
    base = layer(("file", "etc/os-release", DEBIAN_OS_RELEASE))
    result = read_image_files([top, middle, base], FileSelector(paths=("etc/os-release",)))
    assert result.files == {"etc/os-release": b"ID=recreated\n"}
    assert result.layers_read == 1


def test_opaque_directory_hides_lower_contents_but_keeps_its_own_layer():
    top = layer(("opaque", "var/lib/dpkg/status.d"), ("file", "var/lib/dpkg/status.d/new", b"n"))
    base = layer(("file", "var/lib/dpkg/status.d/old", b"o"), ("file", "var/lib/dpkg/status", b"s"))
    result = read_image_files([top, base], FileSelector(prefixes=("var/lib/dpkg/status.d/",)))
    assert result.files == {"var/lib/dpkg/status.d/new": b"n"}
    # The opaque marker closes the prefix, so the base layer is never needed.
    assert result.layers_read == 1


def test_opaque_parent_directory_hides_lower_files():
    top = layer(("opaque", "var/lib/dpkg"), ("file", "var/lib/dpkg/available", b""))
    base = layer(("file", "var/lib/dpkg/status", b"s"))
    result = read_image_files([top, exploding_layer()], SELECT_STATUS)
    assert result.files == {}
    assert read_image_files([top, base], SELECT_STATUS).layers_read == 1


def test_prefix_merges_across_layers():
    top = layer(("file", "var/lib/dpkg/status.d/tzdata", b"t"))
    middle = layer(("file", "var/lib/dpkg/status.d/libc6", b"old libc"), ("whiteout", "var/lib/dpkg/status.d/gone"))
    base = layer(
        ("dir", "var/lib/dpkg/status.d"),
        ("file", "var/lib/dpkg/status.d/libc6", b"older libc"),
        ("file", "var/lib/dpkg/status.d/gone", b"g"),
        ("file", "var/lib/dpkg/status.d/base-files", b"b"),
    )
    result = read_image_files([top, middle, base], FileSelector(prefixes=("var/lib/dpkg/status.d/",)))
    assert result.files == {
        "var/lib/dpkg/status.d/tzdata": b"t",
        "var/lib/dpkg/status.d/libc6": b"old libc",
        "var/lib/dpkg/status.d/base-files": b"b",
    }
    assert result.layers_read == 3
    assert result.under("/var/lib/dpkg/status.d") == result.files


def test_a_file_replacing_a_directory_hides_the_lower_directory():
    top = layer(("file", "var/lib/dpkg/status.d", b"not a directory any more"))
    result = read_image_files([top, exploding_layer()], FileSelector(prefixes=("var/lib/dpkg/status.d/",)))
    assert result.files == {}
    assert result.layers_read == 1


def test_reading_stops_once_every_path_is_settled():
    top = layer(("file", "var/lib/dpkg/status", b"s"), ("file", "etc/os-release", DEBIAN_OS_RELEASE))
    result = read_image_files([top, exploding_layer(), exploding_layer()],
                              FileSelector(paths=("var/lib/dpkg/status", "etc/os-release")))
    assert result.files == {"var/lib/dpkg/status": b"s", "etc/os-release": DEBIAN_OS_RELEASE}
    assert result.summary() == "read 1 of 3 layers"


def test_inventory_selector_stops_at_the_top_layer_when_it_holds_everything():
    top = layer(("file", "var/lib/dpkg/status", b"s"), ("file", "usr/lib/os-release", DEBIAN_OS_RELEASE),
                ("symlink", "etc/os-release", "../usr/lib/os-release"))
    result = read_image_files([top, exploding_layer(), exploding_layer()], INVENTORY_SELECTOR)
    assert result.files["etc/os-release"] == DEBIAN_OS_RELEASE
    assert result.files["var/lib/dpkg/status"] == b"s"
    assert result.summary() == "read 1 of 3 layers"
    # What the lower layers might still hold is reported, not guessed.
    assert result.unresolved == {"lib/apk/db/installed", "var/lib/dpkg/status.d/", "var/lib/rpm/rpmdb.sqlite",
                                 "usr/lib/sysimage/rpm/rpmdb.sqlite"}


def test_inventory_selector_reads_on_until_os_release_is_found():
    top = layer(("file", "var/lib/dpkg/status", b"patched"))
    middle = layer(("file", "app/server", b"\x7fELF"))
    base = layer(("file", "var/lib/dpkg/status", b"original"), ("file", "usr/lib/os-release", DEBIAN_OS_RELEASE),
                 ("symlink", "etc/os-release", "../usr/lib/os-release"))
    result = read_image_files([top, middle, base], INVENTORY_SELECTOR)
    assert result.files["var/lib/dpkg/status"] == b"patched"
    assert result.files["etc/os-release"] == DEBIAN_OS_RELEASE
    assert result.summary() == "read 3 of 3 layers"


def test_merged_usr_image_needs_no_second_pass_for_the_missing_apk_database():
    # Debian since bookworm: lib -> usr/lib, so lib/apk/db/installed would need a pass for
    # usr/lib/apk/db/installed; the dpkg database already answers the group, so it is spared.
    top = layer(("file", "var/lib/dpkg/status", b"s"))
    base = layer(("symlink", "lib", "usr/lib"), ("file", "usr/lib/os-release", DEBIAN_OS_RELEASE),
                 ("symlink", "etc/os-release", "../usr/lib/os-release"))
    result = read_image_files([top, base], INVENTORY_SELECTOR)
    assert set(result.files) == {"var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release"}
    assert result.summary() == "read 2 of 2 layers"
    assert result.unresolved == {"lib/apk/db/installed"}


def test_an_absent_prefix_does_not_answer_its_group_so_a_linked_database_is_followed():
    # Once every layer is read, status.d/ is closed because it does not exist. Closed and empty,
    # it answers nothing: the dpkg status behind a link outside the selection must still be read.
    top = layer(("file", "etc/os-release", DEBIAN_OS_RELEASE),
                ("symlink", "var/lib/dpkg/status", "/opt/dpkg/status"))
    base = layer(("file", "opt/dpkg/status", b"Package: libc6\n"))
    result = read_image_files([top, base], INVENTORY_SELECTOR)
    assert result.files["var/lib/dpkg/status"] == b"Package: libc6\n"
    assert "var/lib/dpkg/status" not in result.unresolved


def test_an_absent_prefix_does_not_answer_its_group_on_merged_usr_alpine():
    # lib -> usr/lib: the apk database is reached through a linked parent, in another pass.
    top = layer(("file", "etc/os-release", b"ID=alpine\nVERSION_ID=3.22.0\n"),
                ("file", "usr/lib/apk/db/installed", b"P:musl\nV:1.2.5-r10\n"))
    base = layer(("symlink", "lib", "usr/lib"), ("dir", "usr/lib"))
    result = read_image_files([top, base], INVENTORY_SELECTOR)
    assert result.files["lib/apk/db/installed"] == b"P:musl\nV:1.2.5-r10\n"


def test_a_prefix_closed_empty_does_not_stop_reading_early():
    # The top layer deletes the dpkg database; the apk database of a lower layer still counts.
    top = layer(("file", "etc/os-release", b"ID=alpine\nVERSION_ID=3.20.3\n"), ("whiteout", "var/lib/dpkg"))
    base = layer(("file", "lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\n"),
                 ("file", "var/lib/dpkg/status.d/leftover", b"Package: x\n"))
    result = read_image_files([top, base], INVENTORY_SELECTOR)
    assert result.files == {"etc/os-release": b"ID=alpine\nVERSION_ID=3.20.3\n",
                            "lib/apk/db/installed": b"P:musl\nV:1.2.5-r0\n"}
    assert result.layers_read == 2


def test_a_closed_prefix_holding_files_answers_its_group():
    # An opaque status.d/ with its own files is settled: the lower layers cannot add to it.
    top = layer(("file", "etc/os-release", DEBIAN_OS_RELEASE), ("opaque", "var/lib/dpkg/status.d"),
                ("file", "var/lib/dpkg/status.d/base-files", b"Package: base-files\n"))
    result = read_image_files([top, exploding_layer()], INVENTORY_SELECTOR)
    assert result.files["var/lib/dpkg/status.d/base-files"] == b"Package: base-files\n"
    assert result.layers_read == 1


def test_absolute_symlink_is_followed_inside_the_image():
    top = layer(("symlink", "etc/os-release", "/usr/lib/os-release"))
    base = layer(("file", "usr/lib/os-release", DEBIAN_OS_RELEASE))
    result = read_image_files([top, base], FileSelector(paths=("etc/os-release", "usr/lib/os-release")))
    assert result.files == {"etc/os-release": DEBIAN_OS_RELEASE, "usr/lib/os-release": DEBIAN_OS_RELEASE}
    assert result.layer_reads == 2


def test_symlink_target_outside_the_selection_takes_another_pass():
    top = layer(("symlink", "etc/os-release", "../opt/vendor/os-release"))
    base = layer(("file", "opt/vendor/os-release", b"ID=vendor\n"))
    result = read_image_files([top, base], FileSelector(paths=("etc/os-release",)))
    assert result.files == {"etc/os-release": b"ID=vendor\n"}
    # The first pass stops at the link (nothing below can change it), the second finds the target.
    assert result.layer_reads == 3
    assert result.summary() == "read 2 of 2 layers (3 layer reads, following links)"


def test_two_links_to_the_same_unselected_target():
    top = layer(("symlink", "etc/os-release", "../opt/os-release"), ("symlink", "usr/lib/os-release", "/opt/os-release"))
    base = layer(("file", "opt/os-release", b"ID=shared\n"))
    result = read_image_files([top, base], FileSelector(paths=("etc/os-release", "usr/lib/os-release")))
    assert result.files == {"etc/os-release": b"ID=shared\n", "usr/lib/os-release": b"ID=shared\n"}


def test_symlinked_prefix_directory_is_followed():
    top = layer(("symlink", "var/lib/dpkg/status.d", "/opt/dpkg-db"))
    base = layer(("file", "opt/dpkg-db/libc6", b"Package: libc6\n"), ("file", "var/lib/dpkg/status.d/stale", b"x"))
    result = read_image_files([top, base], FileSelector(prefixes=("var/lib/dpkg/status.d/",)))
    assert result.files == {"var/lib/dpkg/status.d/libc6": b"Package: libc6\n"}


def test_symlink_target_shadowed_in_an_upper_layer_is_read_from_there():
    # The second pass must see the top layer's copy of the link target, not the base's.
    top = layer(("file", "opt/os-release", b"ID=upgraded\n"))
    middle = layer(("symlink", "etc/os-release", "../opt/os-release"))
    base = layer(("file", "opt/os-release", b"ID=original\n"))
    result = read_image_files([top, middle, base], FileSelector(paths=("etc/os-release",)))
    assert result.files == {"etc/os-release": b"ID=upgraded\n"}


def test_symlinked_parent_directory_is_followed():
    top = layer(("file", "usr/lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\n"))
    base = layer(("symlink", "lib", "usr/lib"), ("dir", "usr/lib"))
    result = read_image_files([top, base], FileSelector(paths=("lib/apk/db/installed",)))
    assert result.files == {"lib/apk/db/installed": b"P:musl\nV:1.2.4-r2\n"}


def test_dangling_symlink_means_absent():
    top = layer(("symlink", "etc/os-release", "../usr/lib/os-release"))
    base = layer(("file", "etc/hostname", b"x"))
    result = read_image_files([top, base], FileSelector(paths=("etc/os-release", "usr/lib/os-release")))
    assert result.files == {}


def test_symlink_loop_is_an_error():
    top = layer(("symlink", "etc/a", "b"), ("symlink", "etc/b", "a"))
    with pytest.raises(LayerError, match="too many levels of symbolic links"):
        read_image_files([top], FileSelector(paths=("etc/a", "etc/b")))


def test_hardlink_gets_its_targets_content():
    only = layer(("file", "usr/share/base-files/os-release", DEBIAN_OS_RELEASE),
                 ("hardlink", "etc/os-release", "usr/share/base-files/os-release"))
    result = read_image_files([only], FileSelector(paths=("etc/os-release",)))
    assert result.files == {"etc/os-release": DEBIAN_OS_RELEASE}
    assert result.layer_reads == 2  # the target went by unkept, so the layer is read again


def test_hardlink_to_a_wanted_file_needs_no_second_read():
    only = layer(("file", "usr/lib/os-release", DEBIAN_OS_RELEASE), ("hardlink", "etc/os-release", "usr/lib/os-release"))
    result = read_image_files([only], FileSelector(paths=("etc/os-release", "usr/lib/os-release")))
    assert result.files["etc/os-release"] == DEBIAN_OS_RELEASE
    assert result.layer_reads == 1


def test_dot_slash_names_and_plain_tar_layers():
    only = layer(("dir", "./"), ("file", "./var/lib/dpkg/status", b"s"), plain=True)
    assert read_image_files([only], SELECT_STATUS).files == {"var/lib/dpkg/status": b"s"}


def test_no_layers_means_no_files():
    result = read_image_files([], INVENTORY_SELECTOR)
    assert (result.files, result.layers_read, result.layers_total) == ({}, 0, 0)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (("file", "../etc/passwd", b"x"), "'..' component"),
        (("file", "var/../../etc/passwd", b"x"), "'..' component"),
        (("file", "/etc/passwd", b"x"), "absolute path"),
        (("symlink", "etc/escape", "../../../etc/shadow"), "leaves the image root"),
        (("hardlink", "etc/escape", "../etc/shadow"), "'..' component"),
        (("hardlink", "etc/escape", "/etc/shadow"), "absolute path"),
    ],
)
def test_unsafe_entries_fail_the_read_naming_layer_and_entry(entry, problem):
    # The unsafe entry is not among the wanted files: the whole layer is refused anyway.
    bad = layer(("file", "var/lib/dpkg/status", b"s"), entry)
    with pytest.raises(LayerError) as caught:
        read_image_files([bad], SELECT_STATUS)
    message = str(caught.value)
    assert bad.digest in message
    assert repr(entry[1]) in message
    assert problem in message


def test_truncated_gzip_layer():
    data = tar_bytes(("file", "var/lib/dpkg/status", b"s" * 50_000), gzip_it=True)
    broken = layer_of(data[: len(data) // 2])
    with pytest.raises(LayerError, match=f"layer {broken.digest} is truncated or corrupt"):
        read_image_files([broken], SELECT_STATUS)


def test_gzip_with_a_bad_checksum():
    data = bytearray(tar_bytes(("file", "var/lib/dpkg/status", b"s"), gzip_it=True))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    broken = layer_of(bytes(data))
    with pytest.raises(LayerError, match=f"layer {broken.digest} is truncated or corrupt"):
        read_image_files([broken], SELECT_STATUS)


@pytest.mark.parametrize("cut", [512 + 100, 512 + 512, 3 * 512 + 7])
def test_truncated_plain_tar_layer(cut):
    data = tar_bytes(("file", "etc/hostname", b"h" * 400), ("file", "var/lib/dpkg/status", b"s" * 700))
    broken = layer_of(data[:cut])
    with pytest.raises(LayerError, match=f"layer {broken.digest} is truncated"):
        read_image_files([broken], SELECT_STATUS)


def test_garbled_header_in_the_middle_is_not_taken_for_the_end():
    data = bytearray(tar_bytes(("file", "etc/hostname", b"h" * 10), ("file", "var/lib/dpkg/status", b"s")))
    data[1024:1536] = b"\x55" * 512  # the second member's header
    broken = layer_of(bytes(data))
    with pytest.raises(LayerError, match=f"layer {broken.digest} is corrupt"):
        read_image_files([broken], SELECT_STATUS)


def test_empty_stream_is_corrupt():
    with pytest.raises(LayerError, match="truncated or corrupt"):
        read_image_files([layer_of(b"")], SELECT_STATUS)


def test_zstd_layer_without_the_zstandard_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if it were not installed
    zstd = layer_of(b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
    with pytest.raises(LayerError, match=f"layer {zstd.digest}: unsupported compression zstd"):
        read_image_files([zstd], SELECT_STATUS)


def test_bzip2_layer_is_unsupported():
    bz = layer_of(b"BZh91AY&SY" + b"\x00" * 64)
    with pytest.raises(LayerError, match="unsupported compression bzip2"):
        read_image_files([bz], SELECT_STATUS)


def test_oversized_wanted_file_is_refused():
    big = layer(("file", "var/lib/dpkg/status", b"x" * 2048))
    with pytest.raises(LayerError, match="var/lib/dpkg/status is 2048 bytes, more than the 1024-byte limit"):
        read_image_files([big], SELECT_STATUS, max_file_size=1024)


def test_selector_rejects_an_enough_group_naming_something_unselected():
    with pytest.raises(ValueError, match="not selected"):
        FileSelector(paths=("etc/os-release",), enough=(("usr/lib/os-release",),))


# --- registry layers are read once per process ----------------------------------------------------


def counted_layer(*entries: tuple, opened: list[str]) -> Layer:
    """A layer whose stream checks its digest, as a registry blob's does; each open is counted."""
    data = tar_bytes(*entries, gzip_it=True)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    def open_it():
        opened.append(digest)
        return io.BytesIO(data)

    return Layer(digest, open_it, verified=True)


def test_a_base_layer_is_read_once_for_every_image_built_on_it():
    opened: list[str] = []
    base = counted_layer(("file", "etc/os-release", DEBIAN_OS_RELEASE), ("file", "var/lib/dpkg/status", b"base"),
                         opened=opened)
    plain_app = counted_layer(("file", "srv/app/index.html", b"<p>"), opened=opened)
    upgraded_app = counted_layer(("file", "var/lib/dpkg/status", b"upgraded"), opened=opened)
    hiding_app = counted_layer(("whiteout", "etc/os-release"), opened=opened)

    assert read_image_files([plain_app, base], INVENTORY_SELECTOR).files == {
        "etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": b"base"}
    # The base's remembered entries still lose to the layers above them, image by image.
    assert read_image_files([upgraded_app, base], INVENTORY_SELECTOR).files == {
        "etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": b"upgraded"}
    assert read_image_files([hiding_app, base], INVENTORY_SELECTOR).files == {"var/lib/dpkg/status": b"base"}
    assert read_image_files([plain_app, base], INVENTORY_SELECTOR).files["var/lib/dpkg/status"] == b"base"

    assert opened.count(base.digest) == 1
    assert opened.count(plain_app.digest) == 1


def test_a_layer_is_read_again_for_another_selection_or_when_its_stream_is_not_checked():
    opened: list[str] = []
    checked = counted_layer(("file", "var/lib/dpkg/status", b"ok"), ("file", "etc/os-release", DEBIAN_OS_RELEASE),
                            opened=opened)
    read_image_files([checked], SELECT_STATUS)
    assert read_image_files([checked], FileSelector(paths=("etc/os-release",))).files == {
        "etc/os-release": DEBIAN_OS_RELEASE}
    assert opened.count(checked.digest) == 2

    unchecked = Layer(checked.digest, checked.open)  # a local layer: its name is not a checked digest
    read_image_files([unchecked], SELECT_STATUS)
    read_image_files([unchecked], SELECT_STATUS)
    assert opened.count(checked.digest) == 4


def test_a_layer_that_fails_its_read_is_not_remembered():
    opened: list[str] = []
    good = tar_bytes(("file", "var/lib/dpkg/status", b"ok"), gzip_it=True)
    broken = Layer("sha256:" + "b" * 64, lambda: opened.append("b") or io.BytesIO(good[:-20]), verified=True)
    for _ in range(2):
        with pytest.raises(LayerError, match="truncated or corrupt"):
            read_image_files([broken], SELECT_STATUS)
    assert opened == ["b", "b"]


def test_the_memory_keeps_the_most_recent_layers_within_its_budget():
    from patchpipe.images.layers import _Changes, _Entry, _Kind, _LayerMemory

    def changes(size: int) -> _Changes:
        return _Changes(entries={"var/lib/dpkg/status": _Entry(_Kind.FILE, content=b"x" * size)})

    memory = _LayerMemory(budget=100)
    memory.put(("a",), changes(40))
    memory.put(("b",), changes(40))
    memory.get(("a",))  # used: "b" is now the oldest
    memory.put(("c",), changes(40))
    memory.put(("huge",), changes(101))  # larger than the whole budget: never kept
    assert [key for (key,) in memory.held] == ["a", "c"]


# --- unpacked layers (overlay2 directories, which images/local.py reads when it can) -------------


def unpacked(directory, *entries: tuple) -> UnpackedLayer:
    """``entries`` as ``tar_bytes`` takes them, written into ``directory`` the way overlay2 stores a
    layer: a whiteout is a character device 0/0, an opaque directory has trusted.overlay.opaque=y.
    Skips the test where this machine does not allow those (mknod and trusted xattrs need root)."""
    directory.mkdir(parents=True)
    for kind, name, *rest in entries:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(rest[0])
        elif kind == "dir":
            path.mkdir(exist_ok=True)
        elif kind == "symlink":
            path.symlink_to(rest[0])
        elif kind == "whiteout":
            try:
                os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            except PermissionError:
                pytest.skip("creating an overlay whiteout (a character device) needs root")
        elif kind == "opaque":
            path.mkdir(exist_ok=True)
            try:
                os.setxattr(path, "trusted.overlay.opaque", b"y")
            except OSError:
                pytest.skip("setting a trusted.* extended attribute needs root")
    return UnpackedLayer("sha256:" + hashlib.sha256(str(directory).encode()).hexdigest(), str(directory))


OVERLAY_CASES = {
    "upper status shadows lower": [
        [("file", "var/lib/dpkg/status", b"new")],
        [("file", "var/lib/dpkg/status", b"old"), ("file", "usr/lib/os-release", DEBIAN_OS_RELEASE),
         ("symlink", "etc/os-release", "../usr/lib/os-release"), ("symlink", "lib", "usr/lib")],
    ],
    "blob layers above the database": [
        [("file", "opt/blob2", b"\x00" * 4096)],
        [("file", "opt/blob1", b"\x01" * 4096)],
        [("file", "var/lib/dpkg/status", b"s"), ("file", "etc/os-release", DEBIAN_OS_RELEASE)],
    ],
    "distroless status.d across layers": [
        [("file", "var/lib/dpkg/status.d/tzdata", b"t"), ("dir", "var/lib/dpkg/status.d/sub")],
        [("file", "var/lib/dpkg/status.d/libc6", b"l"), ("file", "etc/os-release", DEBIAN_OS_RELEASE)],
    ],
    "whiteout of a file and of a directory": [
        [("whiteout", "var/lib/dpkg/status.d"), ("whiteout", "etc/os-release"), ("file", "usr/lib/os-release", b"ID=x\n")],
        [("file", "var/lib/dpkg/status.d/libc6", b"l"), ("file", "var/lib/dpkg/status", b"s"),
         ("file", "etc/os-release", DEBIAN_OS_RELEASE)],
    ],
    "opaque directory": [
        [("opaque", "var/lib/dpkg"), ("file", "var/lib/dpkg/status.d/new", b"n"), ("file", "etc/os-release", b"ID=y\n")],
        [("file", "var/lib/dpkg/status", b"s"), ("file", "var/lib/dpkg/status.d/old", b"o")],
    ],
    "linked database outside the selection": [
        [("symlink", "var/lib/dpkg", "/opt/dpkg"), ("file", "etc/os-release", DEBIAN_OS_RELEASE)],
        [("file", "opt/dpkg/status", b"moved"), ("file", "var/lib/dpkg/status", b"hidden")],
    ],
}


@pytest.mark.parametrize("case", OVERLAY_CASES)
def test_unpacked_layers_read_like_their_tar_layers(tmp_path, case):
    layers = OVERLAY_CASES[case]
    from_tars = read_image_files([layer(*entries) for entries in layers], INVENTORY_SELECTOR)
    dirs = [unpacked(tmp_path / f"layer{n}", *entries) for n, entries in enumerate(layers)]
    from_dirs = read_image_files(dirs, INVENTORY_SELECTOR)
    assert from_dirs.files == from_tars.files
    assert from_dirs.unresolved == from_tars.unresolved
    assert (from_dirs.layers_read, from_dirs.layer_reads) == (from_tars.layers_read, from_tars.layer_reads)


def test_unpacked_layer_never_follows_a_link_on_the_host(tmp_path):
    # In the image, var/lib/dpkg -> <tmp>/host means a path inside the image, not this machine's.
    host = tmp_path / "host"
    host.mkdir()
    (host / "status").write_bytes(b"Package: from-the-host\n")
    top = unpacked(tmp_path / "top", ("symlink", "var/lib/dpkg", str(host)), ("file", "etc/os-release", DEBIAN_OS_RELEASE))
    result = read_image_files([top], INVENTORY_SELECTOR)
    assert "var/lib/dpkg/status" not in result.files


def test_unpacked_layer_refuses_a_link_leaving_the_image_root(tmp_path):
    top = unpacked(tmp_path / "top", ("symlink", "etc/os-release", "../../../etc/shadow"))
    with pytest.raises(LayerError, match="leaves the image root"):
        read_image_files([top], FileSelector(paths=("etc/os-release",)))


def test_unpacked_layer_that_is_gone(tmp_path):
    gone = UnpackedLayer("sha256:" + "0" * 64, str(tmp_path / "removed-meanwhile"))
    with pytest.raises(LayerError, match=f"layer {gone.digest}: cannot read its directory"):
        read_image_files([gone], SELECT_STATUS)


# --- docker save archives (images/local.py reads these from the Docker Engine) -----------------


def _archive(members: dict[str, bytes | str]) -> tarfile.TarFile:
    """A random-access tar of ``members``; a str value makes a symbolic link."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r:")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_docker_save_legacy_layout():
    base = tar_bytes(("file", "var/lib/dpkg/status", b"base"), ("file", "etc/os-release", DEBIAN_OS_RELEASE))
    top = tar_bytes(("file", "var/lib/dpkg/status", b"top"))
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [_digest(base), _digest(top), _digest(base)]}}).encode()
    archive = _archive({
        "aaa/layer.tar": base,
        "bbb/layer.tar": top,
        "ccc/layer.tar": "../aaa/layer.tar",  # docker links a repeated layer to its first copy
        "cfg.json": config,
        "manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"],
                                      "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"]}]).encode(),
    })
    layers = saved_layers(archive, "x:1")
    assert [lyr.digest for lyr in layers] == [_digest(base), _digest(top), _digest(base)]
    result = read_image_files(layers, FileSelector(paths=("var/lib/dpkg/status", "etc/os-release")))
    # The repeated base layer sits on top, so its status wins over the middle layer's.
    assert result.files == {"var/lib/dpkg/status": b"base", "etc/os-release": DEBIAN_OS_RELEASE}
    assert result.layers_read == 1


def test_docker_save_oci_layout():
    base = tar_bytes(("file", "var/lib/dpkg/status", b"base"), gzip_it=True)
    top = tar_bytes(("whiteout", "var/lib/dpkg/status"), ("file", "lib/apk/db/installed", b"P:x\nV:1\n"))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(base), "size": len(base)},
                   {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(top), "size": len(top)}],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest), "size": len(manifest)}]})
    archive = _archive({
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": index.encode(),
        f"blobs/sha256/{_digest(manifest)[7:]}": manifest,
        f"blobs/sha256/{_digest(base)[7:]}": base,
        f"blobs/sha256/{_digest(top)[7:]}": top,
        f"blobs/sha256/{_digest(b'{}')[7:]}": b"{}",
    })
    layers = saved_layers(archive, "y:2")
    assert [lyr.digest for lyr in layers] == [_digest(top), _digest(base)]
    result = read_image_files(layers, FileSelector(paths=("var/lib/dpkg/status", "lib/apk/db/installed")))
    assert result.files == {"lib/apk/db/installed": b"P:x\nV:1\n"}


def test_docker_save_listing_a_missing_layer():
    archive = _archive({"manifest.json": json.dumps([{"Config": "c.json", "Layers": ["nope/layer.tar"]}]).encode(),
                        "c.json": b"{}"})
    with pytest.raises(LayerError, match="docker save of z:3 lists layer nope/layer.tar but holds no such entry"):
        saved_layers(archive, "z:3")
