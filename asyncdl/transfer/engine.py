"""One file, from the server to its final name: resumable, verified, never half-written under that name.

:class:`Transfer` picks the way (a single stream, segments, or the record's files-archive), runs its
attempts, and accepts or rejects each: a part whose size and checksum match the record is committed (fsync,
rename, folder fsync) and reported; one that does not is discarded and downloaded again from zero, up to
``max_attempts`` times. A per-file failure is a result, never an exception; only fatal errors (a full
disk, a refused token) and cancellation leave :meth:`Transfer.fetch`.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import anyio

from asyncdl.config import Config
from asyncdl.digests import Check
from asyncdl.errors import AsyncdlError, IntegrityError
from asyncdl.events import FileAdvanced, Notice
from asyncdl.fsutil import SafeTargets
from asyncdl.http import Client
from asyncdl.models import Record
from asyncdl.plan import PlannedFile
from asyncdl.store.names import part_of, sidecar_of
from asyncdl.transfer.archive import PlannedRecord, fetch_record_archive
from asyncdl.transfer.archive_choice import ArchiveChoice
from asyncdl.transfer.ceiling import RequestCeiling
from asyncdl.transfer.commit import Committer
from asyncdl.transfer.context import Context, SpareSlots
from asyncdl.transfer.copies import Source, make_copy
from asyncdl.transfer.ranges import RangeRoutes
from asyncdl.transfer.result import TransferResult, adopted, failure_reason, finished, what_was_checked
from asyncdl.transfer.segmented import SegmentedDownload, SegmentsUnsupported
from asyncdl.transfer.single import SingleStream


class Download(Protocol):
    """A way of downloading one file into its part, attempt after attempt."""

    @property
    def path(self) -> Path: ...  # the part

    @property
    def received(self) -> int: ...

    @property
    def undone(self) -> int: ...

    async def attempt(self) -> str | None: ...

    async def finish(self) -> None: ...

    async def discard(self) -> None: ...


class Transfer:
    """Fetches planned files into ``dest``; one instance is shared by every worker of a run."""

    def __init__(self, client: Client, config: Config, dest: Path, *, committer: Committer | None = None,
                 archive: str = "never", spare: SpareSlots | None = None) -> None:
        self.client = client
        self.config = config
        self.dest = dest
        self.committer = committer or Committer(batched=False)
        self.targets = SafeTargets(dest)
        self.sink = client.sink  # events go where the client's go
        archives = ArchiveChoice(archive, base_url=config.base_url, segment_threshold=config.segment_threshold)
        self.context = Context(client, config, self.sink, RangeRoutes(config.base_url), archives, spare)

    def to_check(self, planned: PlannedFile) -> Path | None:
        """The final path when a file of the record's size is there already (to hash before fetching)."""
        try:
            final = self.targets.target(planned.path)
        except AsyncdlError:
            return None  # fetch() reports it
        return final if present(planned, final) else None

    async def adopt(self, planned: PlannedFile, final: Path) -> bool:
        """Hash the file at ``final`` (in a thread); True, and reported, when it is the record's file."""
        try:
            if not await anyio.to_thread.run_sync(already_there, planned, final):
                return False
        except OSError:
            return False  # fetch() meets the same problem and reports it
        self._report(adopted(planned))
        return True

    async def fetch(self, planned: PlannedFile, *, checked: bool = False,
                    received: Callable[[], None] | None = None) -> TransferResult:
        """Bring one file to its final name, verified; never raises for a per-file failure. ``checked``: a
        file at the final name has been hashed already (see :meth:`adopt`) and is not the record's;
        ``received``: called once its bytes are in and verified, before the commit (the download slot can go
        to the next file while this one is made durable)."""
        entry = planned.entry
        try:
            final = self.targets.target(planned.path)
            if not checked and await self._found_there(planned, final):
                return self._report(adopted(planned))
            return await self._fetch(planned, final, RequestCeiling.for_file(entry.size, self.config), received)
        except anyio.get_cancelled_exc_class():
            raise
        except AsyncdlError as exc:
            if exc.fatal:
                raise
            return self._failed(planned, failure_reason(exc, planned))
        except OSError as exc:
            return self._failed(planned, f"local error: {exc}")

    async def link(self, planned: PlannedFile, source: Source) -> bool:
        """Give ``planned`` the bytes of ``source``, another file of DEST that is the same stored file (see
        :mod:`.copies`), committed under its final name and reported; False when the source will not do (it
        is gone or changed: fetch the file instead)."""
        entry = planned.entry
        try:
            final = self.targets.target(planned.path)
            if await self._found_there(planned, final):
                self._report(adopted(planned))
                return True
            part = part_of(final)
            sidecar_of(part).unlink(missing_ok=True)  # a segmented part left by an earlier run is not resumed
            how = await anyio.to_thread.run_sync(make_copy, self.targets.target(source.path), part, entry,
                                                 source.mtime)
            if how is None:
                return False
            await self.committer.commit(part, final)
        except AsyncdlError as exc:
            if exc.fatal:
                raise
            return False  # fetch() meets the same problem and reports it
        except OSError:
            return False
        self._report(finished(planned, "linked", f"{how} of {source.path}", verified=Check(entry.checksum).verifiable,
                              source=source.path))
        return True

    @staticmethod
    async def _found_there(planned: PlannedFile, final: Path) -> bool:
        """The record's file is at ``final`` already (a stat, then its checksum in a thread)."""
        return present(planned, final) and await anyio.to_thread.run_sync(already_there, planned, final)

    def via_archive(self, record: Record, wanted: list[PlannedFile]) -> bool:
        """Whether the record's files still to fetch should come through its files-archive."""
        return self.context.archives.worth_it(record, wanted)

    async def fetch_record_archive(self, item: PlannedRecord) -> list[TransferResult]:
        """A record's files through its files-archive (see :mod:`.archive`)."""
        return await fetch_record_archive(self.context, item, dest=self.dest, targets=self.targets,
                                          present=present, fetch_one=self.fetch, commit=self.committer.commit)

    def _failed(self, planned: PlannedFile, reason: str) -> TransferResult:
        return self._report(finished(planned, "failed", reason))

    def _report(self, result: TransferResult) -> TransferResult:
        self.sink.emit(result)
        return result

    def _segmentable(self, planned: PlannedFile, part: Path) -> bool:
        """Large enough to split, and not a single-stream part left by an earlier run."""
        size = planned.entry.size
        if not size or self.config.segment_count < 2 or size < self.config.segment_threshold:
            return False
        return sidecar_of(part).exists() or not part.exists()

    async def _fetch(self, planned: PlannedFile, final: Path, ceiling: RequestCeiling,
                     received: Callable[[], None] | None) -> TransferResult:
        part = part_of(final)
        if self._segmentable(planned, part):
            try:
                return await self._attempts(planned, final, SegmentedDownload(self.context, planned, part, ceiling),
                                            received)
            except SegmentsUnsupported:
                self.sink.emit(Notice(f"{planned.path}: the server ignores Range; one stream instead", level="info"))
        return await self._attempts(planned, final, SingleStream(self.context, planned, part, ceiling), received)

    async def _attempts(self, planned: PlannedFile, final: Path, download: Download,
                        received: Callable[[], None] | None) -> TransferResult:
        """Attempts until the part is the record's file (accepted) or ``max_attempts`` failed its checks."""
        attempts = self.config.max_attempts
        for _ in range(attempts):
            problem = await download.attempt()
            if problem is None:
                await download.finish()
                if received is not None:
                    received()
                return await self._accept(planned, download.path, final, download.received)
            await self._reject(planned, download, problem)
        raise IntegrityError(f"{problem} after {attempts} attempts")

    async def _accept(self, planned: PlannedFile, part: Path, final: Path, received: int) -> TransferResult:
        """A part that passed its checks: committed under its final name, and reported."""
        entry = planned.entry
        await self.committer.commit(part, final)
        self.client.brake.progress()
        verified = Check(entry.checksum).verifiable
        reason = "" if entry.md5 is not None else what_was_checked(entry)
        return self._report(finished(planned, "ok", reason, received=received, verified=verified))

    async def _reject(self, planned: PlannedFile, download: Download, problem: str) -> None:
        """A download that failed its size or checksum check: counted as a fault, its bytes taken back from the
        progress, its part discarded."""
        self.client.fault(IntegrityError(problem))
        self.sink.emit(FileAdvanced(planned.path, -download.undone))
        await download.discard()


def present(planned: PlannedFile, final: Path) -> bool:
    """A quick look (one stat): is there a regular file of the record's size, and a checksum to hash it for?"""
    entry = planned.entry
    try:
        info = final.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and entry.size == info.st_size and Check(entry.checksum).verifiable


def already_there(planned: PlannedFile, final: Path) -> bool:
    """A file already at the final name with the record's checksum is adopted (hashed once; blocking)."""
    check = Check(planned.entry.checksum)
    return check.verifiable and check.of_file(final).problem() is None
