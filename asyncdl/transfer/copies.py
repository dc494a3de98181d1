"""Files fetched once per mirror: a planned file that is the same stored file as another is linked, not fetched.

Two planned files are the same stored file when they have the same file id (legacy ``files[].id``, native
``entries[key].file_id``) or the same md5 and size: a new version of a record keeps its earlier version's
files, and a record may hold one file under two names. The first planned is fetched (its *source*); each
other waits until the source is verified under its final name, then gets its bytes from it by a hard link
(else a reflink copy, else a copy, checked against the record's checksum), into its part, committed like a
download. A source finished in an earlier run, or by another shard of DEST, is found in the journals; if a
source fails or has changed since, the file is fetched after all.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from asyncdl.digests import HASH_BLOCK, Check
from asyncdl.events import Event, FileFinished
from asyncdl.fsutil import open_fresh
from asyncdl.models import FileEntry
from asyncdl.plan import PlannedFile

RECENT = 50_000  # sources that arrived, kept in memory until the journal surely has them (then looked up there)
FICLONE = 0x40049409  # Linux's ioctl for a reflink copy (btrfs, XFS, bcachefs): shares the blocks


@dataclass
class Source:
    """The copy a planned file gets its bytes from: ``arrived`` is set once it is final (``ok``: verified).
    ``mtime``: for a copy finished before this run, the mtime it was finished with (else it changed)."""

    path: str
    arrived: anyio.Event = field(default_factory=anyio.Event)
    ok: bool = False
    mtime: float | None = None

    @classmethod
    def finished(cls, path: str, mtime: float | None = None) -> Source:
        source = cls(path, ok=True, mtime=mtime)
        source.arrived.set()
        return source


@dataclass(frozen=True)
class LinkedFile:
    """A planned file to take from ``source`` instead of fetching it."""

    planned: PlannedFile
    source: Source


def identities(entry: FileEntry) -> tuple[str, ...]:
    """The names under which a stored file is known: its file id, its md5 and size (either may be missing)."""
    names = []
    if entry.file_id:
        names.append(f"id:{entry.file_id}")
    if entry.md5 and entry.size is not None:
        names.append(f"md5:{entry.md5}:{entry.size}")
    return tuple(names)


FindFinished = Callable[[PlannedFile], Source | None]


class Copies:
    """Which planned file is the source of each stored file; an event sink that learns when sources arrive.

    ``find_finished`` looks a file up among the files finished before (the journals)."""

    def __init__(self, find_finished: FindFinished) -> None:
        self._find_finished = find_finished
        self._waiting: dict[str, Source] = {}  # identity -> a source planned in this run, not arrived yet
        self._by_path: dict[str, tuple[Source, tuple[str, ...]]] = {}
        self._arrived: OrderedDict[str, Source] = OrderedDict()  # identity -> a source verified in this run

    def source_of(self, item: PlannedFile) -> Source | None:
        """The source ``item`` should be linked from; None when it is to be fetched (it becomes the source)."""
        names = identities(item.entry)
        if not names:
            return None
        for name in names:
            known = self._waiting.get(name) or self._arrived.get(name)
            if known is not None and known.path != item.path:
                return known
        earlier = self._find_finished(item)
        if earlier is not None:
            return earlier
        source = Source(item.path)
        for name in names:
            self._waiting[name] = source
        self._by_path[item.path] = (source, names)
        return None

    def give_up(self) -> None:
        """The run stops: every file waiting for a source planned in this run stops waiting (not ok)."""
        for source, _ in self._by_path.values():
            source.arrived.set()

    def emit(self, event: Event) -> None:
        if not isinstance(event, FileFinished) or event.path not in self._by_path:
            return
        source, names = self._by_path.pop(event.path)
        source.ok = event.outcome in ("ok", "skipped", "linked")
        for name in names:
            if self._waiting.get(name) is source:
                del self._waiting[name]
            if source.ok:
                self._arrived[name] = source  # a new name: the newest (the source it had is gone)
        while len(self._arrived) > RECENT:
            self._arrived.popitem(last=False)
        source.arrived.set()


def make_copy(origin: Path, part: Path, entry: FileEntry, mtime: float | None) -> str | None:
    """Give ``part`` the bytes of ``origin`` (blocking): "hard link", "reflink copy" or "copy" (checked
    against the record's checksum); None when ``origin`` is not the record's file (gone, another size, changed
    since ``mtime``, another checksum)."""
    try:
        info = origin.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size or (mtime is not None and info.st_mtime != mtime):
        return None
    part.parent.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    try:
        os.link(origin, part, follow_symlinks=False)
        return "hard link"
    except OSError:
        pass  # another file system, or one without hard links
    with origin.open("rb") as source, open_fresh(part) as target:
        try:
            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
            return "reflink copy"
        except OSError:
            pass  # no reflinks here (most file systems): the bytes are copied
        digest = Check(entry.checksum).new()
        while block := source.read(HASH_BLOCK):
            digest.update(block)
            target.write(block)
    if digest.problem() is not None:
        part.unlink()
        return None
    return "copy"
