"""File-system helpers: safe targets under DEST, durable renames, files of asyncdl's own."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from asyncdl.errors import UnsafePathError
from asyncdl.store.names import RESERVED_AT_TOP, STATE_DIR


class SafeTargets:
    """Absolute paths inside ``dest`` for sanitised relative paths; nothing ever resolves outside it.

    Refuses absolute paths, '..', symlinks planted in ``dest`` that point out of it (a link inside
    that stays inside is allowed) or into its ``.asyncdl``, and asyncdl's own names at the top
    (``.asyncdl``, ``manifest.csv``). Folders already checked are remembered, so a run of many files
    in few folders costs a few system calls, not a path resolution per file.
    """

    def __init__(self, dest: Path) -> None:
        self.root = dest.resolve()
        self._checked: set[Path] = {self.root}

    def target(self, relative: str) -> Path:
        parts = relative.split("/")
        if relative.startswith("/") or ".." in parts:
            raise UnsafePathError(f"refusing path {relative!r}: it would leave {self.root}")
        if "" in parts or "." in parts:  # names no file under DEST (the root itself, among them)
            raise UnsafePathError(f"refusing path {relative!r}: it is not a file's path under {self.root}")
        if parts[0].casefold() in RESERVED_AT_TOP:
            raise UnsafePathError(f"refusing path {relative!r}: {parts[0]} in {self.root} is asyncdl's own")
        target = self.root.joinpath(*parts)
        if target.parent not in self._checked:
            self._check_folder(relative, target.parent)
        return target

    def _check_folder(self, relative: str, folder: Path) -> None:
        probe = self.root
        for part in folder.relative_to(self.root).parts:
            probe = probe / part
            if probe.is_symlink() and not _within(probe.resolve(), self.root):
                raise UnsafePathError(f"refusing {relative!r}: {probe} is a symlink out of {self.root}")
        resolved = folder.resolve()
        if not _within(resolved, self.root):
            raise UnsafePathError(f"refusing {relative!r}: it resolves outside {self.root}")
        if _within(resolved, self.root / STATE_DIR):
            raise UnsafePathError(f"refusing {relative!r}: it resolves into asyncdl's state folder {STATE_DIR}")
        if folder.is_dir():  # remember only what exists: a folder made later is checked again
            self._checked.add(folder)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def commit(part: Path, final: Path) -> None:
    """Make ``part`` durable, then atomically give it its final name (and make the rename durable)."""
    durable_rename(part, final)
    fsync_dir(final.parent)


def durable_rename(part: Path, final: Path) -> None:
    """fsync ``part``, then rename it over ``final`` (a link planted there is replaced, never followed); the
    folder's fsync is the caller's (a batch of renames in one folder needs only one)."""
    with open(part, "rb+") as stream:
        os.fsync(stream.fileno())
    os.replace(part, final)  # rename(2) replaces a symlink at ``final`` itself: it is never followed


def move_within(targets: SafeTargets, old: str, new: str) -> bool:
    """Rename the file at ``old`` to ``new`` (both relative to DEST, both through ``targets``), made durable,
    and remove the folders the move left empty. False, and nothing changed, when ``old`` is not a plain
    file, something is at ``new`` already, or the file system cannot rename between them (another device)."""
    source, target = targets.target(old), targets.target(new)
    if source.is_symlink() or not source.is_file() or os.path.lexists(target):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError:
        return False
    fsync_dir(target.parent)
    fsync_dir(source.parent)
    folder = source.parent
    while folder != targets.root and targets.root in folder.parents:
        try:
            folder.rmdir()  # only an empty folder goes
        except OSError:
            break
        folder = folder.parent
    return True


def fsync_dir(folder: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_unowned(path: Path) -> None:
    """Where asyncdl keeps a file of its own (a part, a sidecar), a symlink, or a file that has other names
    too (a hard link, as a killed link of a file fetched once leaves), is removed: never followed, never
    written into (that would change the other names' bytes)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
        path.unlink()


def fresh_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An ``opener`` for open() that makes a new file and never follows a symlink (the caller removed what
    was there; anything planted since makes the open fail)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)


def open_fresh(path: Path) -> BinaryIO:
    """A new file at ``path`` opened for writing; whatever was there (a planted symlink too) is replaced, not
    followed (blocking)."""
    path.unlink(missing_ok=True)
    return open(path, "wb", opener=fresh_opener)


def write_fresh(path: Path, text: str) -> None:
    """Write ``text`` to a new file at ``path``; whatever was there (a planted symlink too) is replaced, not
    followed (blocking)."""
    with open_fresh(path) as stream:
        stream.write(text.encode("utf-8"))
