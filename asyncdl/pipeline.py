"""The run: crawl -> plan -> bounded worker pool -> summary, in one anyio task group.

Stages talk through bounded memory streams, so the first file downloads while pages are still being
fetched and memory stays flat however large the selection. A failed file is a line in the summary,
never the end of the run; only fatal errors (disk full, a refused token) stop everything.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from asyncdl.archive import ARCHIVE_LIMIT, PlannedRecord
from asyncdl.committer import Committer
from asyncdl.config import Config
from asyncdl.crawl import Crawler
from asyncdl.errors import unwrap
from asyncdl.events import FileQueued, Notice, NullSink, ProgressSink, RateLimitPaused
from asyncdl.governor import PauseNotice
from asyncdl.http import Client
from asyncdl.invenio import Selection
from asyncdl.models import Record
from asyncdl.plan import DEFAULT_LAYOUT, Filters, Layout, PlannedFile, SkippedFile
from asyncdl.transfer import Transfer, TransferResult

Job = PlannedFile | PlannedRecord
RECORD_BUFFER = 32
JOB_BUFFER = 256


KEEP = 10_000  # results, filtered files and notes kept in full; beyond, only counted


@dataclass
class RunSummary:
    """What a run did: exact counts, and the first ``KEEP`` results of each kind (memory stays flat)."""

    counts: Counter[str] = field(default_factory=Counter)
    # long lists stay out of repr(): asyncio formats a finished task's result, and these hold thousands
    results: list[TransferResult] = field(default_factory=list, repr=False)
    filtered: list[SkippedFile] = field(default_factory=list, repr=False)
    planned: list[PlannedFile] = field(default_factory=list, repr=False)
    inaccessible: list[tuple[str, str]] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)
    planned_bytes: int = 0
    bytes_received: int = 0
    records: int = 0
    requests: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0

    def add(self, result: TransferResult) -> None:
        self.counts[result.outcome] += 1
        self.bytes_received += result.bytes_received
        if self.counts[result.outcome] <= KEEP:
            self.results.append(result)

    def _kept(self, outcome: str) -> list[TransferResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def ok(self) -> list[TransferResult]:
        """Files downloaded and verified (the first KEEP; ``counts["ok"]`` has them all)."""
        return self._kept("ok")

    @property
    def skipped(self) -> list[TransferResult]:
        """Files already there and verified (the first KEEP)."""
        return self._kept("skipped")

    @property
    def failed(self) -> list[TransferResult]:
        """Files that failed, with their reasons (the first KEEP)."""
        return self._kept("failed")

    @property
    def exit_code(self) -> int:
        """1 when a file failed or a selected record's files could not be had; else 0."""
        return 1 if self.counts["failed"] or self.inaccessible else 0


