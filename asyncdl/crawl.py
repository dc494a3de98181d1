"""Selection -> stream of Records: identifiers resolved, searches paged concurrently, the 10k window sliced.

The crawl asks for as few pages as it can: the first page of a search tells the total; the remaining
pages are fetched concurrently (bounded); a search with more hits than the result window reaches is split
by ``created`` ranges, recursively, until every slice fits, so no request goes past the window. Pages are
sorted oldest-first, so records published while the crawl runs land at the end instead of shifting pages.
Records are deduplicated; a record whose hit lacks its file list gets one ``/files`` request, and only then.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

import anyio
from anyio.abc import ObjectSendStream

from asyncdl import invenio
from asyncdl.config import Config
from asyncdl.errors import (
    AccessDeniedError,
    BadResponseError,
    NotFoundError,
    RemoteError,
    ShortCrawlError,
    UsageError,
    unwrap,
)
from asyncdl.events import CrawlDone, CrawlShort, Notice, NullSink, PageFetched, ProgressSink
from asyncdl.http import Client, with_params
from asyncdl.http.client import MAX_REDIRECTS
from asyncdl.invenio import Selection, TimeSlice
from asyncdl.models import Record
from asyncdl.redact import redact

STABLE_SORT = "oldest"
REFUSED_QUERY = (400, 404, 422)  # statuses with which a server refuses a query it cannot read
T = TypeVar("T")


class PageCache(Protocol):
    """Search pages fetched before (by a crawl that stopped): ``get`` gives a page's JSON by its URL, or None."""

    async def get(self, url: str) -> Any | None: ...

    async def put(self, url: str, data: Any) -> None: ...


