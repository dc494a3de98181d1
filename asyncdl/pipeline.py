"""The run: crawl -> plan -> bounded worker pool -> summary, in one anyio task group.

Stages talk through bounded memory streams, so the first file downloads while pages are still being
fetched and memory stays flat however large the selection. A failed file is a line in the summary,
never the end of the run; only fatal errors (disk full, a refused token) stop everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream

from asyncdl import invenio
from asyncdl.accounting import Accounting, RunSummary
from asyncdl.config import Config
from asyncdl.crawl import Crawler
from asyncdl.digests import Check
from asyncdl.errors import EXIT_INACCESSIBLE, EXIT_OK, JournalError, LocalError, UnsafePathError, UsageError, unwrap
from asyncdl.events import (
    CrawlDone,
    Fanout,
    FileFiltered,
    FileQueued,
    FileUnavailable,
    Notice,
    NullSink,
    PathNote,
    PlanDone,
    ProgressSink,
    RecordInaccessible,
    RecordPlanned,
)
from asyncdl.fsutil import SafeTargets, fresh_opener
from asyncdl.governor import GovernorStats
from asyncdl.http import Client
from asyncdl.invenio import Selection
from asyncdl.models import Record
from asyncdl.notebook import NotebookProgress, in_notebook
from asyncdl.options import RunOptions
from asyncdl.plan import Layout, PlannedFile, check_relayout
from asyncdl.redact import redact
from asyncdl.shared_crawl import SharedCrawl
from asyncdl.store.journal import (
    Journal,
    JournalRecorder,
    JournalView,
    Moved,
    Planned,
    RecordSeen,
    SelectionCrawled,
)
from asyncdl.store.lock import RunLock
from asyncdl.store.merged import FinishedCopies, close_out
from asyncdl.store.names import STATE_DIR, journal_path, part_of
from asyncdl.store.records import record_to_json
from asyncdl.transfer import Committer, PlannedRecord, Transfer
from asyncdl.transfer.copies import Copies, LinkedFile, Source
from asyncdl.transfer.prior import Prior, look_back, stated_checksum
from asyncdl.transfer.result import finished, unavailable_reason
from asyncdl.tuning import START, LentSlots, Tuner

Job = PlannedFile | PlannedRecord | LinkedFile
LINKS_WAITING = 1000  # files waiting for their source at once (the plan waits beyond)
RECORD_BUFFER = 32
PLAN_BATCH = 64  # records that arrived together are looked back at in one worker-thread call
STORED_BATCH = 500  # records read back from the journal at once
JOB_BUFFER = 256


class Run:
    """One mirror run; see :func:`mirror`."""

    def __init__(self, selection: Selection, dest: Path, config: Config, options: RunOptions | None = None, *,
                 sink: ProgressSink | None = None, on_plan: Callable[[PlannedFile], None] | None = None,
                 accounting: Accounting | None = None) -> None:
        options = options or RunOptions()
        self.selection = selection
        self.dest = dest
        self.config = config
        self.options = options
        self.layout = Layout(options.layout)
        self.filters = options.filters
        self.named_files: dict[str, set[str]] = {}  # record id -> the keys file URLs named (that file alone)
        for text in selection.identifiers:
            if (named := invenio.named_file(text)) is not None:
                self.named_files.setdefault(named[0], set()).add(named[1])
        self.dry_run = options.dry_run
        self.sink = sink or NullSink()
        self.on_plan = on_plan
        self.refresh = options.refresh
        self.since_last = options.since_last
        self.save_metadata = options.save_metadata
        shard = options.shard
        self.shard = shard if shard is not None and shard.count > 1 else None  # 1/1 is the whole selection
        if self.shard is not None and not self.layout.per_record:
            raise UsageError(f"with --shard the layout must have {{id}} in a folder (e.g. '{{year}}/{{id}}/{{key}}'), "
                             f"not {options.layout!r}: files of records in different shards could claim the same "
                             "path, and no shard sees the others' records to settle it")
        self.accounting = accounting or Accounting()
        self.transfers = anyio.CapacityLimiter(config.concurrency or START)  # files downloading at once
        self.lent = LentSlots(self.transfers) if config.adaptive_segments else None  # large files' extra slots
        self.tuner = Tuner(self.set_concurrency, self._all_busy, lambda event: self.events.emit(event),
                           ceiling=config.host_connections) if config.adaptive else None
        self.events: ProgressSink = Fanout(self.accounting, *self._tuning(), self.sink)  # the journal joins them
        self.journal: Journal | None = None
        self.checkers = anyio.CapacityLimiter(max(1, config.checkers))  # files being hashed at once
        self.links = anyio.CapacityLimiter(LINKS_WAITING)
        self.copies: Copies | None = None  # the sources of stored files planned twice (a real run only)
        self._finished_copies: FinishedCopies | None = None  # every journal of DEST, for finished copies
        self._scope: anyio.CancelScope | None = None  # every stage: an interrupt cancels it (after the grace)
        self._producing: anyio.CancelScope | None = None  # records and plan: an interrupt cancels them at once
        self._feeding: anyio.CancelScope | None = None  # the dispatcher taking new jobs: cancelled at once too
        self._grace: anyio.CancelScope | None = None  # the grace period's timer, once an interrupt started it
        self._group: anyio.abc.TaskGroup | None = None
        self._records_from_journal = False  # records read back from the journal need not be written again
        self._past: dict[str, Prior] = {}  # the record being planned: what earlier runs left of its files
        self.client: Client | None = None  # once the run talks to servers (its governors, for the metrics)

    @property
    def selection_key(self) -> str:
        """Identifies the selection (not the token, not the layout) across runs."""
        described = json.dumps([self.config.base_url, sorted(self.selection.identifiers), self.selection.community,
                                self.selection.owner, self.selection.query, self.selection.all_versions,
                                self.selection.title_regex])
        return hashlib.sha1(described.encode()).hexdigest()

    def describe(self) -> str:
        """The selection in words, for the journal and the lock (never the token)."""
        parts = [redact(identifier) for identifier in self.selection.identifiers]  # a URL may carry a token
        for name in ("community", "owner", "query", "title_regex"):
            value = getattr(self.selection, name)
            if value:
                parts.append(f"--{name.replace('_', '-')} {value!r}")
        if self.selection.all_versions:
            parts.append("--all-versions")
        described = f"mirror {' '.join(parts)} from {self.config.base_url} into {self.dest}"
        return described + (f" (shard {self.shard})" if self.shard else "")

    def _mine(self, record_id: str) -> bool:
        """Whether this run mirrors the record (always, unless it is a shard)."""
        return self.shard is None or self.shard.includes(record_id)

    @property
    def summary(self) -> RunSummary:
        """What the run did so far (the accounting's summary)."""
        return self.accounting.summary

    def interrupt(self, grace: float = 0.0) -> None:
        """Stop scheduling work: no file starts any more; the files in flight may finish for ``grace``
        seconds, then every transfer stops at a consistent point; the state is recorded either way."""
        self.summary.interrupted = True
        for scope in (self._producing, self._feeding):
            if scope is not None:
                scope.cancel()
        if self.copies is not None:
            self.copies.give_up()  # files waiting for a source that will not come now stop waiting
        if grace <= 0 or self._group is None:
            if self._scope is not None:
                self._scope.cancel()
        elif self._grace is None:
            self._grace = anyio.CancelScope()  # made here: the work may end before the timer's task starts
            self._group.start_soon(self._stop_after, self._grace, grace)

    async def _stop_after(self, timer: anyio.CancelScope, grace: float) -> None:
        """The grace period of an interrupt: then whatever is still in flight is stopped."""
        with timer:
            await anyio.sleep(grace)
            self.events.emit(Notice(f"stopping the files still in flight after {grace:g} s (--grace)",
                                    level="info"))
            assert self._scope is not None
            self._scope.cancel()

    async def execute(self) -> RunSummary:
        began = time.monotonic()
        for text in self.selection.identifiers:  # a typo is reported before anything is written in DEST
            invenio.parse_identifier(text)
        try:
            if self.dry_run:
                placed, finished_files = await anyio.to_thread.run_sync(read_only_layout, journal_path(self.dest))
                check_relayout(placed, finished_files, self.options.layout, relayout=self.options.relayout)
                await self._stages()
                return self.summary
            self.dest.mkdir(parents=True, exist_ok=True)
            state = self.dest / STATE_DIR
            with contextlib.ExitStack() as stack:
                locks = [stack.enter_context(RunLock(state, self.describe(), shared=self.shard is not None))]
                if self.shard is not None:
                    locks.append(stack.enter_context(RunLock(state, self.describe(), f"lock{self.shard.suffix}")))
                if not all(lock.supported for lock in locks):
                    self.events.emit(Notice(f"the file system of {self.dest} refuses locks (flock): nothing stops "
                                          "a second run on this destination (or shard) from running beside this one"))
                await self._journaled()
            return self.summary
        finally:
            self.summary.elapsed = time.monotonic() - began

    async def _journaled(self) -> None:
        """The run with its journal: reconcile, run, then record partial files, the outcome and a manifest."""
        suffix = self.shard.suffix if self.shard else ""
        journal = self.journal = await anyio.to_thread.run_sync(Journal, journal_path(self.dest, suffix))
        began = time.time()
        try:
            placed, finished_files = await anyio.to_thread.run_sync(journal.layout_placed)
            check_relayout(placed, finished_files, self.options.layout, relayout=self.options.relayout)
            for change in await anyio.to_thread.run_sync(journal.reconcile, self.dest):
                self.events.emit(Notice(change, level="info"))
            await anyio.to_thread.run_sync(journal.begin_run, self.describe(), self.selection_key, self.options.layout)
            self._finished_copies = await anyio.to_thread.run_sync(FinishedCopies, journal, self.dest)
            for problem in self._finished_copies.unreadable:
                self.events.emit(Notice(f"{problem}: files it finished are fetched again, not linked"))
            self.copies = Copies(self._finished_copy)
            self.events = Fanout(self.accounting, *self._tuning(), JournalRecorder(journal, self.dest), self.copies,
                                 self.sink)
            outcome = "error"
            try:
                async with anyio.create_task_group() as writer:
                    writer.start_soon(journal.run_writer)
                    try:
                        await self._stages()
                    finally:
                        journal.close_writer()
                outcome = ("interrupted" if self.summary.interrupted
                           else {EXIT_OK: "complete", EXIT_INACCESSIBLE: "complete except unavailable"}.get(
                               self.summary.exit_code, "incomplete"))
            except BaseExceptionGroup as error:
                raise unwrap(error) from None
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self._wrap_up(journal, outcome, began, suffix)
                    except LocalError as exc:
                        if outcome != "error":
                            raise
                        # the run is already stopping with its own error (a full disk, say): that one is
                        # reported; this is a consequence of it
                        self.events.emit(Notice(f"the journal's end-of-run bookkeeping was skipped: {exc}",
                                              level="info"))
        finally:
            if self._finished_copies is not None:
                self._finished_copies.close()
            journal.close()

    async def _wrap_up(self, journal: Journal, outcome: str, began: float, suffix: str) -> None:
        """Record partial files and the run's outcome; then, over every journal in DEST, remove orphan parts
        (after a run that planned every file) and rewrite the manifest."""
        await anyio.to_thread.run_sync(journal.note_partials, self.dest)
        await anyio.to_thread.run_sync(functools.partial(
            journal.end_run, outcome=outcome, ok=self.summary.counts["ok"], failed=self.summary.counts["failed"],
            nbytes=self.summary.bytes_received, seconds=time.time() - began))
        since = began if outcome in ("complete", "complete except unavailable", "incomplete") else None
        try:
            changes = await anyio.to_thread.run_sync(
                functools.partial(close_out, self.dest, f"manifest{suffix}", tidy_since=since))
        except (UsageError, JournalError) as exc:  # another shard's unreadable journal: a warning, not a failure
            self.events.emit(Notice(f"manifest.csv not written: {exc}"))
            if since is not None:
                self.events.emit(Notice(f"part files not tidied: {exc}"))
            return
        for change in changes:
            self.events.emit(Notice(change, level="info"))

    async def _stages(self) -> None:
        """Records -> plan -> workers, in one task group that an interrupt cancels."""
        async with Client(self.config, sink=self.events) as client:
            self.client = client
            records_send, records_receive = anyio.create_memory_object_stream[Record](RECORD_BUFFER)
            jobs_send, jobs_receive = anyio.create_memory_object_stream[Job](JOB_BUFFER)
            committer = Committer()
            transfer = Transfer(client, self.config, self.dest, committer=committer, archive=self.options.archive,
                                spare=self.lent)
            try:
                with anyio.CancelScope() as self._scope:
                    if self.summary.interrupted:
                        self._scope.cancel()
                    async with anyio.create_task_group() as group:
                        self._group = group
                        group.start_soon(self._produce, client, records_send, records_receive, jobs_send, transfer)
                        group.start_soon(committer.run)
                        tuning = anyio.CancelScope()  # the tuner's, ended with the downloads
                        if self.tuner is not None:
                            group.start_soon(self._tune, tuning)
                        await self._dispatch(jobs_receive, transfer)
                        tuning.cancel()
                        committer.close()
                        if self._grace is not None:  # everything in flight finished within the grace
                            self._grace.cancel()
            except BaseExceptionGroup as error:
                raise unwrap(error) from None

    async def _produce(self, client: Client, records_send: ObjectSendStream[Record],
                       records_receive: MemoryObjectReceiveStream[Record], jobs_send: ObjectSendStream[Job],
                       transfer: Transfer) -> None:
        """The records and their plan, under a scope of their own (an interrupt stops them at once)."""
        with anyio.CancelScope() as self._producing:
            async with anyio.create_task_group() as group:
                group.start_soon(self._records, client, records_send)
                group.start_soon(self._plan, records_receive, jobs_send, transfer)
        await jobs_send.aclose()  # cancelled before the plan took its stream: the dispatcher must still end

    async def _records(self, client: Client, send: ObjectSendStream[Record]) -> None:
        """The selection's records: from the journal when an earlier crawl of it completed (no request),
        else crawled; with --since-last only records updated since then are crawled."""
        stored = None
        if self.journal is not None and not self.refresh:
            stored = await anyio.to_thread.run_sync(self.journal.selection_ids, self.selection_key)
        if stored is None and self.shard is not None and not self.dry_run:
            shared = SharedCrawl(client, self.config, self.dest / STATE_DIR, self.selection_key, sink=self.events,
                                 description=self.describe())
            await shared.run(self.selection, send)
            if not shared.shortfalls:
                self._remember(shared.delivered)
            return
        if stored is None:
            crawler = Crawler(client, self.config, sink=self.events)
            await crawler.run(self.selection, send)
            if not crawler.shortfalls:  # a short crawl is not trusted as the selection's list next time
                self._remember(crawler.sent_ids)  # only reached when the crawl completed
            return
        self._records_from_journal = not self.since_last
        if not self.since_last:
            self.events.emit(Notice(f"{len(stored)} records known from an earlier crawl of this selection "
                                  "(--refresh crawls again, --since-last looks for updates)", level="info"))
            async with send:
                await self._send_stored(stored, send)
            self.events.emit(CrawlDone(records=len(stored), pages=0))
            return
        await self._updated_since(client, send, stored)

    async def _send_stored(self, ids: list[str], send: ObjectSendStream[Record]) -> None:
        """The records of ``ids`` as the journal keeps them, read in batches in a worker thread (memory stays
        flat however many there are; their API JSON is read only for --save-metadata)."""
        assert self.journal is not None
        for start in range(0, len(ids), STORED_BATCH):
            batch = await anyio.to_thread.run_sync(functools.partial(
                self.journal.stored_records, ids[start:start + STORED_BATCH], raw=self.save_metadata))
            for record in batch:
                await send.send(record)

    async def _updated_since(self, client: Client, send: ObjectSendStream[Record], stored: list[str]) -> None:
        """--since-last: crawl the records updated since the last complete crawl, keep the others as known."""
        assert self.journal is not None
        since = self.journal.last_success(self.selection_key) or 0.0
        stamp = datetime.fromtimestamp(since - 3600, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")  # an hour of slack
        query = invenio.selection_query(self.selection)
        narrowed = dataclasses.replace(self.selection, owner=None, identifiers=(),
                                       query=invenio.combine_query(query, f'updated:["{stamp}" TO *]'))
        fresh_send, fresh_receive = anyio.create_memory_object_stream[Record](RECORD_BUFFER)
        updated: dict[str, None] = {}  # the ids, in the order they came
        crawler = Crawler(client, self.config, sink=self.events)
        async with send:
            async with anyio.create_task_group() as group:
                if self.selection.community or query:
                    group.start_soon(crawler.run, narrowed, fresh_send)
                else:
                    fresh_send.close()
                async with fresh_receive:
                    async for record in fresh_receive:
                        updated[record.id] = None
                        await send.send(record)
            await self._send_stored([record_id for record_id in stored if record_id not in updated], send)
        if not crawler.shortfalls:
            self._remember([*updated, *(record_id for record_id in stored if record_id not in updated)])
        self.events.emit(Notice(f"--since-last: {len(updated)} records updated since the last crawl", level="info"))

    def _remember(self, ids: list[str]) -> None:
        """A crawl completed: the journal keeps which records the selection gave (this shard's), for the next run."""
        if self.journal is not None:
            mine = [record_id for record_id in ids if self._mine(record_id)]
            self.journal.send(SelectionCrawled(self.selection_key, self.describe(), json.dumps(mine)))

    async def _plan(self, records: MemoryObjectReceiveStream[Record], jobs: ObjectSendStream[Job],
                    transfer: Transfer) -> None:
        """Plan each record's files; then, for the records that came together (up to PLAN_BATCH), look in one
        worker-thread call at what earlier runs left of their files, and hand the rest to the workers."""
        async with records, jobs:
            async for record in records:
                batch = [record]
                while len(batch) < PLAN_BATCH:
                    try:
                        batch.append(records.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                planned = [(each, await self._plan_record(each, transfer)) for each in batch]
                if self.dry_run:
                    continue
                items = [item for _, eligible in planned for item in eligible]
                if items:
                    assert self.journal is not None and self._finished_copies is not None, "a real run"
                    self._past = await anyio.to_thread.run_sync(look_back, self.journal, self._finished_copies,
                                                                transfer.targets, items)
                for each, eligible in planned:
                    if eligible:
                        await self._dispatch_record(each, eligible, transfer, jobs)
            self.events.emit(PlanDone())  # every record planned: the totals are final

    async def _plan_record(self, record: Record, transfer: Transfer) -> list[PlannedFile]:
        """One record's files as the layout and the filters plan them, each told (queued, filtered, not
        available); the ones to look back at."""
        if not self._mine(record.id):
            return []
        self.events.emit(RecordPlanned(record.id))
        if self.journal is not None and not self._records_from_journal:
            self.journal.send(RecordSeen(record.id, record.conceptrecid, record.title, record.updated,
                                           json.dumps(record_to_json(record))))
        if not record.files_listed and not record.files:
            reason = f"files not accessible ({record.access_right or 'restricted'})"
            self.events.emit(RecordInaccessible(record.id, reason))
            self.events.emit(Notice(f"record {record.id}: {reason}", level="info"))  # told once, at the end
        files = record.files
        # a file URL or RECORD/KEY: that file alone (RECORD a concept id: of the version it gave)
        keys = self.named_files.get(record.id) or self.named_files.get(record.conceptrecid or "")
        if keys is not None:
            for entry in files:
                if entry.key not in keys:
                    self.events.emit(FileFiltered(record.id, entry.key, "not the file named"))
            for key in keys - {entry.key for entry in files}:
                self.events.emit(Notice(f"record {record.id} has no file {key!r}"))
            files = tuple(entry for entry in files if entry.key in keys)
        planned, skipped = self.layout.plan(record, files, self.filters)
        for left_out in skipped:
            self.events.emit(FileFiltered(record.id, left_out.entry.key, left_out.reason))
        if self.save_metadata and planned and not self.dry_run:
            try:
                await save_record_json(transfer.targets, record, planned)
            except UnsafePathError as exc:
                self.events.emit(Notice(f"record {record.id}: metadata not saved: {exc}"))
        eligible: list[PlannedFile] = []
        for item in planned:
            if not item.entry.available:
                self.events.emit(FileUnavailable(item.path, record.id, item.entry.key,
                                                 unavailable_reason(item.entry.status)))
                continue
            for note in item.notes:
                self.events.emit(PathNote(item.path, note))
            self.events.emit(FileQueued(item.path, item.entry.size))
            if self.on_plan is not None:
                self.on_plan(item)
            eligible.append(item)
        return eligible

    async def _dispatch_record(self, record: Record, eligible: list[PlannedFile], transfer: Transfer,
                               jobs: ObjectSendStream[Job]) -> None:
        todo, links = self._sort_out(eligible)
        if transfer.via_archive(record, todo):
            await jobs.send(PlannedRecord(record, tuple(todo)))
        else:
            for item in todo:
                await jobs.send(item)
        for link in links:  # after the record's own files: a source is always dispatched first
            await jobs.send(link)

    def _sort_out(self, items: list[PlannedFile]) -> tuple[list[PlannedFile], list[LinkedFile]]:
        """One record's planned files after the look at what earlier runs left (``self._past``, see
        :mod:`asyncdl.transfer.prior`): done ones are skipped (nothing written), moved ones told; the rest are
        recorded as planned and returned, to fetch or to link from another copy."""
        journal = self.journal
        assert journal is not None and self.copies is not None, "a real run only"
        todo: list[PlannedFile] = []
        links: list[LinkedFile] = []
        for item in items:
            prior, entry = self._past[item.path], item.entry
            verified = Check(entry.checksum).verifiable
            if prior.done:
                self.events.emit(finished(item, "skipped", "done in an earlier run", verified=verified,
                                          journaled=True))
                continue
            if prior.moved_from is not None:
                journal.send(Moved(prior.moved_from, item.path))
                self.summary.counts["moved"] += 1
                self.events.emit(finished(item, "skipped", f"moved from {prior.moved_from}", verified=verified))
                continue
            if prior.problem is not None:
                self.events.emit(Notice(prior.problem))
            journal.send(Planned(item.path, item.record.id, entry.key, entry.size, entry.md5, entry.url,
                                 entry.file_id, stated_checksum(item)))
            source = self.copies.source_of(item)
            if source is None:
                todo.append(item)
            else:
                links.append(LinkedFile(item, source))
        return todo, links

    def _finished_copy(self, item: PlannedFile) -> Source | None:
        """A copy of ``item``'s stored file finished before, by this run's journal or another of DEST (as the
        record's look back found it)."""
        prior = self._past.get(item.path)
        return None if prior is None or prior.copy is None else Source.finished(*prior.copy)

    def governors(self) -> dict[str, GovernorStats]:
        """Each host's request governor as it stands (none before the run talks to a server)."""
        return self.client.governors() if self.client is not None else {}

    def _tuning(self) -> tuple[ProgressSink, ...]:
        """The tuner hears the run's events (with -j auto)."""
        return (self.tuner,) if self.tuner is not None else ()

    def _all_busy(self) -> bool:
        """Every download slot taken with work waiting for one (a file, or a large file's extra connection)."""
        wanted = self.lent.take_wanted() if self.lent is not None else False
        return self.transfers.statistics().tasks_waiting > 0 or wanted

    async def _tune(self, scope: anyio.CancelScope) -> None:
        assert self.tuner is not None
        with scope:
            await self.tuner.run()

    @property
    def concurrency(self) -> int:
        """Files transferred at once: the limit in use."""
        return int(self.transfers.total_tokens)

    def set_concurrency(self, files: int) -> None:
        """Files transferred at once, from now on (the run goes on; fewer slots take effect as files end)."""
        self.transfers.total_tokens = max(1, files)

    async def _dispatch(self, jobs: ObjectReceiveStream[Job], transfer: Transfer) -> None:
        """Each job in its own task, under a limit: files that may be there already are hashed under the
        checkers' limit (an adopted 10 GB file holds no download slot), the rest under the transfers'. The
        slot is taken here, before the task starts, so no more tasks wait than the limits allow."""
        async with jobs, anyio.create_task_group() as group:
            with anyio.CancelScope() as self._feeding:
                await self._feed(jobs, transfer, group)

    async def _feed(self, jobs: ObjectReceiveStream[Job], transfer: Transfer, group: anyio.abc.TaskGroup) -> None:
        """Start each job as its limit allows (the loop an interrupt stops; the jobs started go on)."""
        async for item in jobs:
            slot = object()  # the borrower of this job's slot
            if isinstance(item, LinkedFile):
                await self.links.acquire_on_behalf_of(slot)
                group.start_soon(self._link, item, transfer, slot)
            elif isinstance(item, PlannedFile) and (final := transfer.to_check(item)) is not None:
                await self.checkers.acquire_on_behalf_of(slot)
                group.start_soon(self._check, item, final, transfer, slot)
            else:
                await self.transfers.acquire_on_behalf_of(slot)
                group.start_soon(self._transfer, item, transfer, slot)

    async def _check(self, item: PlannedFile, final: Path, transfer: Transfer, slot: object) -> None:
        try:
            adopted = await transfer.adopt(item, final)
        finally:
            self.checkers.release_on_behalf_of(slot)
        if not adopted and not self.summary.interrupted:  # a stopping run starts no download
            async with self.transfers:
                await transfer.fetch(item, checked=True)

    async def _link(self, item: LinkedFile, transfer: Transfer, slot: object) -> None:
        """Wait for the source, then link from it (under the checkers' limit); fetch if it will not do."""
        try:
            await item.source.arrived.wait()
        finally:
            self.links.release_on_behalf_of(slot)
        if item.source.ok:
            async with self.checkers:
                if await transfer.link(item.planned, item.source):
                    return
        if not self.summary.interrupted:  # a stopping run starts no download
            async with self.transfers:
                await transfer.fetch(item.planned)

    async def _transfer(self, item: Job, transfer: Transfer, slot: object) -> None:
        """One job; every result is reported (an event) as it comes. A file's slot is freed as soon as its
        bytes are in and verified: making it durable and renaming it does not hold up the next download."""
        held = [True]

        def free() -> None:
            if held[0]:
                held[0] = False
                self.transfers.release_on_behalf_of(slot)

        try:
            if isinstance(item, PlannedRecord):
                await transfer.fetch_record_archive(item)
            elif isinstance(item, PlannedFile):
                await transfer.fetch(item, received=free)
        finally:
            free()


async def mirror(selection: Selection, dest: str | Path, config: Config | None = None,
                 options: RunOptions | None = None, *, sink: ProgressSink | None = None,
                 on_plan: Callable[[PlannedFile], None] | None = None) -> RunSummary:
    """Download every file of ``selection`` into ``dest``, verified; returns what happened.

    ``config`` says how to talk to the server, ``options`` what the run does (see :class:`RunOptions`);
    ``sink`` receives every event (progress; without one, a Jupyter cell shows the progress in place);
    ``on_plan`` is called with every file as it is planned (a dry
    run's listing, streamed).
    """
    if sink is None and in_notebook():  # in a Jupyter cell: the progress, in place
        accounting = Accounting()
        with NotebookProgress(accounting) as shown:
            return await Run(selection, Path(dest), config or Config(), options, sink=shown, on_plan=on_plan,
                             accounting=accounting).execute()
    return await Run(selection, Path(dest), config or Config(), options, sink=sink, on_plan=on_plan).execute()


def read_only_layout(path: Path) -> tuple[str | None, int]:
    """What the journal at ``path`` says of its layout (see :func:`asyncdl.store.journal.layout_placed`),
    without writing to it: a dry run's question."""
    view = JournalView(path)
    try:
        return view.layout_placed()
    finally:
        view.close()


async def save_record_json(targets: SafeTargets, record: Record, planned: list[PlannedFile]) -> None:
    """--save-metadata: the record's JSON as the API gave it, beside its files (aiofiles: off the event loop,
    off the download path)."""
    folder = os.path.commonpath([os.path.dirname(p.path) or "." for p in planned])
    name = f"zenodo-record-{record.id}.json"
    target = targets.target(name if folder == "." else f"{folder}/{name}")  # never through a planted symlink
    await aiofiles.os.makedirs(target.parent, exist_ok=True)
    temporary = part_of(target)  # left by a kill: removed with the orphan parts
    with contextlib.suppress(FileNotFoundError):  # whatever is there (a planted symlink too) is replaced
        await aiofiles.os.remove(temporary)
    text = json.dumps(dict(record.metadata) or record_to_json(record), indent=2, ensure_ascii=False)
    async with aiofiles.open(temporary, "w", encoding="utf-8", opener=fresh_opener) as stream:
        await stream.write(text)
    await aiofiles.os.replace(temporary, target)
