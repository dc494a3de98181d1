"""``--archive``: a record's files through one files-archive request instead of one request per file.

Zenodo streams the ZIP with no Content-Length, no Range and no checksum of its own, so the archive
itself can be neither resumed nor verified. asyncdl therefore treats it only as a carrier: it is saved
to a temporary file, every member is unpacked to its part file and checked against the md5 the record
gives, and only then committed. A member that is missing or wrong is fetched on its own instead.
Under a rate limit this turns a record of fifty small files into one request instead of fifty.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from asyncdl import invenio
from asyncdl.errors import AsyncdlError
from asyncdl.events import FileAdvanced, FileStarted, Notice
from asyncdl.fsutil import HASH_BLOCK, SafeTargets, open_fresh
from asyncdl.http import Client
from asyncdl.models import Record
from asyncdl.plan import PlannedFile
from asyncdl.store.names import archive_temporary, part_of
from asyncdl.transfer.context import Context
from asyncdl.transfer.result import TransferResult, finished
from asyncdl.transfer.single import PIPELINE_DEPTH
from asyncdl.transfer.writer import DiskWriter

ARCHIVE_LIMIT = 300_000_000  # Zenodo answers 400 for records over this total


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """A record whose planned files should come through its files-archive."""

    record: Record
    files: tuple[PlannedFile, ...]


def archive_url(record: Record, base_url: str) -> str:
    host = invenio.base_of(record.api_url) or base_url
    return f"{invenio.record_url(host, record.id)}/files-archive"


async def fetch_archive(client: Client, record: Record, zip_path: Path, *, base_url: str, chunk_size: int) -> None:
    """Stream the record's ZIP into ``zip_path`` (raises asyncdl errors: 400 over the cap, 403...)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    async with client.stream(archive_url(record, base_url)) as response:
        with open_fresh(zip_path) as stream:
            async with DiskWriter(depth=PIPELINE_DEPTH) as writer:
                async for chunk in response.chunks(chunk_size):
                    await writer.submit(functools.partial(stream.write, chunk))


def unpack_member(archive: zipfile.ZipFile, planned: PlannedFile, final: Path) -> Path | None:
    """Unpack one member to its part file if it matches the record's size and md5 (blocking).
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
    digest = hashlib.md5()
    with archive.open(info) as source, open_fresh(part) as target:  # never through a planted symlink
        while block := source.read(HASH_BLOCK):
            digest.update(block)
            target.write(block)
    if entry.md5 is not None and digest.hexdigest() != entry.md5:
        part.unlink(missing_ok=True)
        return None
    return part


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.parent.exists() and not any(path.parent.iterdir()):
        shutil.rmtree(path.parent, ignore_errors=True)


async def fetch_record_archive(context: Context, item: PlannedRecord, *, dest: Path, targets: SafeTargets,
                               present: Callable[[PlannedFile, Path], bool],
                               fetch_one: Callable[[PlannedFile], Awaitable[TransferResult]],
                               commit: Callable[[Path, Path], Awaitable[None]]) -> list[TransferResult]:
    """A record's files through its files-archive, each member checked against the record's md5; whatever
    the archive cannot give (over the cap, missing, wrong, present or partial already) is ``fetch_one``'s."""
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
    if len(wanted) < 2:
        return results + [await fetch_one(planned) for planned, _ in wanted]
    zip_path = archive_temporary(dest, item.record.id)
    try:
        await fetch_archive(context.client, item.record, zip_path, base_url=context.config.base_url,
                            chunk_size=context.config.chunk_size)
        archive = await anyio.to_thread.run_sync(zipfile.ZipFile, zip_path)
    except (AsyncdlError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, AsyncdlError) and exc.fatal:
            raise
        context.sink.emit(Notice(f"record {item.record.id}: no archive ({exc}); fetching its files one by one",
                                 level="info"))
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(discard, zip_path)
        return results + [await fetch_one(planned) for planned, _ in wanted]
    try:
        for planned, final in wanted:
            part = await anyio.to_thread.run_sync(unpack_member, archive, planned, final)
            if part is None:
                results.append(await fetch_one(planned))
                continue
            await commit(part, final)
            context.client.brake.progress()
            size = planned.entry.size
            context.sink.emit(FileStarted(planned.path, size, 0))
            context.sink.emit(FileAdvanced(planned.path, size or 0))
            result = finished(planned, "ok", "from the record's ZIP archive; md5 verified", received=size or 0,
                              verified=True)
            context.sink.emit(result)
            results.append(result)
    finally:
        archive.close()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(discard, zip_path)
    return results
