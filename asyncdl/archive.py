"""``--archive``: a record's files through one files-archive request instead of one request per file.

Zenodo streams the ZIP with no Content-Length, no Range and no checksum of its own, so the archive
itself can be neither resumed nor verified. asyncdl therefore treats it only as a carrier: it is saved
to a temporary file, every member is unpacked to its part file and checked against the md5 the record
gives, and only then committed. A member that is missing or wrong is fetched on its own instead.
Under a rate limit this turns a record of fifty small files into one request instead of fifty.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import anyio

from asyncdl import invenio
from asyncdl.fsutil import HASH_BLOCK
from asyncdl.http import Client
from asyncdl.models import Record
from asyncdl.plan import PlannedFile
from asyncdl.store.names import part_of

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
        with zip_path.open("wb") as stream:
            async for chunk in response.chunks(chunk_size):
                await anyio.to_thread.run_sync(stream.write, chunk)


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
    with archive.open(info) as source, part.open("wb") as target:
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
