"""One large file in segments: several Range requests at once, each written at its offset.

The part file is preallocated and cut into ``segments`` x PIECES_PER_SEGMENT pieces; ``segments``
connections take the pieces in file order, so the start of the file completes first, and the record's
checksum (any kind: it is fed in file order) follows it: each piece is read back (from the page cache) and
hashed, in a hashing thread beside the writer thread, as soon as every piece before it is on disk, while
later pieces still download. Until the host has answered a Range request with a good 206, one connection
goes alone: a server that ignores Range costs one request, not one per connection. With ``--segments
auto`` the first connection goes on the file's own download slot, and each other one fetches a piece only on
a slot the run has free (no other file waits for it), so a large file alone at the end of a mirror takes
every slot, and one among many takes none but its own. A sidecar
``<part>.segments`` records each piece's bytes written, only after the part is fsynced (every
``checkpoint_bytes`` and at the end), so after a crash every piece resumes from bytes known to be on disk.
"""

from __future__ import annotations

import collections
import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import anyio

from asyncdl.digests import HASH_BLOCK, Check
from asyncdl.errors import AsyncdlError, NotFoundError, ShortBodyError, TransportError, translate_os_error, unwrap
from asyncdl.events import FileAdvanced, FileStarted
from asyncdl.fsutil import remove_unowned, write_fresh
from asyncdl.plan import PlannedFile
from asyncdl.redact import redact
from asyncdl.store import sidecar
from asyncdl.store.names import sidecar_of
from asyncdl.transfer.ceiling import PIECES_PER_SEGMENT, RequestCeiling
from asyncdl.transfer.context import Context
from asyncdl.transfer.ranges import check_content_range
from asyncdl.transfer.single import PIPELINE_DEPTH
from asyncdl.transfer.writer import DiskWriter

SLOT_POLL = 0.2  # seconds an extra connection of --segments auto waits before it looks for a free slot again


class SegmentsUnsupported(Exception):
    """The server answered a segment's Range request with a 200 on every URL: fall back to one stream."""


@dataclass
class Segment:
    start: int
    end: int  # exclusive
    done: int = 0  # bytes handed to the writer

    @property
    def next_byte(self) -> int:
        return self.start + self.done

    @property
    def complete(self) -> bool:
        return self.next_byte >= self.end


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


