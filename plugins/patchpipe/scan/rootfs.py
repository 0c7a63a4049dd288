"""Read an unpacked root filesystem (a debootstrap or ``docker export`` tree, a mounted image) the way
the image reader reads layers: the same selector, the same inventory.

Paths are resolved inside the root as if it were ``/``: an absolute symbolic link such as
``etc/os-release -> /usr/lib/os-release`` leads to ``DIR/usr/lib/os-release``, never to the host's
file, and a link that climbs out of the root is refused, as it is in a layer. Only regular files are
read, so a FIFO or device planted at a database path cannot hang or feed the reader.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from patchpipe.errors import PatchpipeError
from patchpipe.images.layers import MAX_FILE_SIZE, FileSelector
from patchpipe.packages.inventory import INVENTORY_SELECTOR, Inventory, inventory_from_files

__all__ = ["read_rootfs_files", "inventory_rootfs"]

_MAX_LINK_HOPS = 40


def inventory_rootfs(root: str | os.PathLike) -> Inventory:
    """The inventory of the root filesystem unpacked at ``root``."""
    return inventory_from_files(read_rootfs_files(root, INVENTORY_SELECTOR), f"rootfs {root}")


def read_rootfs_files(root: str | os.PathLike, selector: FileSelector,
                      max_file_size: int = MAX_FILE_SIZE) -> dict[str, bytes]:
    """The files ``selector`` names that exist under ``root`` as regular files (links followed inside
    the root), keyed like ImageFiles.files; files directly below a prefix appear under their full path."""
    base = _root(root)
    reader = _Reader(base, str(root), max_file_size)
    files = {}
    for path in selector.paths:
        content = reader.read(path)
        if content is not None:
            files[path] = content
    for prefix in selector.prefixes:
        for name in reader.list(prefix):
            content = reader.read(prefix + name)
            if content is not None:
                files[prefix + name] = content
    return files


def _root(root: str | os.PathLike) -> Path:
    try:
        if not stat.S_ISDIR(os.stat(root).st_mode):
            raise PatchpipeError(f"rootfs {root} is not a directory")
        os.listdir(root)
    except FileNotFoundError:
        raise PatchpipeError(f"rootfs {root} does not exist") from None
    except PermissionError:
        raise PatchpipeError(f"rootfs {root} is not readable (permission denied)") from None
    except OSError as error:
        raise PatchpipeError(f"rootfs {root} is not readable: {error.strerror or error}") from None
    return Path(root).resolve()


class _Reader:
    def __init__(self, base: Path, shown: str, max_file_size: int):
        self.base = base
        self.shown = shown  # the root as the user wrote it, for messages
        self.max_file_size = max_file_size

    def read(self, path: str) -> bytes | None:
        """The content of the regular file at image path ``path``; None when there is none."""
        real = self._resolve(path)
        if real is None:
            return None
        try:
            with open(real, "rb", opener=_no_follow_opener) as stream:
                info = os.fstat(stream.fileno())
                if not stat.S_ISREG(info.st_mode):
                    return None
                if info.st_size > self.max_file_size:
                    raise PatchpipeError(f"rootfs {self.shown}: /{path} is {info.st_size} bytes, "
                                         f"more than the {self.max_file_size}-byte limit")
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ENXIO, errno.ELOOP):  # a socket, or a link swapped in meanwhile
                return None
            raise PatchpipeError(f"rootfs {self.shown}: cannot read /{path}: {error.strerror or error}") from None

    def list(self, prefix: str) -> list[str]:
        """The names directly inside the directory ``prefix`` (image path ending in ``/``)."""
        real = self._resolve(prefix.rstrip("/"))
        if real is None or not real.is_dir():
            return []
        try:
            return sorted(os.listdir(real))
        except OSError as error:
            raise PatchpipeError(f"rootfs {self.shown}: cannot list /{prefix}: {error.strerror or error}") from None

    def _resolve(self, path: str) -> Path | None:
        """The host path of image path ``path`` with every link resolved inside the root; None when a
        component is missing or not a directory."""
        done: list[str] = []
        todo = [p for p in path.split("/") if p]
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if not done:
                    raise PatchpipeError(f"rootfs {self.shown}: resolving /{path} leaves the root through '..'")
                done.pop()
                continue
            candidate = self.base.joinpath(*done, part)
            try:
                info = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as error:
                raise PatchpipeError(f"rootfs {self.shown}: cannot read /{'/'.join([*done, part])}: "
                                     f"{error.strerror or error}") from None
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise PatchpipeError(f"rootfs {self.shown}: too many levels of symbolic links resolving /{path}")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            if todo and not stat.S_ISDIR(info.st_mode):
                return None
            done.append(part)
        return self.base.joinpath(*done)


def _no_follow_opener(path: str, flags: int) -> int:
    # The path was resolved link by link; O_NOFOLLOW keeps a link swapped in since from leading out,
    # and O_NONBLOCK keeps a FIFO from blocking the open (it is then refused as not a regular file).
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