class Run:
    """One mirror run; see :func:`mirror`."""

    def __init__(self, selection: Selection, dest: Path, config: Config, *, layout: str = DEFAULT_LAYOUT,
                 filters: Filters | None = None, dry_run: bool = False, sink: ProgressSink | None = None,
                 on_plan: Callable[[PlannedFile], None] | None = None, archive: bool = False) -> None:
        self.selection = selection
        self.dest = dest
        self.config = config
        self.layout = Layout(layout)
        self.filters = filters or Filters()
        self.dry_run = dry_run
        self.sink = sink or NullSink()
        self.on_plan = on_plan
        self.archive = archive
        self.summary = RunSummary()

    def _on_pause(self, notice: PauseNotice) -> None:
        self.sink.emit(RateLimitPaused(self.config.base_url, notice.bucket, notice.seconds, notice.remaining,
                                       notice.limit))

    async def execute(self) -> RunSummary:
        began = time.monotonic()
        if not self.dry_run:
            self.dest.mkdir(parents=True, exist_ok=True)
        async with Client(self.config, on_pause=self._on_pause) as client:
            records_send, records_receive = anyio.create_memory_object_stream[Record](RECORD_BUFFER)
            jobs_send, jobs_receive = anyio.create_memory_object_stream[Job](JOB_BUFFER)
            committer = Committer()
            transfer = Transfer(client, self.config, self.dest, sink=self.sink, committer=committer)
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(Crawler(client, self.config, sink=self.sink).run, self.selection,
                                     records_send)
                    group.start_soon(self._plan, records_receive, jobs_send)
                    group.start_soon(committer.run)
                    async with jobs_receive, anyio.create_task_group() as workers:
                        for _ in range(max(1, self.config.concurrency)):
                            workers.start_soon(self._work, jobs_receive.clone(), transfer)
                    committer.close()
            except BaseExceptionGroup as error:
                raise unwrap(error) from None
            finally:
                self.summary.requests = client.stats.requests
                self.summary.rate_limited = client.throttled
                self.summary.elapsed = time.monotonic() - began
        return self.summary

    async def _plan(self, records: ObjectReceiveStream[Record], jobs: ObjectSendStream[Job]) -> None:
        async with records, jobs:
            async for record in records:
                self.summary.records += 1
                if not record.files_listed and not record.files:
                    reason = f"files not accessible ({record.access_right or 'restricted'})"
                    self.summary.inaccessible.append((record.id, reason))
                    self.sink.emit(Notice(f"record {record.id}: {reason}"))
                planned, skipped = self.layout.plan(record, record.files, self.filters)
                lean = dataclasses.replace(record, metadata={})  # what the summary keeps: no raw JSON
                self.summary.counts["filtered"] += len(skipped)
                self.summary.filtered += [dataclasses.replace(s, record=lean)
                                          for s in skipped[: max(0, KEEP - len(self.summary.filtered))]]
                for item in planned:
                    self.summary.counts["planned"] += 1
                    self.summary.planned_bytes += item.entry.size or 0
                    for note in item.notes:
                        self.summary.counts["notes"] += 1
                        if len(self.summary.notes) < KEEP:
                            self.summary.notes.append(note)
                        self.sink.emit(Notice(note, level="info"))
                    self.sink.emit(FileQueued(item.path, item.entry.size))
                    if self.on_plan is not None:
                        self.on_plan(item)
                    if self.dry_run:
                        if len(self.summary.planned) < KEEP:
                            self.summary.planned.append(dataclasses.replace(item, record=lean))
                    elif not self._via_archive(planned):
                        await jobs.send(item)
                if not self.dry_run and self._via_archive(planned):
                    await jobs.send(PlannedRecord(record, tuple(planned)))

    def _via_archive(self, planned: list[PlannedFile]) -> bool:
        """--archive: several files whose total Zenodo's files-archive serves (one request, not many)."""
        total = sum(p.entry.size or 0 for p in planned)
        return self.archive and len(planned) > 1 and total <= ARCHIVE_LIMIT

    async def _work(self, jobs: ObjectReceiveStream[Job], transfer: Transfer) -> None:
        async with jobs:
            async for item in jobs:
                if isinstance(item, PlannedRecord):
                    for result in await transfer.fetch_record_archive(item):
                        self.summary.add(result)
                else:
                    self.summary.add(await transfer.fetch(item))


async def mirror(selection: Selection, dest: str | Path, config: Config | None = None, *,
                 layout: str = DEFAULT_LAYOUT, include: Sequence[str] = (), exclude: Sequence[str] = (),
                 max_file_size: int | None = None, dry_run: bool = False,
                 sink: ProgressSink | None = None, on_plan: Callable[[PlannedFile], None] | None = None,
                 archive: bool = False) -> RunSummary:
    """Download every file of ``selection`` into ``dest``, verified; returns what happened.

    ``on_plan`` is called with every file as it is planned (a dry run's listing, streamed); ``archive``
    fetches records under Zenodo's 300 MB archive cap as one ZIP each (every member md5-checked).
    """
    filters = Filters(tuple(include), tuple(exclude), max_file_size)
    run = Run(selection, Path(dest), config or Config(), layout=layout, filters=filters, dry_run=dry_run,
              sink=sink, on_plan=on_plan, archive=archive)
    return await run.execute()


def mirror_sync(selection: Selection, dest: str | Path, config: Config | None = None, *,
                layout: str = DEFAULT_LAYOUT, include: Sequence[str] = (), exclude: Sequence[str] = (),
                max_file_size: int | None = None, dry_run: bool = False,
                sink: ProgressSink | None = None, archive: bool = False) -> RunSummary:
    """The synchronous form of :func:`mirror`."""
    return anyio.run(functools.partial(mirror, selection, dest, config, layout=layout, include=include,
                                       exclude=exclude, max_file_size=max_file_size, dry_run=dry_run, sink=sink,
                                       archive=archive))