class Crawler:
    """Finds every record of a selection and sends each, once, into ``send``. With ``pages``, a page found
    there is not asked for again; records in ``seen`` were delivered before and are not sent again."""

    def __init__(self, client: Client, config: Config, *, sink: ProgressSink | None = None,
                 pages: PageCache | None = None, seen: set[str] | None = None) -> None:
        self.client = client
        self.config = config
        self.sink = sink or NullSink()
        self.size = config.effective_page_size
        self._pages = anyio.CapacityLimiter(max(1, config.page_concurrency))
        self._cache = pages
        self._seen: set[str] = set(seen or ())
        self._send: ObjectSendStream[Record] | None = None
        self._title: re.Pattern[str] | None = None
        self.pages_done = 0
        self.pages_planned = 0
        self.sent_ids: list[str] = []
        self.shortfalls: list[CrawlShort] = []  # the parts whose pages gave fewer records than stated
        self._stock = False  # the searched instance has shown it is a stock InvenioRDM (no Zenodo page caps)

    async def run(self, selection: Selection, send: ObjectSendStream[Record]) -> None:
        """Crawl ``selection``; ``send`` is closed when done."""
        self._send = send
        self._title = re.compile(selection.title_regex) if selection.title_regex else None
        async with send:
            for text in selection.identifiers:
                await self._identifier(invenio.parse_identifier(text), all_versions=selection.all_versions)
            query = invenio.selection_query(selection)
            if selection.community or query:
                await self._search(query, community=selection.community, all_versions=selection.all_versions)
        self.sink.emit(CrawlDone(records=len(self.sent_ids), pages=self.pages_done))

    # -- identifiers ---------------------------------------------------------------------------------------
    async def _identifier(self, ident: invenio.Identifier, *, all_versions: bool) -> None:
        if ident.kind == "doi":
            ident = await self._resolve(ident)
        base = ident.base_url or self.config.base_url
        url = invenio.record_url(base, ident.value)
        try:
            data = await self.client.get_json(url)
        except NotFoundError as exc:
            raise UsageError(f"no record {ident.value} at {base} (404)") from exc
        record = parsed(url, invenio.parse_record, data, base_url=base)
        if all_versions:
            await self._follow(invenio.record_url(base, record.id) + "/versions",
                               {"page": "1", "size": str(self._size_at(base)), "sort": "version"},
                               bucket="default", part=f"the versions of record {record.id}", base_url=base)
        else:
            await self._emit([record])

    async def _resolve(self, ident: invenio.Identifier) -> invenio.Identifier:
        """The record a DOI leads to: its resolver's redirects are followed, one hop at a time, to the first
        record URL (``/records/<id>``) or a landing page whose Signposting linkset names the record. Nothing
        is sent beyond where the DOI leads."""
        resolver = f"{ident.base_url}/doi" if ident.base_url else self.config.doi_resolver
        url = invenio.doi_url(resolver, ident.value)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                hop = await self.client.hop(url)
            except NotFoundError as exc:
                raise UsageError(f"DOI {ident.value} is unknown to {redact(resolver)} (404)") from exc
            if hop.location is None:
                found = invenio.linkset_record(hop.link, page_url=url)
                if found is None:
                    raise UsageError(f"DOI {ident.value} leads to {redact(url)}, which is no InvenioRDM record "
                                     "(no /records/<id> address, no Signposting linkset)")
                return found
            url = urljoin(url, hop.location)
            if (found := invenio.record_at(url)) is not None:
                return found
        raise UsageError(f"DOI {ident.value}: more than {MAX_REDIRECTS} redirects from {redact(resolver)}")

    def _size_at(self, base: str) -> int:
        """The page size to ask an instance for: the configured one, else the cap for a guest or a token."""
        if base == self.config.base_url:
            return self.size
        token = self.client.token_for(base)
        return dataclasses.replace(self.config, token=token).effective_page_size

    # -- searches -----------------------------------------------------------------------------------------
    async def _search(self, query: str, *, community: str | None, all_versions: bool) -> None:
        url = invenio.search_url(base_url=self.config.base_url, community=community)
        try:
            first = await self._page(url, query, page=1, all_versions=all_versions)
        except NotFoundError as exc:
            if community:
                raise UsageError(f"unknown community {community!r} at {self.config.base_url}") from exc
            raise
        if first.total is None:
            await self._emit(first.records)
            if first.next_url:
                await self._follow(first.next_url, None, bucket="search")
            return
        if first.total == 0 and self._stock:
            self._warn_of_zenodo_fields(query)
        tally = Tally(describe_search(query, community), first.total)
        tally.add(first.records)
        await self._emit(first.records)
        grown = first.total > len(first.records) and self._grow_pages()
        if invenio.fits_window(first.total, size=self.size):
            self.pages_planned += invenio.last_reachable_page(total=first.total, size=self.size)
            await self._rest(url, query, first.total, all_versions=all_versions, tally=tally, first=1 if grown else 2)
        else:
            self.sink.emit(Notice(f"{first.total} hits exceed the 10,000-hit window: splitting by creation date",
                                  level="info"))
            span = await self._created_span(url, query, first, all_versions=all_versions)
            if await self._slice(url, query, span, all_versions=all_versions, tally=tally, top=True) is None:
                await self._unsliced(url, query, first.total, all_versions=all_versions, tally=tally,
                                     first=1 if grown else 2)
        await self._reconcile(url, query, tally, all_versions=all_versions)

    def _warn_of_zenodo_fields(self, query: str) -> None:
        """A query that found nothing on a stock instance, naming fields only Zenodo rewrites: say so."""
        used = invenio.zenodo_only_fields(query)
        if used:
            advice = "; ".join(f"for {name}: use {invenio.ZENODO_ONLY_FIELDS[name]}" for name in used)
            self.sink.emit(Notice(f"no hits: {self.config.base_url} is a stock InvenioRDM instance, which does "
                                  f"not know Zenodo's field names ({advice})"))

    def _grow_pages(self) -> bool:
        """Once the instance has shown it is a stock InvenioRDM (no 25/100 caps), ask it for larger pages
        (unless a page size was configured); True when the size changed."""
        if not self._stock or self.config.page_size or self.size >= invenio.STOCK_PAGE_SIZE:
            return False
        self.sink.emit(Notice(f"{self.config.base_url} is a stock InvenioRDM instance: pages of "
                              f"{invenio.STOCK_PAGE_SIZE} records", level="info"))
        self.size = invenio.STOCK_PAGE_SIZE
        return True

    async def _rest(self, url: str, query: str, total: int, *, all_versions: bool, tally: Tally,
                    sort: str = STABLE_SORT, first: int = 2) -> None:
        """Pages ``first``..last of a search that fits the window, concurrently."""
        last = invenio.last_reachable_page(total=total, size=self.size)

        async def fetch(page: int) -> None:
            async with self._pages:  # held until the records are handed on: parsed pages never pile up
                result = await self._page(url, query, page=page, all_versions=all_versions, limited=False,
                                          sort=sort)
                tally.add(result.records)
                await self._emit(result.records)

        async with anyio.create_task_group() as group:
            for page in range(first, last + 1):
                group.start_soon(fetch, page)

    async def _unsliced(self, url: str, query: str, total: int, *, all_versions: bool, tally: Tally,
                        first: int = 2) -> None:
        """The fallback when date slices cannot be trusted: the search paged oldest first, then newest first
        for the hits past the window (together up to twice the window)."""
        size = self.size
        oldest = invenio.last_reachable_page(total=total, size=size)
        beyond = max(0, total - oldest * size)
        self.sink.emit(Notice(f"paging the search without date slices instead: oldest first, then newest first "
                              f"({'every one of' if beyond <= oldest * size else f'at most {2 * oldest * size:,} of'} "
                              f"its {total:,} hits can be reached)"))
        self.pages_planned += oldest - 1 + (invenio.last_reachable_page(total=beyond, size=size) if beyond else 0)
        await self._rest(url, query, total, all_versions=all_versions, tally=tally, first=first)
        if beyond:
            await self._rest(url, query, beyond, all_versions=all_versions, tally=tally, sort="newest", first=1)

    async def _reconcile(self, url: str, query: str, tally: Tally, *, all_versions: bool) -> None:
        """Compare what the search stated with what its pages gave; ask the total again when they differ, so
        records deleted meanwhile are told apart from records the pages never reached."""
        if tally.reached >= tally.stated:
            return
        again = await self._page(url, query, page=1, size=1, all_versions=all_versions, count=False)
        vanished = max(0, tally.stated - (again.total or 0))
        if tally.stated - tally.reached <= vanished:
            self.sink.emit(Notice(f"{tally.part}: {tally.stated - tally.reached} records left the search while it "
                                  f"was crawled ({tally.stated} then, {again.total} now)", level="info"))
            return
        short = CrawlShort(tally.part, tally.stated, tally.reached, again.total, "; ".join(tally.where))
        self.shortfalls.append(short)
        self.sink.emit(short)

    async def _created_span(self, url: str, query: str, first: invenio.SearchPage, *,
                            all_versions: bool) -> TimeSlice:
        """Whole days covering every hit: from the oldest (first page) to the newest (one size=1 request)."""
        newest = await self._page(url, query, page=1, size=1, sort="newest", all_versions=all_versions, count=False)
        moments = [invenio.parse_datetime(r.created) for r in (*first.records, *newest.records) if r.created]
        if not moments:
            raise UsageError("cannot split a search over 10,000 hits whose records carry no creation date")
        start = datetime.combine(min(moments).date(), datetime.min.time(), tzinfo=UTC)
        end = datetime.combine(max(moments).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return TimeSlice(start, end)

    async def _slice(self, url: str, query: str, piece: TimeSlice, *, all_versions: bool, tally: Tally,
                     top: bool = False) -> int | None:
        """Crawl one created-range slice, splitting it again while it holds more than the window; the total
        it stated. ``top`` (the slice covering every hit): None when it answers 0 hits or an error although
        the search has hits, so the date slices cannot be trusted."""
        sliced = invenio.combine_query(query, invenio.created_clause(piece))
        try:
            first = await self._page(url, sliced, page=1, all_versions=all_versions)
        except RemoteError as exc:
            if not top or exc.status not in REFUSED_QUERY:
                raise
            self.sink.emit(Notice(f"{tally.part}: the date-sliced search {sliced!r} was refused ({exc})"))
            return None
        total = first.total or 0
        if top and total == 0:
            self.sink.emit(Notice(f"{tally.part}: the date-sliced search {sliced!r} matched nothing although the "
                                  f"search stated {tally.stated:,} hits: this server does not read the date range"))
            return None
        tally.add(first.records)
        if invenio.fits_window(total, size=self.size) or piece.duration <= timedelta(seconds=1):
            if not invenio.fits_window(total, size=self.size):
                tally.where.append(f"{total} records created within one second at {piece.start.isoformat()}: "
                                   "only the first 10,000 can be reached")
                self.sink.emit(Notice(f"{total} records were created within one second at "
                                      f"{piece.start.isoformat()}: only the first 10,000 can be reached"))
            self.pages_planned += invenio.last_reachable_page(total=total, size=self.size)
            await self._emit(first.records)
            await self._rest(url, sliced, total, all_versions=all_versions, tally=tally)
            return total
        halves = invenio.split_slice(piece)
        stated = [0, 0]

        async def crawl_half(index: int) -> None:
            stated[index] = await self._slice(url, query, halves[index], all_versions=all_versions,
                                              tally=tally) or 0

        async with anyio.create_task_group() as group:
            for index in (0, 1):
                group.start_soon(crawl_half, index)
        if sum(stated) < total:
            tally.where.append(f"created {describe_slice(piece)} stated {total} hits, its two halves "
                               f"{sum(stated)}")
        return total

    async def _follow(self, url: str, params: dict[str, str] | None, *, bucket: str, part: str = "",
                      base_url: str | None = None) -> None:
        """Follow ``links.next`` one page after another; the total the first page states is checked at the end
        against the records the pages gave."""
        next_url: str | None = url
        tally: Tally | None = None
        while next_url:
            data = await self._get(next_url, params, bucket=bucket)
            result = parsed(with_params(next_url, params), invenio.parse_search_page, data,
                            base_url=base_url or self.config.base_url)
            params = None
            self.pages_done += 1
            if tally is None and result.total is not None:
                tally = Tally(part or f"the listing {redact(url)}", result.total)
            if tally is not None:
                tally.add(result.records)
            await self._emit(result.records)
            self.sink.emit(PageFetched(len(result.records), self.pages_done, self.pages_planned, result.total))
            next_url = result.next_url
        if tally is not None and tally.reached < tally.stated:
            short = CrawlShort(tally.part, tally.stated, tally.reached, detail="its links.next ended early")
            self.shortfalls.append(short)
            self.sink.emit(short)

    async def _page(self, url: str, query: str, *, page: int, all_versions: bool, size: int | None = None,
                    sort: str = STABLE_SORT, count: bool = True, limited: bool = True) -> invenio.SearchPage:
        """One search page; ``limited`` takes a page slot (callers that hold one already pass False)."""
        params = invenio.search_params(query=query, page=page, size=size or self.size, sort=sort,
                                       all_versions=all_versions)
        if limited:
            async with self._pages:
                data = await self._get(url, params, bucket="search")
        else:
            data = await self._get(url, params, bucket="search")
        result = parsed(with_params(url, params), invenio.parse_search_page, data, base_url=self.config.base_url)
        self._stock = self._stock or invenio.is_stock_search(data)
        if count:
            self.pages_done += 1
            self.sink.emit(PageFetched(len(result.records), self.pages_done, self.pages_planned, result.total))
        return result

    async def _get(self, url: str, params: dict[str, str] | None, *, bucket: str) -> Any:
        """A listing page's JSON: from the page cache when a crawl before this one fetched it, else asked for."""
        key = with_params(url, params)
        if self._cache is not None and (data := await self._cache.get(key)) is not None:
            return data
        data = await self.client.get_json(url, params=params, bucket=bucket)
        if self._cache is not None:
            await self._cache.put(key, data)
        return data

    # -- records ------------------------------------------------------------------------------------------
    async def _emit(self, records: tuple[Record, ...] | list[Record]) -> None:
        assert self._send is not None
        for record in records:
            if record.id in self._seen:
                continue
            self._seen.add(record.id)
            if self._title is not None and not self._title.search(record.title):
                continue
            if not record.files_listed:
                record = await self._with_files(record)
            self.sent_ids.append(record.id)
            await self._send.send(record)

    async def _with_files(self, record: Record) -> Record:
        """Fetch the file list the search hit left out (one request; none when a guest would get 403)."""
        base = invenio.base_of(record.api_url) or self.config.base_url
        if record.access_right in ("restricted", "embargoed") and not self.client.token_for(base):
            self.sink.emit(Notice(f"record {record.id}: files are {record.access_right}", level="info"))
            return record
        url = invenio.files_url(base, record.id)
        try:
            data = await self.client.get_json(url)
        except AccessDeniedError:
            self.sink.emit(Notice(f"record {record.id}: files are restricted or embargoed (403)", level="info"))
            return record
        files = parsed(url, invenio.parse_files_listing, data, base_url=base, record_id=record.id)
        if record.files_stated is not None and len(files) < record.files_stated:
            short = CrawlShort(f"record {record.id}", record.files_stated, len(files), unit="files",
                               detail=f"{redact(url)} lists fewer")
            self.shortfalls.append(short)
            self.sink.emit(short)
        return dataclasses.replace(record, files=files, files_listed=True)


@dataclass(slots=True)
class Tally:
    """What one search stated and the records its pages gave (ids, so a page seen twice counts once)."""

    part: str
    stated: int
    ids: set[str] = dataclasses.field(default_factory=set)
    where: list[str] = dataclasses.field(default_factory=list)  # where it fell short, as far as is known

    def add(self, records: tuple[Record, ...]) -> None:
        self.ids.update(record.id for record in records)

    @property
    def reached(self) -> int:
        return len(self.ids)


def describe_search(query: str, community: str | None) -> str:
    """``community 'x', query 'y'`` as the user would recognise it."""
    parts = ([f"community {community!r}"] if community else []) + ([f"query {query!r}"] if query else [])
    return "the search of " + ", ".join(parts) if parts else "the search of every record"


def describe_slice(piece: TimeSlice) -> str:
    return f"[{piece.start.isoformat()}, {piece.end.isoformat()})"


def parsed(url: str, parse: Callable[..., T], data: object, **options: Any) -> T:
    """``parse(data, **options)``; a document of the wrong shape is an error naming the URL it came from."""
    try:
        return parse(data, **options)
    except BadResponseError as exc:
        shown = exc.url or redact(url)
        if shown in str(exc):
            raise
        raise BadResponseError(f"{exc} (from {shown})", url=shown) from None


async def crawl_records(selection: Selection, config: Config, *, sink: ProgressSink | None = None,
                        client: Client | None = None) -> list[Record]:
    """Every record of ``selection``, in the order found (the Python API behind ``asyncdl list``). Raises
    ShortCrawlError, holding the records found, when the server's pages gave fewer than it stated."""
    if client is None:
        async with Client(config) as owned:
            return await crawl_records(selection, config, sink=sink, client=owned)
    send, receive = anyio.create_memory_object_stream[Record](max_buffer_size=math.inf)
    crawler = Crawler(client, config, sink=sink)
    records: list[Record] = []
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(crawler.run, selection, send)
            async with receive:
                async for record in receive:
                    records.append(record)
    except BaseExceptionGroup as group_error:
        raise unwrap(group_error) from None
    if crawler.shortfalls:
        raise ShortCrawlError("; ".join(short.message for short in crawler.shortfalls), records=records)
    return records
