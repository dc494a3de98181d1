"""The emulator's HTTP server: Zenodo's REST API on loopback, quirks and limits included."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from asyncdl.emulator import serialize
from asyncdl.emulator.body import BodySender, break_body, ranged_response, shared_link
from asyncdl.emulator.config import GENERIC_USER_AGENTS, EmulatorConfig
from asyncdl.emulator.dataset import Dataset, FileSpec, RecordSpec
from asyncdl.emulator.faults import FaultPlan
from asyncdl.emulator.objectstore import RunningStore, StoreStats, start_store
from asyncdl.emulator.query import SORT_OPTIONS, Query, QueryError, parse_query, sort_records
from asyncdl.emulator.ratelimit import Limit, MovingWindowLimiter, Verdict, headers_for
from asyncdl.emulator.zipstream import zip_stream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEARCH_KINDS = ("search", "community-search")  # versions, files and content spend the global budget
BLOCKED_PAGE = """<!DOCTYPE html>
<html><head><title>Blocked</title></head>
<body><h1>Your access has been blocked</h1>
<p>We have detected unusual traffic from your network and your access has been blocked due to unusual
traffic. If you are using a script, please set a descriptive User-Agent and respect our rate limits.</p>
</body></html>
"""
HTML_429 = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<title>429 Too Many Requests</title>
<h1>Too Many Requests</h1>
<p>{label}</p>
"""
NGINX_ERROR = "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1>" \
              "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
COMMON_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Type, ETag, Link, X-RateLimit-Limit, X-RateLimit-Remaining, "
                                     "X-RateLimit-Reset",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "sameorigin",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
CREATED_RANGE = re.compile(r"\bcreated:\s*[\[{]")
REDIRECT_PAGE = """<!doctype html>
<html lang=en>
<title>Redirecting...</title>
<h1>Redirecting...</h1>
<p>You should be redirected automatically to the target URL: <a href="{path}">{path}</a>. If not, click the link.
"""


def _request_key(name: str) -> Any:
    """A typed request-storage key where aiohttp has them (3.14+), else the plain name."""
    factory = getattr(web, "RequestKey", None)
    return factory(name, object) if factory else name


USER, ATTEMPT, RATE_HEADERS = (_request_key(n) for n in ("user", "attempt", "rate_headers"))


