"""Shards that crawl once: the shards of one destination share one crawl of their selection.

The first shard that needs the selection's records takes the crawl lease (``DEST/.asyncdl/crawl-KEY.lease``,
an ``flock`` the kernel drops when its holder dies) and crawls, writing each search page and each record to
the shared crawl store (:mod:`asyncdl.store.crawl_store`) as they arrive; every shard, the crawler too,
plans the records of its own part as they come. The other shards read the records from the store instead of
searching, and try the lease now and then: if the crawler dies, one of them takes it over and goes on from
the pages already stored (replayed, not asked for again). A finished crawl serves shards that start within
``FRESH`` seconds of its end (a job array's shards, a resubmitted task); after that a shard crawls afresh.
Search requests therefore equal the pages needed, whatever the number of shards.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ObjectSendStream

from asyncdl.config import Config
from asyncdl.crawl import Crawler
from asyncdl.errors import LockedError
from asyncdl.events import CrawlDone, CrawlShort, Event, Notice, ProgressSink
from asyncdl.http import Client
from asyncdl.invenio import Selection
from asyncdl.models import Record
from asyncdl.store.crawl_store import CrawlStore
from asyncdl.store.lock import RunLock
from asyncdl.streams import batches

FRESH = 3600.0  # seconds after its end that a finished crawl serves shards that need one
POLL = 0.5  # seconds between two looks at the store while another shard crawls


class StoredPages:
    """The crawl store's pages, as the crawler's page cache."""

    def __init__(self, store: CrawlStore) -> None:
        self.store = store

    async def get(self, url: str) -> Any | None:
        return await anyio.to_thread.run_sync(self.store.page, url)

    async def put(self, url: str, data: Any) -> None:
        await anyio.to_thread.run_sync(self.store.put_page, url, data)


class _WithoutCrawlDone:
    """The run's sink without the crawler's CrawlDone: the shared crawl says when this shard's crawl is done."""

    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink

    def emit(self, event: Event) -> None:
        if not isinstance(event, CrawlDone):
            self.sink.emit(event)


class SharedCrawl:
    """``await SharedCrawl(...).run(selection, send)``: every record of the selection into ``send``, crawled
    by this shard or read from the one that crawls; ``delivered`` lists their ids, in order."""

    def __init__(self, client: Client, config: Config, state_dir: Path, selection_key: str, *,
                 sink: ProgressSink, description: str) -> None:
        self.client, self.config, self.sink = client, config, sink
        self._crawl_sink = _WithoutCrawlDone(sink)
        name = "crawl-" + hashlib.sha1(selection_key.encode()).hexdigest()[:16]
        self.store_path = state_dir / f"{name}.sqlite"
        self.lease = RunLock(state_dir, description, f"{name}.lease")
        self.delivered: list[str] = []
        self._seen: set[str] = set()
        self._read_to = 0  # the store position read so far
        self._generation: int | None = None  # of the crawl being read
        self.crawled = False  # whether this shard searched (all of the crawl or the rest of it)
        self.shortfalls: list[CrawlShort] = []  # where the server fell short of its totals (told once each)

    async def run(self, selection: Selection, send: ObjectSendStream[Record]) -> None:
        store = await anyio.to_thread.run_sync(CrawlStore, self.store_path)
        try:
            async with send:
                while True:  # another process writes the store: it is looked at again, there is no event
                    if await self._step(store, selection, send):
                        break
                    await anyio.sleep(POLL)
        finally:
            store.close()
        self.sink.emit(CrawlDone(records=len(self.delivered), pages=0))

    async def _step(self, store: CrawlStore, selection: Selection, send: ObjectSendStream[Record]) -> bool:
        """One look: crawl if the lease is free, else read what the crawler stored. True when done."""
        try:
            self.lease.acquire()
        except LockedError:
            return await self._read(store, send)
        try:
            if not self.lease.supported:  # no locks on this file system: nothing can be shared safely
                self.sink.emit(Notice("the file system refuses locks: this shard crawls the selection alone"))
                crawler = Crawler(self.client, self.config, sink=self._crawl_sink)
                await crawler.run(selection, send)
                self.delivered, self.shortfalls = crawler.sent_ids, crawler.shortfalls
                return True
            _, started, finished = await anyio.to_thread.run_sync(store.state)
            if finished is not None and time.time() - finished < FRESH:
                return await self._read(store, send)  # finished a moment ago: read it whole
            if started is None or finished is not None or time.time() - started > FRESH:
                self._generation, self._read_to = await anyio.to_thread.run_sync(store.begin), 0
            else:  # a crawl whose crawler died: what it stored is read, then its pages replayed
                await self._read(store, send)
                self.sink.emit(Notice("taking over the shared crawl of this selection from the pages stored",
                                      level="info"))
            await self._crawl(store, selection, send)
            await anyio.to_thread.run_sync(store.finish, self.shortfalls)
            return True
        finally:
            self.lease.release()

    async def _read(self, store: CrawlStore, send: ObjectSendStream[Record]) -> bool:
        """Deliver the records stored since the last look; True once the crawl read is finished and fresh."""
        generation, _, finished = await anyio.to_thread.run_sync(store.state)
        if generation != self._generation:  # a new crawl began: read it from its start (seen ones skipped)
            self._generation, self._read_to = generation, 0
        while rows := await anyio.to_thread.run_sync(store.records_after, self._read_to):
            for number, record in rows:
                self._read_to = number
                await self._deliver(record, send)
        done = finished is not None and time.time() - finished < FRESH
        if done:  # the crawling shard's shortfalls are this shard's too: its part may lack those records
            for short in await anyio.to_thread.run_sync(store.shortfalls):
                if short not in self.shortfalls:
                    self.shortfalls.append(short)
                    self.sink.emit(short)
        return done

    async def _crawl(self, store: CrawlStore, selection: Selection, send: ObjectSendStream[Record]) -> None:
        """Crawl (replaying stored pages), storing each record before it is planned."""
        self.crawled = True
        found_send, found_receive = anyio.create_memory_object_stream[Record](64)
        crawler = Crawler(self.client, self.config, sink=self._crawl_sink, pages=StoredPages(store),
                          seen=set(self._seen))
        async with anyio.create_task_group() as group:
            group.start_soon(crawler.run, selection, found_send)
            async for batch in batches(found_receive, limit=200):
                await anyio.to_thread.run_sync(store.add_records, batch)
                for record in batch:
                    await self._deliver(record, send)
        self.shortfalls.extend(short for short in crawler.shortfalls if short not in self.shortfalls)

    async def _deliver(self, record: Record, send: ObjectSendStream[Record]) -> None:
        if record.id not in self._seen:
            self._seen.add(record.id)
            self.delivered.append(record.id)
            await send.send(record)
