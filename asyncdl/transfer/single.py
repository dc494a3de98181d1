"""One file in one stream: appended to ``<name>.asyncdl-part``, resumed with ``Range: bytes=N-``.

A resume is accepted only as a 206 whose Content-Range starts at N and names the file's size; a 200 means
the URL ignored Range (see :mod:`.ranges`). Error statuses and HTML pages are never written. The record's
checksum (see :mod:`asyncdl.digests`) is computed as the bytes arrive, in a hasher thread beside the thread
that writes them; a small body is gathered and written on the event loop (cheaper than a thread hop).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import BinaryIO

import anyio

from asyncdl.digests import Check, feed
from asyncdl.errors import AsyncdlError, BadResponseError, NotFoundError, ShortBodyError, translate_os_error
from asyncdl.events import FileAdvanced, FileStarted
from asyncdl.fsutil import remove_unowned
from asyncdl.http import Response
from asyncdl.plan import PlannedFile
from asyncdl.redact import redact
from asyncdl.transfer.ceiling import RequestCeiling
from asyncdl.transfer.context import Context
from asyncdl.transfer.ranges import check_content_range, range_answer
from asyncdl.transfer.writer import DiskWriter

INLINE_WRITE = 256 * 1024  # bodies up to this size are written on the event loop: page-cache fast
PIPELINE_DEPTH = 2  # chunks received but not yet written, per stream: memory stays at a few MiB per transfer


class PartFile:
    """The ``.asyncdl-part`` file being written, with the running checksum of its contiguous prefix.

    ``offset`` and ``received`` are the event loop's (bytes handed to the writer); ``write`` and the
    digest run in the writer thread, in order.
    """

    def __init__(self, path: Path, *, expected_size: int | None, check: Check) -> None:
        self.path = path
        self.expected_size = expected_size
        self.check = check
        self.offset = 0
        self.received = 0  # bytes received over every attempt
        self.digest = check.new()
        self._stream: BinaryIO | None = None

    def open(self) -> int:
        """Open for appending, re-hashing the bytes already there (blocking: a thread if there are any)."""
        remove_unowned(self.path)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.expected_size is not None and size > self.expected_size:
            size = 0
        self.digest = feed(self.check.new(), self.path, size) if size else self.check.new()
        self.offset = size
        self._stream = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), "r+b")
        self._stream.truncate(size)  # nothing past the bytes kept (a longer part is started again from zero)
        self._stream.seek(size)
        return size

    def handed(self, count: int) -> None:
        """``count`` more bytes were handed to the writer (event loop)."""
        self.offset += count
        self.received += count

    def write(self, chunk: bytes) -> None:
        """Append and hash a chunk (blocking)."""
        self.append(chunk)
        self.hash(chunk)

    def append(self, chunk: bytes) -> None:
        """Append a chunk (blocking; the writer thread's half of :meth:`write`)."""
        assert self._stream is not None
        try:
            self._stream.write(chunk)
        except OSError as exc:
            raise translate_os_error(exc, self.path) from exc

    def hash(self, chunk: bytes) -> None:
        """Feed a chunk to the checksum (blocking; the hasher thread's half of :meth:`write`)."""
        self.digest.update(chunk)

    def restart(self) -> None:
        """Discard everything written (blocking)."""
        assert self._stream is not None
        self._stream.seek(0)
        self._stream.truncate(0)
        self.offset = 0
        self.digest = self.check.new()

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

    def problem(self, size: int | None) -> str | None:
        """Why the part is not the file the record describes, or None when it is."""
        if size is not None and self.offset != size:
            return f"size {self.offset} differs from the record's {size}"
        return self.digest.problem()


class SingleStream:
    """One file's single-stream download, attempt after attempt (the part object lives across them)."""

    def __init__(self, context: Context, planned: PlannedFile, part: Path, ceiling: RequestCeiling) -> None:
        self.context, self.planned, self.ceiling = context, planned, ceiling
        self.pacer = context.client.file_pacer()  # --bwlimit-file: this file's bodies (all its segments)
        self.part = PartFile(part, expected_size=planned.entry.size, check=Check(planned.entry.checksum))

    @property
    def path(self) -> Path:
        return self.part.path

    @property
    def received(self) -> int:
        return self.part.received

    @property
    def undone(self) -> int:
        """Bytes to take back from the progress when this attempt's part is discarded."""
        return self.part.offset

    async def attempt(self) -> str | None:
        """Download into the part (resuming what is there); the size or checksum problem, or None."""
        entry, part = self.planned.entry, self.part
        # in a thread: an existing part is re-hashed, and even a new one's open(O_CREAT) can wait on its folder
        # (while the committer fsyncs files there, it took 0.5 ms each on the event loop)
        offset = await anyio.to_thread.run_sync(part.open)
        self.context.sink.emit(FileStarted(self.planned.path, entry.size, offset))
        try:
            await self._download()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(part.close)
            raise
        part.close()
        return part.problem(entry.size)

    async def finish(self) -> None:
        """Nothing to tidy: the part is renamed as it is."""

    async def discard(self) -> None:
        await anyio.to_thread.run_sync(self.part.discard)

    async def _download(self) -> None:
        """Requests until the part has the file's size, resuming after transport errors and bodies that end
        early; the retry budget is the client's :class:`~asyncdl.http.Retry`."""
        entry, part = self.planned.entry, self.part
        retry = self.context.client.retry(start=part.offset)
        while entry.size is None or part.offset < entry.size:
            try:
                self.ceiling.spend(self.planned.path)
                counted = await self._request()
                if entry.size is None:
                    return
                if counted and part.offset < entry.size:
                    raise ShortBodyError(f"the server ended the body at byte {part.offset} of {entry.size} "
                                         f"({redact(entry.url)})", position=part.offset, size=entry.size)
            except AsyncdlError as exc:
                await retry.after(exc, part.offset)

    async def _request(self) -> bool:
        """One request for the rest of the file, appended to the part. False when the answer only taught
        which URL or start to ask next (a bounded step: not a try that counts against the budget)."""
        planned, part, routes = self.planned, self.part, self.context.routes
        entry, offset = planned.entry, part.offset
        url, kind = routes.url(planned) if offset else (entry.url, None)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self.context.client.download(url, headers=headers, pacer=self.pacer) as response:
                action = range_answer(offset, response.status, response.encoding, kind)
                if action == "next-url":
                    assert kind is not None
                    routes.ignored(planned, kind)
                    return False
                if action in ("restart", "restart-with-body"):
                    await anyio.to_thread.run_sync(part.restart)
                    self.context.sink.emit(FileAdvanced(planned.path, -offset))
                    if action == "restart":
                        return False
                elif offset:
                    check_content_range(response.headers.get("Content-Range", ""), offset, entry.size, url)
                    routes.honoured(planned)
                await self._receive(response)
        except NotFoundError as exc:
            routes.missing(planned, kind, exc)
            return False
        return True

    def _refuse_body(self, response: Response) -> None:
        """An HTML page where a file should be, or a length that is not the rest of the file."""
        entry, part = self.planned.entry, self.part
        url = response.shown_url
        if "html" in response.content_type.lower() and not (entry.key.lower().endswith((".html", ".htm"))
                                                              or "html" in (entry.mimetype or "")):
            raise BadResponseError(f"got an HTML page instead of the file at {url} (status {response.status})",
                                   url=url, status=response.status)
        length = response.content_length
        # a Content-Length counts encoded (e.g. gzip) bytes: only an unencoded one must match the record
        if entry.size is not None and length is not None and not response.encoding and \
                part.offset + length != entry.size:
            raise BadResponseError(f"the server announced {part.offset + length} bytes for a file of {entry.size} "
                                   f"at {url}", url=url, status=response.status)

    def _too_much(self, response: Response, more: int) -> None:
        size = self.planned.entry.size
        if size is not None and self.part.offset + more > size:
            raise BadResponseError(f"the server sent more than the file's {size} bytes at {response.shown_url}",
                                   url=response.shown_url)

    async def _receive(self, response: Response) -> None:
        self._refuse_body(response)
        entry, part, chunk_size = self.planned.entry, self.part, self.context.config.chunk_size
        if entry.size is not None and entry.size - part.offset <= INLINE_WRITE:
            await self._receive_small(response)
            return
        # three stages at once: the event loop receives, one thread hashes, another writes (both release the
        # GIL); leaving the two waits until every chunk is hashed and written
        async with DiskWriter(depth=PIPELINE_DEPTH) as writer, DiskWriter(depth=PIPELINE_DEPTH) as hasher:
            async for chunk in response.chunks(chunk_size):
                self._too_much(response, len(chunk))
                await hasher.submit(functools.partial(part.hash, chunk))
                await writer.submit(functools.partial(part.append, chunk))
                part.handed(len(chunk))
                self.context.sink.emit(FileAdvanced(self.planned.path, len(chunk)))

    async def _receive_small(self, response: Response) -> None:
        """A small body: gathered, then hashed and written on the event loop (cheaper than a thread)."""
        part = self.part
        pending = bytearray()
        try:
            async for chunk in response.chunks(self.context.config.chunk_size):
                self._too_much(response, len(pending) + len(chunk))
                pending += chunk
        finally:  # bytes that arrived before an error are kept: the resume starts after them
            if pending:
                part.write(bytes(pending))
                part.handed(len(pending))
                self.context.sink.emit(FileAdvanced(self.planned.path, len(pending)))
