"""Segmented download of one large file: several Range requests at once, each written at its offset.

The part file is preallocated and split into more pieces than connections; connections take pieces in
order, so the start of the file completes first, and the md5 follows it: each piece is read back (from
the page cache) and hashed as soon as every piece before it is complete, while later pieces still
download. A sidecar ``<part>.segments`` (JSON) records each piece's bytes done, written only after the
part is fsynced, so after a crash every piece resumes from bytes known to be on disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from asyncdl.fsutil import HASH_BLOCK, remove_symlink, translate_os_error, write_fresh
from asyncdl.store import sidecar
from asyncdl.store.names import sidecar_of

CHECKPOINT_BYTES = 32 * 1024 * 1024


class SegmentsUnsupported(Exception):
    """The server answered a segment's Range request with a 200: fall back to one stream."""


@dataclass
class Segment:
    start: int
    end: int  # exclusive
    done: int = 0

    @property
    def next_byte(self) -> int:
        return self.start + self.done

    @property
    def complete(self) -> bool:
        return self.next_byte >= self.end


class SegmentedPart:
    """A preallocated part file written at offsets, with its durable progress sidecar."""

    def __init__(self, path: Path, size: int, count: int) -> None:
        self.path = path
        self.sidecar = sidecar_of(path)
        self.size = size
        self.segments = split(size, count)
        self.digest = hashlib.md5()
        self._fd = -1
        self._since_checkpoint = 0
        self._lock = threading.Lock()  # segments write from several threads; one checkpoint at a time

    def open(self) -> None:
        """Create or reopen the part; resume from the sidecar when it matches (blocking)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_symlink(self.path)
        remove_symlink(self.sidecar)
        saved = load_sidecar(self.sidecar, self.size)
        if saved is not None and self.path.exists():
            self.segments = saved
        else:
            self.sidecar.unlink(missing_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
        self._fd = os.open(self.path, flags, 0o644)
        if os.fstat(self._fd).st_size != self.size:
            os.ftruncate(self._fd, self.size)
        self.checkpoint()

    def write(self, segment: Segment, chunk: bytes) -> None:
        """Write a chunk at the segment's next byte (blocking)."""
        try:
            os.pwrite(self._fd, chunk, segment.next_byte)
        except OSError as exc:
            raise translate_os_error(exc, self.path) from exc
        segment.done += len(chunk)
        self._since_checkpoint += len(chunk)
        if self._since_checkpoint >= CHECKPOINT_BYTES:
            self.checkpoint()

    def checkpoint(self) -> None:
        """fsync the part, then record progress (so the sidecar never claims bytes not on disk)."""
        with self._lock:
            if self._fd < 0:
                return
            done = [s.done for s in self.segments]  # read before the fsync: all of it is then on disk
            os.fsync(self._fd)
            pieces = [(s.start, s.end, d) for s, d in zip(self.segments, done, strict=True)]
            temporary = self.sidecar.with_name(self.sidecar.name + ".tmp")
            write_fresh(temporary, sidecar.render(self.size, pieces))
            os.replace(temporary, self.sidecar)
            self._since_checkpoint = 0

    def hash_piece(self, segment: Segment) -> None:
        """Feed a complete piece to the md5, in file order (blocking: read back from the page cache)."""
        position = segment.start
        while position < segment.end:
            block = os.pread(self._fd, min(HASH_BLOCK, segment.end - position), position)
            if not block:
                raise OSError(f"{self.path} ends before byte {segment.end}")
            self.digest.update(block)
            position += len(block)

    @property
    def received(self) -> int:
        return sum(s.done for s in self.segments)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.checkpoint()
            finally:
                os.close(self._fd)
                self._fd = -1

    def finish(self) -> None:
        """The part is complete: drop the sidecar (blocking)."""
        self.close()
        self.sidecar.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def split(size: int, count: int) -> list[Segment]:
    """``count`` contiguous segments covering ``[0, size)`` (none for an empty file)."""
    if size <= 0:
        return []
    count = max(1, min(count, size))
    step = -(-size // count)
    return [Segment(start, min(size, start + step)) for start in range(0, size, step)]


def load_sidecar(path: Path, size: int) -> list[Segment] | None:
    """Segments saved by an earlier run, if the sidecar is usable and for this size (a sidecar of an unknown
    version raises FormatError)."""
    pieces = sidecar.read(path, size)
    return None if pieces is None else [Segment(start, end, done) for start, end, done in pieces]
