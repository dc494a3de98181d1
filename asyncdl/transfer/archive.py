"""A record's files through one files-archive request instead of one request per file (``--archive``;
:mod:`.archive_choice` says when).

Zenodo streams the ZIP with no Content-Length, no Range and no checksum of its own, so the archive
itself can be neither resumed nor verified. asyncdl therefore treats it only as a carrier: it is saved
to a temporary file, every member is unpacked to its part file and checked against the checksum the
record gives, and only then committed. An archive that breaks off is asked for once more; after a second break,
or a refusal (over the host's cap, no archive endpoint), the files are fetched one by one. A member that
is missing or wrong is fetched on its own.
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from asyncdl.digests import HASH_BLOCK, Check
from asyncdl.errors import AsyncdlError, IntegrityError, RemoteError, ShortBodyError
from asyncdl.events import ArchiveUsed, FileAdvanced, FileStarted, Notice
from asyncdl.fsutil import SafeTargets, open_fresh
from asyncdl.http import Client
from asyncdl.models import Record
from asyncdl.plan import PlannedFile
from asyncdl.store.names import archive_temporary, part_of
from asyncdl.transfer.context import Context
from asyncdl.transfer.result import TransferResult, finished
from asyncdl.transfer.single import PIPELINE_DEPTH
from asyncdl.transfer.writer import DiskWriter

ARCHIVE_TRIES = 2  # an archive that breaks off is asked for once more, then its files come one by one


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """A record whose planned files should come through its files-archive."""

    record: Record
    files: tuple[PlannedFile, ...]


async def fetch_archive(client: Client, url: str, zip_path: Path, *, chunk_size: int) -> None:
    """Stream the record's ZIP into ``zip_path`` (raises asyncdl errors: 400 over the cap, 403...)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    async with client.download(url, pacer=client.file_pacer()) as response:
        with open_fresh(zip_path) as stream:
            async with DiskWriter(depth=PIPELINE_DEPTH) as writer:
                async for chunk in response.chunks(chunk_size):
                    await writer.submit(functools.partial(stream.write, chunk))


def unpack_member(archive: zipfile.ZipFile, planned: PlannedFile, final: Path) -> Path | None:
    """Unpack one member to its part file if it matches the record's size and checksum (blocking).
    Returns the part path to commit, or None when the member is missing or wrong."""
    entry = planned.entry
    try:
        info = archive.getinfo(entry.key)
    except KeyError:
        return None
    if entry.size is not None and info.file_size != entry.size:
        return None
    part = part_of(final)
    part.parent.mkdir(parents=True, exist_ok=True)
    digest = Check(entry.checksum).new()
    try:
        with archive.open(info) as source, open_fresh(part) as target:  # never through a planted symlink
            while block := source.read(HASH_BLOCK):
                digest.update(block)
                target.write(block)
    except (zipfile.BadZipFile, EOFError, zlib.error):  # a bad CRC, a damaged header: the member is wrong
        part.unlink(missing_ok=True)
        return None
    if digest.problem() is not None:
        part.unlink(missing_ok=True)
        return None
    return part


def discard(path: Path) -> None:
    """Remove a record's ZIP; its folder stays: other archives (of this run, of other shards) use it."""
    path.unlink(missing_ok=True)


async def fetch_record_archive(context: Context, item: PlannedRecord, *, dest: Path, targets: SafeTargets,
                               present: Callable[[PlannedFile, Path], bool],
                               fetch_one: Callable[[PlannedFile], Awaitable[TransferResult]],
                               commit: Callable[[Path, Path], Awaitable[None]]) -> list[TransferResult]:
    """A record's files through its files-archive, each member checked against the record's checksum; whatever
    the archive cannot give (refused, broken twice, missing, wrong, present or partial already) is
    ``fetch_one``'s."""
    results: list[TransferResult] = []
    wanted: list[tuple[PlannedFile, Path]] = []
    for planned in item.files:
        try:
            final = targets.target(planned.path)
        except AsyncdlError:
            results.append(await fetch_one(planned))
            continue
        if present(planned, final) or part_of(final).is_file():
            results.append(await fetch_one(planned))  # present or partial: checked and resumed alone
        else:
            wanted.append((planned, final))
    record = item.record
    if not context.archives.worth_it(record, [planned for planned, _ in wanted]):
        return results + [await fetch_one(planned) for planned, _ in wanted]
    zip_path = archive_temporary(dest, record.id)
    try:
        archive, tries = await _fetch_zip(context, record, zip_path)
        if archive is None:
            context.sink.emit(ArchiveUsed(record.id, 0, tries))
            return results + [await fetch_one(planned) for planned, _ in wanted]
        try:
            members, names = 0, set(archive.namelist())
            for planned, final in wanted:
                part = await anyio.to_thread.run_sync(unpack_member, archive, planned, final)
                if part is None:
                    if planned.entry.key in names:  # there, but not the record's file
                        context.client.fault(IntegrityError(f"{planned.path}: the archive's member does not "
                                                            "match the record's size or checksum"))
                    results.append(await fetch_one(planned))
                    continue
                await commit(part, final)
                members += 1
                results.append(_from_archive(context, planned))
            context.sink.emit(ArchiveUsed(record.id, members, tries))
        finally:
            archive.close()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(discard, zip_path)
    return results


async def _fetch_zip(context: Context, record: Record, zip_path: Path) -> tuple[zipfile.ZipFile | None, int]:
    """The record's archive, opened, and the requests it took; None when it was refused or broke off twice."""
    url = context.archives.url(record)
    tries = 0
    while True:
        tries += 1
        try:
            await fetch_archive(context.client, url, zip_path, chunk_size=context.config.chunk_size)
            return await anyio.to_thread.run_sync(zipfile.ZipFile, zip_path), tries
        except (AsyncdlError, zipfile.BadZipFile, OSError) as exc:
            if isinstance(exc, AsyncdlError) and exc.fatal:
                raise
            if isinstance(exc, RemoteError):
                context.archives.refused(record, exc)  # a cap or a missing endpoint is learnt for the host
            if not isinstance(exc, AsyncdlError):  # no central directory: the ZIP ended early (no length to tell)
                exc = ShortBodyError(f"record {record.id}'s archive: {exc}", position=0, size=0)
            if exc.retryable:  # counted among the faults met, as a file's would be
                context.client.fault(exc)
            again = exc.retryable and tries < ARCHIVE_TRIES  # a 400, 403 or 404 is not asked again
            then = "asking once more" if again else "fetching its files one by one"
            context.sink.emit(Notice(f"record {record.id}: no archive ({exc}); {then}", level="info"))
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(discard, zip_path)
            if not again:
                return None, tries


def _from_archive(context: Context, planned: PlannedFile) -> TransferResult:
    """Report a member committed from the archive (it counts as progress for the run's brake)."""
    context.client.brake.progress()
    size = planned.entry.size
    context.sink.emit(FileStarted(planned.path, size, 0))
    context.sink.emit(FileAdvanced(planned.path, size or 0))
    check = Check(planned.entry.checksum)
    told = check.describe() if check.verifiable else check.unverified(size)
    result = finished(planned, "ok", f"from the record's ZIP archive; {told}", received=size or 0,
                      verified=check.verifiable)
    context.sink.emit(result)
    return result
