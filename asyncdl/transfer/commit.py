"""Batched commits: finished parts made durable and renamed to their final names, many per thread hop.

A worker hands over (part, final) and waits; the committer takes every commit waiting at that moment,
and in one worker thread fsyncs each part, renames it, then fsyncs each folder touched once. Order per
file is unchanged (write, fsync, rename, folder fsync, then the caller records "done"); a thousand small
files cost a few thread hand-offs instead of a thousand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from asyncdl.errors import translate_os_error
from asyncdl.fsutil import commit as commit_one
from asyncdl.fsutil import durable_rename, fsync_dir
from asyncdl.streams import batches

MAX_BATCH = 256


@dataclass
class _Commit:
    part: Path
    final: Path
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class Committer:
    """``async with`` a task group: ``group.start_soon(committer.run)``; ``await committer.commit(...)``;
    ``committer.close()`` when no more commits will come. ``Committer(batched=False)`` commits each file in
    its own thread hop, for callers without a task group (``verify --repair``)."""

    def __init__(self, *, batched: bool = True) -> None:
        self.batched = batched
        self._send, self._receive = anyio.create_memory_object_stream[_Commit](max_buffer_size=math.inf)

    async def commit(self, part: Path, final: Path) -> None:
        """Make ``part`` durable and give it its final name; raises what the file system raised."""
        if not self.batched:
            try:
                await anyio.to_thread.run_sync(commit_one, part, final)
            except OSError as exc:
                raise translate_os_error(exc, final) from exc
            return
        job = _Commit(part, final)
        await self._send.send(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error

    def close(self) -> None:
        self._send.close()

    async def run(self) -> None:
        async for batch in batches(self._receive, MAX_BATCH):
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(commit_batch, batch)
            for job in batch:
                job.done.set()


def commit_batch(batch: list[_Commit]) -> None:
    """fsync, rename, then fsync each folder once (blocking; errors are kept per job)."""
    folders: set[Path] = set()
    for job in batch:
        try:
            durable_rename(job.part, job.final)
            folders.add(job.final.parent)
        except OSError as exc:
            job.error = translate_os_error(exc, job.final)
    for folder in folders:
        fsync_dir(folder)