class EmulatorStats:
    """What the emulator served: readable by tests and benchmarks (also at /_emulator/stats)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.struck: Counter[tuple[str, str]] = Counter()  # (body fault, request path) -> times it struck
        self.rate_limited = 0
        self.bytes_served = 0
        self.range_requests = 0
        self.attempts: Counter[str] = Counter()
        self.file_bytes: Counter[str] = Counter()
        self.bodies_in_flight = 0  # file bodies being sent right now
        self.bodies_peak = 0  # the most file bodies sent at once
        self.bodies_cut = 0  # file bodies the client left before their end
        self.agent_peaks: Counter[str] = Counter()  # User-Agent -> most of its requests in any one "minute"
        self._agent_windows: dict[str, deque[float]] = {}

    def count_agent(self, agent: str, now: float, window: float) -> None:
        """A request of ``agent`` counted by the rate limits: keep its peak over any ``window`` seconds."""
        times = self._agent_windows.setdefault(agent, deque())
        while times and times[0] <= now - window:
            times.popleft()
        times.append(now)
        self.agent_peaks[agent] = max(self.agent_peaks[agent], len(times))

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests), "total_requests": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()}, "faults": dict(self.faults),
            "rate_limited": self.rate_limited, "bytes_served": self.bytes_served,
            "range_requests": self.range_requests, "file_bytes": dict(self.file_bytes),
            "agent_peaks": dict(self.agent_peaks),
        }


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    """A JSON response without a charset parameter, as Zenodo sends it."""
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": content_type})


def error(status: int, message: str) -> web.Response:
    return json_response({"status": status, "message": message}, status=status)


class EmulatorApp:
    """Request handling; one instance per running server."""

    def __init__(self, config: EmulatorConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.stats = EmulatorStats()
        self.limiter = MovingWindowLimiter()
        self.faults = FaultPlan(config.faults)
        self.body = BodySender(dataset, self.faults, config.chunk_size, self._count, self._struck,
                               shared_link(config.faults))
        self.began = time.monotonic()  # the clock of 429 bursts
        self.base_url = ""
        self.flavor = config.profile
        self.presign: Callable[[RecordSpec, FileSpec], str] | None = None  # the object store's signer, if on
        self._search_cache: OrderedDict[tuple[Any, ...], tuple[list[RecordSpec], dict[str, Any]]] = OrderedDict()

    # -- application ---------------------------------------------------------------------------------------
    def build(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.on_response_prepare.append(self._add_headers)
        get = app.router.add_get
        get("/api/records", self.search)
        get("/api/records/", self.slash_redirect)
        get("/api/communities/{slug}", self.community)
        get("/api/communities/{slug}/records", self.community_search)
        get("/api/records/{id}", self.record)
        get("/api/records/{id}/versions", self.versions)
        get("/api/records/{id}/versions/latest", self.versions_latest)
        get("/api/records/{id}/files", self.files)
        get("/api/records/{id}/files-archive", self.archive)
        get(r"/api/records/{id}/files/{key:.+}/content", self.api_content)
        get(r"/api/records/{id}/files/{key:.+}", self.file_metadata)
        get(r"/records/{id}/files/{key:.+}", self.ui_content)
        get("/records/{id}", self.record_page)
        get(r"/doi/{doi:.+}", self.doi_redirect)
        get("/_emulator/stats", self.stats_view)
        app.router.add_post("/_emulator/reset", self.stats_reset)
        return app

    @staticmethod
    def kind_of(request: web.Request) -> str:
        route = request.match_info.route.resource
        handler_names = {
            "/api/records": "search", "/api/communities/{slug}/records": "community-search",
            "/api/records/{id}/versions": "versions", "/api/records/{id}": "record",
            "/api/records/{id}/files": "files", "/api/records/{id}/files-archive": "archive",
            r"/api/records/{id}/files/{key}/content": "content", r"/records/{id}/files/{key}": "content",
        }
        canonical = route.canonical if route is not None else ""
        return handler_names.get(canonical, "other")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        kind = self.kind_of(request)
        self.stats.requests[kind] += 1
        attempt = self.stats.attempts[request.path_qs]
        self.stats.attempts[request.path_qs] += 1
        request[ATTEMPT] = attempt
        if self.config.faults.latency > 0:
            await asyncio.sleep(self.config.faults.latency)
        response = await self._gatekeep(request, kind, attempt)
        if response is None:
            response = await handler(request)
        self.stats.statuses[response.status] += 1
        return response

    async def _gatekeep(self, request: web.Request, kind: str, attempt: int) -> web.StreamResponse | None:
        """Authentication, User-Agent blocks, rate limits and 5xx faults, in Zenodo's order."""
        token = self._token(request)
        user = self.config.user_for_token(token) if token else None
        if token and user is None:
            return error(401, "The server could not verify that you are authorized to access the URL "
                              "requested. You either supplied the wrong credentials (e.g. a bad password), "
                              "or your browser doesn't understand how to supply the credentials required.")
        request[USER] = user
        agent = request.headers.get("User-Agent", "")
        if self.config.block_generic_user_agents and (not agent or any(g in agent.lower()
                                                                       for g in GENERIC_USER_AGENTS)):
            return web.Response(text=BLOCKED_PAGE, status=403, content_type="text/html")
        if self.config.rate_limits:
            key = f"{agent}|{request.remote}" if self.config.rate_key == "agent+ip" else str(request.remote)
            verdict = self.limiter.hit(key, self._limits(kind, user is not None))
            request[RATE_HEADERS] = headers_for(verdict, wall_now=time.time())
            if not verdict.allowed:
                return self._too_many(verdict)
            self.stats.count_agent(agent, time.monotonic(), self.config.minute)
        burst = self.faults.burst_left(time.monotonic() - self.began)
        if burst or self.faults.applies("error_429", request.path_qs, attempt):
            self.stats.faults["burst_429" if burst else "http_429"] += 1
            verdict = Verdict(False, self._limits(kind, user is not None)[-1], 0, burst or 1.0)
            request[RATE_HEADERS] = headers_for(verdict, wall_now=time.time())
            return self._too_many(verdict)
        if self.faults.applies("error_5xx", request.path_qs, attempt):
            code = self.faults.status_5xx(request.path_qs, attempt)
            self.stats.faults[f"http_{code}"] += 1
            if code == 500:
                return error(500, "Internal server error.")
            reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[code]
            return web.Response(text=NGINX_ERROR.format(code=code, reason=reason), status=code,
                                content_type="text/html")
        return None

    def _limits(self, kind: str, authenticated: bool) -> list[Limit]:
        minute, hour = self.config.minute, self.config.minute * 60
        if kind in SEARCH_KINDS and self.flavor.search_budget:
            return [Limit.per(self.config.search_per_minute, "minute", unit_seconds=minute)]
        if authenticated:
            return [Limit.per(self.config.auth_per_hour, "hour", unit_seconds=hour),
                    Limit.per(self.config.auth_per_minute, "minute", unit_seconds=minute)]
        return [Limit.per(self.config.guest_per_hour, "hour", unit_seconds=hour),
                Limit.per(self.config.guest_per_minute, "minute", unit_seconds=minute)]

    def _too_many(self, verdict: Verdict) -> web.Response:
        self.stats.rate_limited += 1
        if self.config.html_429:
            return web.Response(text=HTML_429.format(label=verdict.limit.label), status=429,
                                content_type="text/html")
        body = json.dumps({"message": verdict.limit.label, "status": 429}, separators=(",", ":")) + "\n"
        return web.Response(body=body.encode(), status=429, headers={"Content-Type": "application/json"})

    @staticmethod
    def _token(request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return request.query.get("access_token") or None

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in COMMON_HEADERS.items():
            response.headers[name] = value
        response.headers["Server"] = self.flavor.server_header
        for name, value in request.get(RATE_HEADERS, {}).items():
            response.headers[name] = value

    # -- helpers -------------------------------------------------------------------------------------------
    def _native(self, request: web.Request) -> bool:
        return self.flavor.native_by_default or serialize.NATIVE_MEDIA_TYPE in request.headers.get("Accept", "")

    def _asked_native(self, request: web.Request) -> bool:
        return serialize.NATIVE_MEDIA_TYPE in request.headers.get("Accept", "")

    def _serialize(self, request: web.Request, record: RecordSpec, *, in_search: bool = False) -> dict[str, Any]:
        with_files = not in_search or len(record.files) <= self.config.search_files_limit
        if self._native(request):
            return serialize.native_record(self.dataset, self.base_url, record, with_files=with_files,
                                           flavor=self.flavor)
        return serialize.legacy_record(self.dataset, self.base_url, record, with_files=with_files)

    async def _ensure_md5(self, files: list[FileSpec]) -> None:
        """Compute missing md5s off the event loop (only multi-MB generated files are slow)."""
        missing = [f for f in files if f._md5 is None]
        if missing:
            await asyncio.to_thread(lambda: [self.dataset.file_md5(f) for f in missing])

    def _visible(self, record: RecordSpec, user: str | None) -> bool:
        return record.searchable or (user is not None and user in record.owners and not record.deleted)

    def _lookup(self, request: web.Request) -> RecordSpec | web.Response:
        """The record named in the path, or the error response Zenodo would give."""
        number = self.flavor.number_of(request.match_info["id"])
        record = self.dataset.records.get(number) if number is not None else None
        if record is None:
            return error(404, "The persistent identifier does not exist.")
        if record.deleted:
            return json_response({"status": 410, "message": "The record has been deleted.",
                                  "tombstone": {"removal_reason": {"id": "spam"}, "is_visible": True}},
                                 status=410)
        if not self._visible(record, request.get(USER)):
            return error(403, "Permission denied.")
        return record

    def _files_allowed(self, record: RecordSpec, user: str | None) -> bool:
        return record.files_public or (user is not None and user in record.owners)

    # -- search --------------------------------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.StreamResponse:
        asked = request.query.getall("communities", []) if self.flavor.legacy_query_fields else []
        known = [c for c in asked if c in self.dataset.communities]
        return await self._search(request, community=None, communities=known)

    def _community_slug(self, request: web.Request) -> str | None:
        """The community a path names, by its slug or its id (a UUID)."""
        named = request.match_info["slug"]
        return next((c for c in self.dataset.communities if named in (c, community_id(c))), None)

    async def community_search(self, request: web.Request) -> web.StreamResponse:
        slug = self._community_slug(request)
        if slug is None:
            return error(404, "The persistent identifier does not exist.")
        return await self._search(request, community=slug, communities=[slug])

    async def community(self, request: web.Request) -> web.StreamResponse:
        slug = self._community_slug(request)
        if slug is None:
            return error(404, "The persistent identifier does not exist.")
        return json_response({"id": community_id(slug), "slug": slug, "metadata": {"title": slug.upper()},
                              "links": {"records": f"{self.base_url}/api/communities/{slug}/records"}})

    async def versions(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        return await self._search(request, community=None, communities=[], concept=found.conceptrecid)

    async def _search(self, request: web.Request, *, community: str | None, communities: list[str],
                      concept: int | None = None) -> web.StreamResponse:
        args = request.query
        user = request.get(USER)
        cap = self.config.auth_page_size if user else self.config.guest_page_size
        try:
            page = int(args.get("page", "1"))
            size = int(args.get("size", str(self.config.default_page_size)))
        except ValueError:
            return error(400, "Invalid querystring parameters.")
        if size > cap and self.flavor.page_caps:
            message = f"Page size cannot be greater than {cap}."
            if not user:
                message = (f"Page size cannot be greater than {cap}. Please use authenticated requests to "
                           f"increase the limit to {self.config.auth_page_size}.")
            return json_response({"status": 400, "message": "A validation error occurred.",
                                  "errors": [{"field": "size", "messages": [message]}]}, status=400)
        if page < 1 or size < 1 or page * size > self.config.max_result_window:
            return error(400, "Invalid querystring parameters.")
        q = args.get("q", "")
        sort = args.get("sort") or ("bestmatch" if q else "newest")
        if sort not in SORT_OPTIONS:
            return error(400, f"Invalid sort option '{sort}'.")
        all_versions = concept is not None or any(
            args.get(name, "").lower() in ("1", "true", "yes", "on") for name in ("allversions", "all_versions"))
        try:
            hits, aggs = self._matches(q, sort, tuple(sorted(communities)), all_versions, user, concept)
        except QueryError:
            return error(400, "Invalid query string syntax.")
        page_hits = hits[(page - 1) * size : page * size]
        await self._ensure_md5([f for r in page_hits for f in r.files if r.files_public])
        body: dict[str, Any] = {"hits": {"hits": [self._serialize(request, r, in_search=True) for r in page_hits],
                                         "total": len(hits)},
                                "aggregations": aggs}
        if self.flavor.sort_by_in_search:
            body["sortBy"] = sort
        body["links"] = self._page_links(request, page=page, size=size, sort=sort, total=len(hits))
        return json_response(body, headers={"X-Source": "api"},
                             content_type="application/vnd.inveniordm.v1+json" if self._asked_native(request)
                             else "application/json")

    def _matches(self, q: str, sort: str, communities: tuple[str, ...], all_versions: bool,
                 user: str | None, concept: int | None) -> tuple[list[RecordSpec], dict[str, Any]]:
        """Filtered, sorted hits and their aggregations, cached per query."""
        key = (q, sort, communities, all_versions, user, concept)
        cached = self._search_cache.get(key)
        if cached is not None:
            self._search_cache.move_to_end(key)
            return cached
        query: Query = parse_query(q, self.flavor)
        pool = (self.dataset.concepts.get(concept, []) if concept is not None
                else self.dataset.records.values())
        if self.config.faults.broken_date_ranges and CREATED_RANGE.search(q):
            pool = []  # a back end that reads the sliced searches otherwise: they match nothing
        hits = [r for r in pool
                if (all_versions or r.is_latest) and self._visible(r, user) and not r.deleted
                and (not communities or any(c in r.communities for c in communities)) and query.match(r)]
        result = (sort_records(hits, sort, query), serialize.aggregations(hits))
        self._search_cache[key] = result
        if len(self._search_cache) > 64:
            self._search_cache.popitem(last=False)
        return result

    def _page_links(self, request: web.Request, *, page: int, size: int, sort: str, total: int) -> dict[str, str]:
        """self/prev/next, absolute; next is computed against total, not the 10k window (as Zenodo)."""
        params = {k: v for k, v in request.query.items() if k not in ("page", "size", "sort", "access_token")}
        params.update(size=str(size), sort=sort)

        def link(number: int) -> str:
            query = "&".join(f"{k}={quote(v, safe=':')}" for k, v in sorted({**params, "page": str(number)}.items()))
            return f"{self.base_url}{request.path}?{query}"

        links = {"self": link(page)}
        if page > 1:
            links["prev"] = link(page - 1)
        if page * size < total:
            links["next"] = link(page + 1)
        return links

    async def slash_redirect(self, request: web.Request) -> web.StreamResponse:
        target = f"{self.base_url}/api/records" + (f"?{request.query_string}" if request.query_string else "")
        return web.Response(status=301, headers={"Location": target}, text="Redirecting...",
                            content_type="text/html")

    # -- records and files ---------------------------------------------------------------------------------
    async def record(self, request: web.Request) -> web.StreamResponse:
        number = self.flavor.number_of(request.match_info["id"])
        if number is not None and number in self.dataset.concepts and number not in self.dataset.records:
            latest = self.dataset.latest(number)
            if latest is None:
                return error(410, "The record has been deleted.")
            return self._to_latest(latest)
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        await self._ensure_md5(found.files)
        return json_response(self._serialize(request, found),
                             headers={"ETag": '"4"' if self.flavor.name == "invenio" else 'W/"4"',
                                      "Link": self._linkset(found)})

    def _to_latest(self, latest: RecordSpec) -> web.Response:
        """A parent id's 302 to its latest version: absolute on Zenodo; relative with an HTML body on a stock
        instance (recorded at rogue-scholar.org)."""
        path = f"/api/records/{self.flavor.public_id(latest.id)}"
        if self.flavor.relative_redirects:
            return web.Response(status=302, headers={"Location": path}, text=REDIRECT_PAGE.format(path=path),
                                content_type="text/html")
        return web.Response(status=302, headers={"Location": f"{self.base_url}{path}"})

    async def versions_latest(self, request: web.Request) -> web.StreamResponse:
        concept = self.flavor.number_of(request.match_info["id"])
        if concept in self.dataset.records:
            concept = self.dataset.records[concept].conceptrecid
        latest = self.dataset.latest(concept) if concept is not None else None
        if latest is None:
            return error(404, "The persistent identifier does not exist.")
        location = f"{self.base_url}/api/records/{self.flavor.public_id(latest.id)}"
        return web.Response(status=301, headers={"Location": location})

    async def files(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        if not self._files_allowed(found, request.get(USER)):
            return error(403, "Permission denied.")
        await self._ensure_md5(found.files)
        return json_response(serialize.files_listing(self.dataset, self.base_url, found, self.flavor))

    def _file(self, request: web.Request) -> tuple[RecordSpec, FileSpec] | web.Response:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        if not self._files_allowed(found, request.get(USER)):
            return error(403, "Permission denied.")
        key = request.match_info["key"]
        spec = next((f for f in found.files if f.key == key), None)
        if spec is None:
            return error(404, "The requested file does not exist.")
        return found, spec

    async def file_metadata(self, request: web.Request) -> web.StreamResponse:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        await self._ensure_md5([found[1]])
        return json_response(serialize.file_entry(self.dataset, self.base_url, *found, self.flavor))

    async def api_content(self, request: web.Request) -> web.StreamResponse:
        return await self._content(request, ranges=self.config.range_mode in ("api", "both"))

    async def ui_content(self, request: web.Request) -> web.StreamResponse:
        return await self._content(request, ranges=self.config.range_mode in ("ui", "both"))

    async def _content(self, request: web.Request, *, ranges: bool) -> web.StreamResponse:
        found = self._file(request)
        if isinstance(found, web.Response):
            return found
        record, spec = found
        if self.presign is not None:  # on S3 storage the bytes are at a freshly signed URL of the store
            return web.Response(status=302, headers={"Location": self.presign(record, spec)})
        await self._ensure_md5([spec])
        headers = {"Accept-Ranges": "bytes", "OC-Checksum": f"MD5:{self.dataset.file_md5(spec).lstrip('0')}",
                   "Content-Disposition": _disposition(spec.key, request)}
        ranged = ranged_response(request, spec, headers, honour_range=ranges)
        if ranged is None:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{spec.size}"})
        response, start, end = ranged
        self.stats.range_requests += response.status == 206
        await response.prepare(request)
        if request.method != "HEAD":
            self.stats.bodies_in_flight += 1
            self.stats.bodies_peak = max(self.stats.bodies_peak, self.stats.bodies_in_flight)
            finished = False
            try:
                finished = await self.body.send(request, response, spec, start, end, label=f"{record.id}/{spec.key}",
                                                fault_key=request.path_qs, attempt=request[ATTEMPT])
            finally:
                self.stats.bodies_in_flight -= 1
                self.stats.bodies_cut += not finished
        return response

    def _count(self, n: int, label: str) -> None:
        self.stats.bytes_served += n
        self.stats.file_bytes[label] += n

    def _struck(self, fault: str, path: str) -> None:
        self.stats.faults[fault] += 1
        self.stats.struck[fault, path] += 1

    async def _break(self, request: web.Request, fault: str) -> None:
        await break_body(request, fault, self.config.faults.stall_seconds)

    async def archive(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        if not self._files_allowed(found, request.get(USER)):
            return error(403, "Permission denied.")
        if self.flavor.archive_cap and found.total_bytes > self.config.archive_limit:
            return error(400, "Archive download is only available for records with total file size up to "
                              f"{self.config.archive_limit} bytes.")
        response = web.StreamResponse(headers={"Content-Disposition":
                                                f"attachment; filename={self.flavor.public_id(found.id)}.zip"})
        response.content_type = "application/zip"
        response.enable_chunked_encoding()
        await response.prepare(request)
        entries = ((f.key, self.dataset.iter_file(f, 0, f.size, self.config.chunk_size)) for f in found.files)
        attempt, path = request[ATTEMPT], request.path_qs
        fault = self.faults.body_fault(path, attempt)  # a body fault strikes within the members' bytes
        strike = self.faults.position(fault, path, attempt, found.total_bytes) if fault else None
        sent = 0
        with contextlib.suppress(ConnectionError, ClientConnectionResetError):  # the client went away
            for piece in zip_stream(entries):
                if strike is not None and sent + len(piece) > strike:
                    self.stats.faults[str(fault)] += 1  # counted when it strikes
                    self.stats.struck[str(fault), request.path] += 1
                    cut = strike - sent
                    if fault == "corrupt":
                        piece = piece[:cut] + bytes([piece[cut] ^ 0xFF]) + piece[cut + 1:]
                        strike = None
                    else:
                        await response.write(piece[:cut])
                        await self._break(request, str(fault))
                        return response
                await response.write(piece)
                sent += len(piece)
                self._count(len(piece), f"{found.id}/files-archive")
            await response.write_eof()
        return response

    async def record_page(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        return web.Response(text=f"<html><body><h1>{found.title}</h1></body></html>", content_type="text/html",
                            headers={"Link": self._linkset(found)})

    def _linkset(self, record: RecordSpec) -> str:
        """The Signposting header of a record's answers and landing page, as both servers send it."""
        target = f"{self.base_url}/api/records/{self.flavor.public_id(record.id)}"
        return f'<{target}> ; rel="linkset" ; type="application/linkset+json"'

    async def doi_redirect(self, request: web.Request) -> web.StreamResponse:
        number = self.flavor.number_of_doi(request.match_info["doi"])
        if number is not None and number in self.dataset.records:
            location = f"{self.base_url}/records/{self.flavor.public_id(number)}"
            return web.Response(status=302, headers={"Location": location})
        return web.Response(status=404, text="<html><body>Not found</body></html>", content_type="text/html")

    async def stats_view(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.stats.snapshot())

    async def stats_reset(self, request: web.Request) -> web.StreamResponse:
        self.stats.reset()
        return json_response({"reset": True})


def community_id(slug: str) -> str:
    """A community's id: a UUID, the same for a slug in every run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"community:{slug}"))


def _disposition(key: str, request: web.Request) -> str:
    name = key.rsplit("/", 1)[-1]
    kind = "attachment" if request.path.endswith("/content") or request.query.get("download") else "inline"
    if name.isascii() and name.isprintable() and '"' not in name and ";" not in name:
        return f"{kind}; filename={name}"
    return f"{kind}; filename*=UTF-8''{quote(name)}"


@dataclass
class RunningEmulator:
    """A started server: its URL, counters and app."""

    url: str
    app: EmulatorApp
    runner: web.AppRunner
    port: int = 0
    store: RunningStore | None = None  # the object store, with presign

    @property
    def stats(self) -> EmulatorStats:
        return self.app.stats

    @property
    def store_url(self) -> str:
        assert self.store is not None, "the emulator runs without presign"
        return self.store.url

    @property
    def store_stats(self) -> StoreStats:
        assert self.store is not None, "the emulator runs without presign"
        return self.store.stats

    @property
    def dataset(self) -> Dataset:
        return self.app.dataset


class Emulator:
    """The local InvenioRDM server. ``async with Emulator(config) as running: running.url``."""

    def __init__(self, config: EmulatorConfig | None = None, dataset: Dataset | None = None,
                 *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config or EmulatorConfig()
        if dataset is None:
            dataset = (Dataset.from_json(self.config.dataset_file, seed=self.config.dataset.seed)
                       if self.config.dataset_file else Dataset.generate(self.config.dataset))
        self.dataset = dataset
        self.dataset.md5_cache = self.config.md5_cache
        self.ssl_context = ssl_context
        self.running: RunningEmulator | None = None

    async def start(self) -> RunningEmulator:
        store = await start_store(self.config, self.dataset, ssl_context=self.ssl_context) \
            if self.config.presign else None
        app = EmulatorApp(self.config, self.dataset)
        app.presign = store.store.presign if store else None
        access_log = logging.getLogger("aiohttp.access") if self.config.access_log else None
        runner = web.AppRunner(app.build(), handle_signals=False, access_log=access_log, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        site = web.SockSite(runner, sock, ssl_context=self.ssl_context)
        await site.start()
        port = sock.getsockname()[1]
        scheme = "https" if self.ssl_context else "http"
        app.base_url = (self.config.public_url or f"{scheme}://{self.config.host}:{port}").rstrip("/")
        self._precompute_md5()
        self.running = RunningEmulator(app.base_url, app, runner, port, store)
        return self.running

    def _precompute_md5(self) -> None:
        """Hash large generated files in the background (two threads) so the first request does not wait."""
        large = [spec for record in self.dataset.records.values() for spec in record.files
                 if spec.size >= 16 * 2**20]
        workers = [threading.Thread(target=lambda part=large[i::2]: [self.dataset.file_md5(s) for s in part],
                                    daemon=True) for i in range(2)]
        for worker in workers:
            worker.start()

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.runner.cleanup()
            if self.running.store is not None:
                await self.running.store.stop()
            self.running = None

    async def __aenter__(self) -> RunningEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _cancel_others() -> None:
    """Cancel what is left on the loop (stalled bodies) so it can close cleanly."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class EmulatorThread:
    """Runs an :class:`Emulator` on its own event loop in a background thread (for tests and sync code)."""

    def __init__(self, config: EmulatorConfig | None = None, dataset: Dataset | None = None,
                 *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.emulator = Emulator(config, dataset, ssl_context=ssl_context)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="asyncdl-emulator")
        self.running: RunningEmulator | None = None

    def start(self) -> RunningEmulator:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.emulator.start(), self._loop)
        self.running = future.result(timeout=60)
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(timeout=30)
            asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result(timeout=30)
            self.running = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