class SegmentedPart:
    """A preallocated part file written at offsets, with its durable progress sidecar. Everything but
    ``open`` runs in the download's writer thread, in order."""

    def __init__(self, path: Path, size: int, count: int, check: Check) -> None:
        self.path = path
        self.sidecar = sidecar_of(path)
        self.size = size
        self.segments = split(size, count)
        self.written = [0] * len(self.segments)  # bytes on disk (the writer thread's count)
        self.digest = check.new()
        self._fd = -1

    def open(self) -> None:
        """Create or reopen the part; resume from the sidecar when it matches (blocking)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_unowned(self.path)
        remove_unowned(self.sidecar)
        saved = load_sidecar(self.sidecar, self.size)
        if saved is not None and self.path.exists():
            self.segments = saved
            self.written = [s.done for s in saved]
        else:
            self.sidecar.unlink(missing_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        if os.fstat(self._fd).st_size != self.size:
            os.ftruncate(self._fd, self.size)
        self.checkpoint()

    @property
    def handed(self) -> int:
        return sum(s.done for s in self.segments)

    def write(self, index: int, offset: int, chunk: bytes) -> None:
        """Write a chunk of piece ``index`` at ``offset`` (blocking)."""
        try:
            os.pwrite(self._fd, chunk, offset)
        except OSError as exc:
            raise translate_os_error(exc, self.path) from exc
        self.written[index] += len(chunk)

    def checkpoint(self) -> None:
        """fsync the part, then record progress (so the sidecar never claims bytes not on disk)."""
        if self._fd < 0:
            return
        done = list(self.written)  # before the fsync: all of it is then on disk
        os.fsync(self._fd)
        pieces = [(s.start, s.end, d) for s, d in zip(self.segments, done, strict=True)]
        temporary = self.sidecar.with_name(self.sidecar.name + ".tmp")
        write_fresh(temporary, sidecar.render(self.size, pieces))
        os.replace(temporary, self.sidecar)

    def hash_piece(self, segment: Segment) -> None:
        """Feed a complete piece to the checksum, in file order (blocking: read back from the page cache)."""
        position = segment.start
        while position < segment.end:
            block = os.pread(self._fd, min(HASH_BLOCK, segment.end - position), position)
            if not block:
                raise OSError(f"{self.path} ends before byte {segment.end}")
            self.digest.update(block)
            position += len(block)

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


class SegmentedDownload:
    """One file's segmented download, attempt after attempt (a new part object each time: from zero)."""

    def __init__(self, context: Context, planned: PlannedFile, part: Path, ceiling: RequestCeiling) -> None:
        self.context, self.planned, self.ceiling = context, planned, ceiling
        self.pacer = context.client.file_pacer()  # --bwlimit-file: this file's bodies (all its segments)
        self._path = part
        self.received = 0
        assert planned.entry.size is not None
        self.check = Check(planned.entry.checksum)
        self.part = SegmentedPart(part, planned.entry.size, context.config.segment_count * PIECES_PER_SEGMENT,
                                  self.check)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def undone(self) -> int:
        return self.part.size

    async def attempt(self) -> str | None:
        """Download every piece (resuming from the sidecar); the checksum problem, or None. Raises
        SegmentsUnsupported (the part discarded) when the server ignores Range."""
        entry = self.planned.entry
        part = self.part = SegmentedPart(self._path, self.part.size,
                                         self.context.config.segment_count * PIECES_PER_SEGMENT, self.check)
        await anyio.to_thread.run_sync(part.open)
        before = part.handed
        self.context.sink.emit(FileStarted(self.planned.path, entry.size, before))
        abandon = threading.Event()  # set when the attempt ends early: the hashing thread stops waiting
        try:
            async with DiskWriter(depth=PIPELINE_DEPTH * self.context.config.segment_count) as writer, \
                    DiskWriter(depth=len(part.segments) + 1) as hashing:
                try:
                    await self._pieces(writer, hashing, abandon)
                except BaseException:
                    abandon.set()
                    raise
        except BaseExceptionGroup as error:
            leaf = unwrap(error)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(part.discard if isinstance(leaf, SegmentsUnsupported) else part.close)
            raise leaf from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(part.close)
            raise
        finally:
            self.received += part.handed - before
        return part.digest.problem()

    async def finish(self) -> None:
        await anyio.to_thread.run_sync(self.part.finish)

    async def discard(self) -> None:
        await anyio.to_thread.run_sync(self.part.discard)

    async def _pieces(self, writer: DiskWriter, hashing: DiskWriter, abandon: threading.Event) -> None:
        """``segments`` connections take the pieces in order; the checksum follows the complete prefix."""
        part = self.part
        pieces = part.segments
        finished = [anyio.Event() for _ in pieces]  # every byte of the piece handed to the writer
        on_disk = [threading.Event() for _ in pieces]  # ... and written (set by the writer thread)
        for piece, event, written in zip(pieces, finished, on_disk, strict=True):
            if piece.complete:
                event.set()
                written.set()
        todo = collections.deque(i for i, piece in enumerate(pieces) if not piece.complete)
        honoured = anyio.Event()  # the host answered a Range with a good 206: the others may start
        if self.context.routes.known_to_work(self.planned):
            honoured.set()
        handed = [0]  # bytes handed since the last checkpoint
        spare = self.context.spare

        async def fetch(index: int) -> None:
            await self._segment(index, writer, honoured, handed)
            await writer.submit(on_disk[index].set)  # runs after the piece's writes
            finished[index].set()

        async def connection(first: bool) -> None:
            if not first:
                await honoured.wait()
            while todo:  # shared: each piece is taken once, in file order
                if first or spare is None:
                    await fetch(todo.popleft())
                elif (token := spare.lend()) is None:
                    await anyio.sleep(SLOT_POLL)  # no slot free: look again (while pieces are left)
                else:
                    try:
                        if todo:
                            await fetch(todo.popleft())
                    finally:
                        spare.give_back(token)

        def hash_when_written(piece: Segment, written: threading.Event) -> None:
            while not written.wait(0.05):
                if abandon.is_set() or writer.failed:
                    return
            part.hash_piece(piece)

        async def hasher() -> None:
            for piece, event, written in zip(pieces, finished, on_disk, strict=True):
                await event.wait()
                await hashing.submit(functools.partial(hash_when_written, piece, written))

        async with anyio.create_task_group() as group:
            group.start_soon(hasher)
            for number in range(self.context.config.segment_count):
                group.start_soon(connection, number == 0)

    async def _segment(self, index: int, writer: DiskWriter, honoured: anyio.Event, handed: list[int]) -> None:
        """Fetch one piece with its own retry budget (the client's :class:`~asyncdl.http.Retry`)."""
        planned, part, context = self.planned, self.part, self.context
        segment, routes, config = part.segments[index], context.routes, context.config
        retry = context.client.retry(start=segment.next_byte)
        while not segment.complete:
            url, kind = routes.url(planned)
            if kind is None:
                raise SegmentsUnsupported()
            headers = {"Range": f"bytes={segment.next_byte}-{segment.end - 1}", "Accept-Encoding": "identity"}
            self.ceiling.spend(planned.path)
            try:
                async with context.client.download(url, headers=headers, pacer=self.pacer) as response:
                    if response.status == 200:
                        routes.ignored(planned, kind)
                        continue
                    check_content_range(response.headers.get("Content-Range", ""), segment.next_byte, part.size,
                                        url)
                    routes.honoured(planned)
                    honoured.set()
                    async for chunk in response.chunks(config.chunk_size):
                        if len(chunk) > segment.end - segment.next_byte:
                            raise TransportError(f"more bytes than the segment asked for at {redact(url)}")
                        await writer.submit(functools.partial(part.write, index, segment.next_byte, chunk))
                        segment.done += len(chunk)
                        handed[0] += len(chunk)
                        if handed[0] >= config.checkpoint_bytes:
                            handed[0] = 0
                            await writer.submit(part.checkpoint)
                        context.sink.emit(FileAdvanced(planned.path, len(chunk)))
                if not segment.complete:
                    raise ShortBodyError(f"the server ended the body at byte {segment.next_byte} of the segment "
                                         f"ending at {segment.end} ({redact(url)})", position=segment.next_byte,
                                         size=segment.end)
            except NotFoundError as exc:
                routes.missing(planned, kind, exc)
            except AsyncdlError as exc:
                await retry.after(exc, segment.next_byte)
        context.client.brake.progress()
