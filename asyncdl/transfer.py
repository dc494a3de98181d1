"""One file, from the server to its final name: resumable, verified, never half-written under that name.

The bytes go to ``<name>.asyncdl-part`` beside the destination; the md5 is computed as they arrive,
in a worker thread together with the write. A dropped connection resumes with ``Range: bytes=N-``,
accepted only as a 206 whose Content-Range starts at N and whose total is the file's size; a 200 means
the server ignored Range: the API content URL is then abandoned for the record's download URL, and if
that ignores Range too, the part is truncated and the 200 body is taken from byte 0. Error statuses and
HTML pages are never written. Size and md5 are checked before the part is fsynced and renamed. A
mismatch deletes the part and starts again from zero, up to ``max_attempts`` times.

Large files may be fetched in segments at once (``segments`` connections), each written at its
offset; the md5 then follows the contiguous prefix: the first segment is hashed as it streams, the
others are read back from the page cache as the prefix reaches them.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import stat
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio

from asyncdl import invenio
from asyncdl.archive import PlannedRecord, fetch_archive, unpack_member
from asyncdl.archive import discard as discard_archive
from asyncdl.committer import Committer
from asyncdl.config import Config
from asyncdl.errors import (
    AsyncdlError,
    BadResponseError,
    DiskFullError,
    IntegrityError,
    NotFoundError,
    RequestCeilingError,
    ShortBodyError,
    TransportError,
    unwrap,
)
from asyncdl.events import FileAdvanced, FileFinished, FileStarted, Notice, NullSink, ProgressSink
from asyncdl.fsutil import SafeTargets, commit, hash_prefix, md5_of, remove_symlink, translate_os_error
from asyncdl.http import Client, Response
from asyncdl.models import FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.redact import redact
from asyncdl.segments import Segment, SegmentedPart, SegmentsUnsupported
from asyncdl.store.names import archive_temporary, part_of, sidecar_of

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
INLINE_WRITE = 256 * 1024  # bodies up to this size are written on the event loop: page-cache fast
PIPELINE_DEPTH = 2  # chunks received but not yet written, per file: memory stays at a few MiB per transfer
PIECES_PER_SEGMENT = 4  # a segmented file is cut in segments x 4 pieces so its md5 can follow the download
PROGRESS_UNIT = 8 * 1024 * 1024  # the request ceiling allows one try that progresses per this many bytes


@dataclass(frozen=True, slots=True)
class TransferResult:
    """How one file ended: ``outcome`` ok, skipped or failed; ``verified`` when its md5 was checked."""

    path: str
    record_id: str
    key: str
    outcome: str
    reason: str = ""
    size: int | None = None
    bytes_received: int = 0
    verified: bool = False

    @classmethod
    def of(cls, planned: PlannedFile, outcome: str, reason: str, *, received: int = 0,
           verified: bool = False) -> TransferResult:
        """The result for a planned file."""
        return cls(planned.path, planned.record.id, planned.entry.key, outcome, reason, planned.entry.size,
                   received, verified)


class PartFile:
    """The ``.asyncdl-part`` file being written, with the md5 of its contiguous prefix."""

    def __init__(self, path: Path, *, expected_size: int | None) -> None:
        self.path = path
        self.expected_size = expected_size
        self.offset = 0
        self.digest = hashlib.md5()
        self._stream: BinaryIO | None = None

    def open(self) -> int:
        """Open for appending, re-hashing the bytes already there (blocking: a thread if there are any)."""
        remove_symlink(self.path)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.expected_size is not None and size > self.expected_size:
            size = 0
        self.digest = hash_prefix(self.path, size) if size else hashlib.md5()
        self.offset = size
        self._stream = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), "r+b")
        self._stream.truncate(size)  # nothing past the bytes kept (a longer part is started again from zero)
        self._stream.seek(size)
        return size

    def write(self, chunk: bytes) -> None:
        """Append and hash a chunk (blocking: run in a thread)."""
        assert self._stream is not None
        try:
            self._stream.write(chunk)
        except OSError as exc:
            raise translate_os_error(exc, self.path) from exc
        self.digest.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Discard everything written (blocking)."""
        assert self._stream is not None
        self._stream.seek(0)
        self._stream.truncate(0)
        self.offset = 0
        self.digest = hashlib.md5()

    def close(self) -> None:
        """Close the file; an empty part (nothing arrived) is removed."""
        if self._stream is not None:
            self._stream.flush()
            self._stream.close()
            self._stream = None
        if self.offset == 0:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class PipelinedWriter:
    """Hash and write chunks in a thread of their own while the event loop receives the next ones.

    At most ``depth`` chunks wait in between (memory stays bounded); a write error (disk full) is raised
    by the next ``put`` or by ``close``. ``close`` waits until every chunk handed over is on disk.
    """

    def __init__(self, part: PartFile, *, depth: int) -> None:
        self._part = part
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._room = threading.Semaphore(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="asyncdl-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._part.write(chunk)
                except BaseException as exc:  # handed to the event loop by put() or close()
                    self._error = exc
            self._room.release()

    async def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if not self._room.acquire(blocking=False):  # the writer is behind: wait for it off the loop
            await anyio.to_thread.run_sync(self._room.acquire)
        self._queue.put(chunk)

    async def close(self) -> None:
        self._queue.put(None)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._thread.join)
        if self._error is not None:
            raise self._error


class RequestCeiling:
    """The most requests one file may cost, whatever happens: a backstop behind the retry budgets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    @classmethod
    def for_file(cls, size: int | None, config: Config) -> RequestCeiling:
        """Per download from zero (``max_attempts`` of them): every piece's retry budget, one progressing try
        per PROGRESS_UNIT of the file, and the two URLs tried for Range."""
        pieces = config.segments * PIECES_PER_SEGMENT if size and size >= config.segment_threshold else 1
        progressing = -(-(size or 0) // PROGRESS_UNIT) or 1
        return cls(config.max_attempts * (pieces * (config.retries + 1) + progressing + 2))

    def spend(self, path: str) -> None:
        if self.spent >= self.limit:
            raise RequestCeilingError(f"gave up after {self.spent} requests for {path}, the most one file of its "
                                      "size may cost with these retry and segment settings")
        self.spent += 1


class Transfer:
    """Fetches planned files into ``dest``; one instance is shared by every worker of a run."""

    def __init__(self, client: Client, config: Config, dest: Path, *, sink: ProgressSink | None = None,
                 committer: Committer | None = None) -> None:
        self.client = client
        self.committer = committer
        self.config = config
        self.dest = dest
        self.targets = SafeTargets(dest)
        self.sink = sink or NullSink()
        self._range_kinds: dict[str, list[str]] = {}  # host -> URL kinds still believed to honour Range

    async def fetch(self, planned: PlannedFile) -> TransferResult:
        """Bring one file to its final name, verified; never raises for a per-file failure."""
        entry = planned.entry
        try:
            final = self.targets.target(planned.path)
            there = self._maybe_there(planned, final)
            if there and await anyio.to_thread.run_sync(self._already_there, planned, final):
                self.sink.emit(FileFinished(planned.path, "skipped", "already present, md5 verified", entry.size))
                return TransferResult.of(planned, "skipped", "already present, md5 verified", verified=True)
            ceiling = RequestCeiling.for_file(entry.size, self.config)
            return await self._fetch_verified(planned, final, ceiling)
        except (DiskFullError, anyio.get_cancelled_exc_class()):
            raise
        except AsyncdlError as exc:
            if exc.fatal:
                raise
            reason = failure_reason(exc, planned)
            self.sink.emit(FileFinished(planned.path, "failed", reason, entry.size))
            return TransferResult.of(planned, "failed", reason)
        except OSError as exc:
            reason = f"local error: {exc}"
            self.sink.emit(FileFinished(planned.path, "failed", reason, entry.size))
            return TransferResult.of(planned, "failed", reason)

    @staticmethod
    def _maybe_there(planned: PlannedFile, final: Path) -> bool:
        """A quick look (one stat): is there a file of the right size to hash?"""
        entry = planned.entry
        try:
            info = final.lstat()
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and entry.size == info.st_size and entry.md5 is not None

    @staticmethod
    def _already_there(planned: PlannedFile, final: Path) -> bool:
        """A file already at the final name with the record's md5 is adopted (hashed once)."""
        return planned.entry.md5 is not None and md5_of(final) == planned.entry.md5

    def _segmentable(self, planned: PlannedFile, part: Path) -> bool:
        """Large enough to split, and not a single-stream part left by an earlier run."""
        size = planned.entry.size
        if not size or self.config.segments < 2 or size < self.config.segment_threshold:
            return False
        sidecar = sidecar_of(part)
        return sidecar.exists() or not part.exists()

    async def _fetch_verified(self, planned: PlannedFile, final: Path, ceiling: RequestCeiling) -> TransferResult:
        part = part_of(final)
        if self._segmentable(planned, part):
            try:
                return await self._fetch_segmented(planned, final, part, ceiling)
            except SegmentsUnsupported:
                self.sink.emit(Notice(f"{planned.path}: the server ignores Range; one stream instead", level="info"))
        return await self._fetch_single(planned, final, part, ceiling)

    async def _fetch_single(self, planned: PlannedFile, final: Path, part_path: Path,
                            ceiling: RequestCeiling) -> TransferResult:
        entry = planned.entry
        part = PartFile(part_path, expected_size=entry.size)
        received = 0
        for attempt in range(1, self.config.max_attempts + 1):
            # a new part opens inline (a few fast system calls); an existing one is re-hashed in a thread
            offset = await anyio.to_thread.run_sync(part.open) if part.path.exists() else part.open()
            self.sink.emit(FileStarted(planned.path, entry.size, offset))
            try:
                received += await self._download(planned, part, ceiling)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(part.close)
                raise
            part.close()
            problem = check_integrity(planned, part)
            if problem is None:
                return await self._accept(planned, part.path, final, received)
            await self._reject(planned, part.discard, part.offset, problem, attempt)
        raise AssertionError("unreachable")

    async def _fetch_segmented(self, planned: PlannedFile, final: Path, part_path: Path,
                               ceiling: RequestCeiling) -> TransferResult:
        """Several Range requests at once; falls back (SegmentsUnsupported) when the server ignores Range."""
        entry = planned.entry
        assert entry.size is not None
        received = 0
        expected = entry.md5
        for attempt in range(1, self.config.max_attempts + 1):
            part = SegmentedPart(part_path, entry.size, self.config.segments * PIECES_PER_SEGMENT)
            await anyio.to_thread.run_sync(part.open)
            before = part.received
            self.sink.emit(FileStarted(planned.path, entry.size, before))
            try:
                await self._download_pieces(planned, part, ceiling)
            except BaseExceptionGroup as error:
                leaf = unwrap(error)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(part.discard if isinstance(leaf, SegmentsUnsupported)
                                                   else part.close)
                raise leaf from None
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(part.close)
                raise
            received += part.received - before
            digest = part.digest.hexdigest()
            if expected is None or digest == expected:
                await anyio.to_thread.run_sync(part.finish)
                return await self._accept(planned, part.path, final, received)
            await self._reject(planned, part.discard, entry.size, f"md5 {digest} differs from the record's "
                               f"{expected}", attempt)
        raise AssertionError("unreachable")

    async def _accept(self, planned: PlannedFile, part: Path, final: Path, received: int) -> TransferResult:
        """A part that passed its checks: committed under its final name, and reported."""
        entry = planned.entry
        await self._commit(part, final)
        self.client.brake.progress()
        verified = entry.md5 is not None
        reason = "" if verified else unverified_reason(entry)
        self.sink.emit(FileFinished(planned.path, "ok", reason, entry.size))
        return TransferResult.of(planned, "ok", reason, received=received, verified=verified)

    async def _reject(self, planned: PlannedFile, discard: Callable[[], None], undone: int, problem: str,
                      attempt: int) -> None:
        """A download that failed its size or md5 check: counted as a fault, its bytes taken back from the
        progress, its part discarded; after the last attempt, an IntegrityError."""
        self.client.stats.faults["corrupt"] += 1
        self.sink.emit(FileAdvanced(planned.path, -undone))
        await anyio.to_thread.run_sync(discard)
        if attempt == self.config.max_attempts:
            raise IntegrityError(f"{problem} after {attempt} attempts")

    async def _download_pieces(self, planned: PlannedFile, part: SegmentedPart, ceiling: RequestCeiling) -> None:
        """``segments`` connections take the pieces in order; the md5 follows the complete prefix."""
        pieces = part.segments
        finished = [anyio.Event() for _ in pieces]
        for piece, event in zip(pieces, finished, strict=True):
            if piece.complete:
                event.set()
        queue = iter([i for i, piece in enumerate(pieces) if not piece.complete])

        async def connection() -> None:
            for index in queue:  # a shared iterator: each piece is taken once, in file order
                await self._segment(planned, part, pieces[index], ceiling)
                finished[index].set()

        async def hasher() -> None:
            for piece, event in zip(pieces, finished, strict=True):
                await event.wait()
                await anyio.to_thread.run_sync(part.hash_piece, piece)

        async with anyio.create_task_group() as group:
            group.start_soon(hasher)
            for _ in range(self.config.segments):
                group.start_soon(connection)

    async def _segment(self, planned: PlannedFile, part: SegmentedPart, segment: Segment,
                       ceiling: RequestCeiling) -> None:
        """Fetch one segment with its own retry budget (the client's :class:`~asyncdl.http.Retry`)."""
        entry = planned.entry
        assert entry.size is not None
        retry = self.client.retry(start=segment.next_byte)
        while not segment.complete:
            url, kind = self._range_url(planned)
            if kind is None:
                raise SegmentsUnsupported()
            headers = {"Range": f"bytes={segment.next_byte}-{segment.end - 1}", "Accept-Encoding": "identity"}
            ceiling.spend(planned.path)
            try:
                async with self.client.stream(url, headers=headers) as response:
                    if response.status == 200:
                        self._range_ignored(planned, kind)
                        continue
                    check_content_range(response.headers.get("Content-Range", ""), segment.next_byte, entry.size,
                                        url)
                    async for chunk in response.chunks(self.config.chunk_size):
                        if len(chunk) > segment.end - segment.next_byte:
                            raise TransportError(f"more bytes than the segment asked for at {redact(url)}")
                        await anyio.to_thread.run_sync(part.write, segment, chunk)
                        self.sink.emit(FileAdvanced(planned.path, len(chunk)))
                if not segment.complete:
                    raise ShortBodyError(f"the server ended the body at byte {segment.next_byte} of the segment "
                                         f"ending at {segment.end} ({redact(url)})", position=segment.next_byte,
                                         size=segment.end)
            except NotFoundError as exc:
                self._ui_missing(planned, kind, exc)
            except AsyncdlError as exc:
                await retry.after(exc, segment.next_byte)
        self.client.brake.progress()

    async def fetch_record_archive(self, item: PlannedRecord) -> list[TransferResult]:
        """A record's files through its files-archive, each member checked against the record's md5;
        whatever the archive cannot give (over the cap, missing, wrong) is fetched file by file."""
        results: list[TransferResult] = []
        wanted: list[tuple[PlannedFile, Path]] = []
        for planned in item.files:
            try:
                final = self.targets.target(planned.path)
            except AsyncdlError:
                results.append(await self.fetch(planned))
                continue
            if self._maybe_there(planned, final) or part_of(final).exists():
                results.append(await self.fetch(planned))  # present or partial: checked and resumed alone
            else:
                wanted.append((planned, final))
        if len(wanted) < 2:
            return results + [await self.fetch(planned) for planned, _ in wanted]
        zip_path = archive_temporary(self.dest, item.record.id)
        try:
            await fetch_archive(self.client, item.record, zip_path, base_url=self.config.base_url,
                                chunk_size=self.config.chunk_size)
            archive = await anyio.to_thread.run_sync(zipfile.ZipFile, zip_path)
        except (AsyncdlError, zipfile.BadZipFile, OSError) as exc:
            if isinstance(exc, AsyncdlError) and exc.fatal:
                raise
            self.sink.emit(Notice(f"record {item.record.id}: no archive ({exc}); fetching its files one by one",
                                  level="info"))
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(discard_archive, zip_path)
            return results + [await self.fetch(planned) for planned, _ in wanted]
        try:
            for planned, final in wanted:
                part = await anyio.to_thread.run_sync(unpack_member, archive, planned, final)
                if part is None:
                    results.append(await self.fetch(planned))
                    continue
                await self._commit(part, final)
                self.client.brake.progress()
                size = planned.entry.size
                self.sink.emit(FileStarted(planned.path, size, 0))
                self.sink.emit(FileAdvanced(planned.path, size or 0))
                reason = "from the record's ZIP archive; md5 verified"
                self.sink.emit(FileFinished(planned.path, "ok", reason, size))
                results.append(TransferResult.of(planned, "ok", reason, received=size or 0, verified=True))
        finally:
            archive.close()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(discard_archive, zip_path)
        return results

    async def _commit(self, part: Path, final: Path) -> None:
        """fsync and rename, batched with other files' when the run has a committer."""
        if self.committer is not None:
            await self.committer.commit(part, final)
        else:
            await anyio.to_thread.run_sync(commit, part, final)

    def _host(self, record: Record) -> str:
        return invenio.base_of(record.api_url) or self.config.base_url

    async def _download(self, planned: PlannedFile, part: PartFile, ceiling: RequestCeiling) -> int:
        """Stream the missing bytes into ``part``, resuming after transport errors and bodies that end
        early; bytes received. The retry budget is the client's :class:`~asyncdl.http.Retry`."""
        entry, received = planned.entry, 0
        retry = self.client.retry(start=part.offset)
        while entry.size is None or part.offset < entry.size:
            before = part.offset
            try:
                ceiling.spend(planned.path)
                counted = await self._one_request(planned, part)
                received += max(0, part.offset - before)
                if entry.size is None:
                    return received
                if counted and part.offset < entry.size:
                    raise ShortBodyError(f"the server ended the body at byte {part.offset} of {entry.size} "
                                         f"({redact(entry.url)})", position=part.offset, size=entry.size)
            except AsyncdlError as exc:
                received += max(0, part.offset - before)
                await retry.after(exc, part.offset)
        return received

    def _ui_missing(self, planned: PlannedFile, kind: str | None, error: NotFoundError) -> None:
        """A 404 from the UI download URL: the instance has no such route, so try the API URL; any other
        404 is the file's own."""
        if kind != "ui":
            raise error
        self._range_ignored(planned, "ui")

    def _range_url(self, planned: PlannedFile) -> tuple[str, str | None]:
        """The URL for a Range request and its kind ("ui" download URL first, then "api"); kind None
        when the host ignored Range on both (then the plain URL, whose 200 is taken from byte 0)."""
        record, entry = planned.record, planned.entry
        host = self._host(record)
        kinds = self._range_kinds.setdefault(host, ["ui", "api"])
        if not kinds:
            return entry.url, None
        if kinds[0] == "ui":
            return invenio.download_url(base_url=host, record_id=record.id, key=entry.key), "ui"
        return entry.url, "api"

    def _range_ignored(self, planned: PlannedFile, kind: str) -> None:
        """Remember that this host's ``kind`` URL does not honour Range."""
        kinds = self._range_kinds.setdefault(self._host(planned.record), ["ui", "api"])
        if kind in kinds:
            kinds.remove(kind)

    async def _one_request(self, planned: PlannedFile, part: PartFile) -> bool:
        """One request for the rest of the file, appended to ``part``. False when the answer only taught
        which URL or start to ask next (a bounded step: not a try that counts against the budget)."""
        entry, offset = planned.entry, part.offset
        url, kind = self._range_url(planned) if offset else (entry.url, None)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self.client.stream(url, headers=headers) as response:
                action = range_answer(offset, response.status, response.headers.get("Content-Encoding", ""), kind)
                if action == "next-url":
                    assert kind is not None
                    self._range_ignored(planned, kind)
                    return False
                if action in ("restart", "restart-with-body"):
                    await anyio.to_thread.run_sync(part.restart)
                    self.sink.emit(FileAdvanced(planned.path, -offset))
                    if action == "restart":
                        return False
                elif offset:
                    check_content_range(response.headers.get("Content-Range", ""), offset, entry.size, url)
                await self._stream_body(planned, part, response)
        except NotFoundError as exc:
            self._ui_missing(planned, kind, exc)
            return False
        return True

    async def _stream_body(self, planned: PlannedFile, part: PartFile, response: Response) -> None:
        entry = planned.entry
        if "html" in response.content_type.lower() and not (entry.key.lower().endswith((".html", ".htm"))
                                                  or "html" in (entry.mimetype or "")):
            url = response.shown_url
            raise BadResponseError(f"got an HTML page instead of the file at {url} (status {response.status})",
                                   url=url, status=response.status)
        length = response.content_length
        encoded = bool(response.encoding)
        # a Content-Length counts encoded (e.g. gzip) bytes: only an unencoded one must match the record
        if entry.size is not None and length is not None and not encoded and part.offset + length != entry.size:
            url = response.shown_url
            raise BadResponseError(f"the server announced {part.offset + length} bytes for a file of {entry.size} "
                                   f"at {url}", url=url, status=response.status)
        if entry.size is not None and entry.size - part.offset <= INLINE_WRITE:
            await self._receive_small(planned, part, response)
            return
        writer = PipelinedWriter(part, depth=PIPELINE_DEPTH)
        try:
            async for chunk in response.chunks(self.config.chunk_size):
                if entry.size is not None and part.offset + len(chunk) > entry.size:
                    url = response.shown_url
                    raise BadResponseError(f"the server sent more than the file's {entry.size} bytes at {url}",
                                           url=url)
                await writer.put(chunk)
                self.sink.emit(FileAdvanced(planned.path, len(chunk)))
        finally:  # whatever arrived is written before anything else happens: a resume starts after it
            await writer.close()

    async def _receive_small(self, planned: PlannedFile, part: PartFile, response: Response) -> None:
        """A small body: gathered, then hashed and written on the event loop (cheaper than a thread)."""
        entry = planned.entry
        pending = bytearray()
        try:
            async for chunk in response.chunks(self.config.chunk_size):
                pending += chunk
                if entry.size is not None and part.offset + len(pending) > entry.size:
                    url = response.shown_url
                    raise BadResponseError(f"the server sent more than the file's {entry.size} bytes at {url}",
                                           url=url)
        finally:  # bytes that arrived before an error are kept: the resume starts after them
            if pending and (entry.size is None or part.offset + len(pending) <= entry.size):
                part.write(bytes(pending))
                self.sink.emit(FileAdvanced(planned.path, len(pending)))



def range_answer(offset: int, status: int, encoding: str, kind: str | None) -> str:
    """What to do with a 2xx answer to a request for bytes ``offset``- from a URL of ``kind`` (None: the
    last URL there is): "append" it at ``offset`` (its Content-Range is checked next), try the "next-url",
    "restart-with-body" (a 200 is the whole file: truncate and take it), or "restart" (truncate, ask again
    from byte 0). Ranges of an encoded (e.g. gzip) body are not ranges of the file: never appended."""
    if not offset:
        return "append"
    encoded = encoding.strip().lower() not in ("", "identity")
    if (status == 206 and not encoded) or status not in (200, 206):
        return "append"  # a 206 of the file's own bytes; any other status fails the Content-Range check
    if kind is not None:
        return "next-url"
    return "restart-with-body" if status == 200 else "restart"


def check_content_range(header: str, offset: int, size: int | None, url: str) -> None:
    """A 206 must start where we asked and describe the whole file we expect."""
    found = _CONTENT_RANGE.match(header.strip())
    if not found or int(found.group(1)) != offset or (size is not None and found.group(3) != str(size)):
        raise TransportError(f"unexpected Content-Range {header!r} for bytes={offset}- at {redact(url)}")


def check_integrity(planned: PlannedFile, part: PartFile) -> str | None:
    """Why the part is not the file the record describes, or None when it is."""
    entry = planned.entry
    if entry.size is not None and part.offset != entry.size:
        return f"size {part.offset} differs from the record's {entry.size}"
    if entry.md5 is not None:
        got = part.digest.hexdigest()
        if got != entry.md5:
            return f"md5 {got} differs from the record's {entry.md5}"
    return None


def unverified_reason(entry: FileEntry) -> str:
    """What was checked of a file whose record gives no md5."""
    stated = f"a {entry.checksum.algorithm} checksum" if entry.checksum else "no checksum"
    if entry.size is None:
        return f"not verified: the record gives no size and {stated}"
    return f"size checked; the record gives {stated}, not an md5"


def failure_reason(error: AsyncdlError, planned: PlannedFile) -> str:
    """A short reason for the summary: restricted, embargoed, deleted, blocked, not found..."""
    return error.reason(access="embargoed" if planned.record.access_right == "embargoed" else "restricted")
