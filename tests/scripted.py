"""A real HTTP server whose file answers follow a script per record: short bodies, ignored or misaligned
Range answers, truncated archives. It counts every request by path, so tests can bound what a download
cost. Records are served in Zenodo's legacy JSON shape, by id and through a paged search."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.http_helpers import serve

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Script:
    """How one record's file is served (the file is ``body``, key ``key``)."""

    body: bytes = b"0123456789"
    key: str = "a.bin"
    md5: bool = True  # the record gives the md5
    stated_md5: str | None = None  # the md5 the record states, when not the body's own
    size: bool = True  # the record gives the size
    stated_size: int | None = None  # the size the record states, when not the body's own
    ranges: bool = False  # Range is honoured with a 206 (else every answer is a 200 of the whole file)
    end_at: int | None = None  # no body goes past this byte of the file: it ends there, cleanly (chunked)
    per_answer: int | None = None  # each body ends, cleanly, after this many bytes
    start_shift: int = 0  # a 206 says (and serves) a start this far from the one asked for
    total: int | None = None  # a 206's Content-Range names this total instead of the file's size
    content_range: bool = True  # a 206 carries a Content-Range at all
    status: int = 200  # anything else: every file request answered with this status (JSON body)
    archive_cut: int | None = None  # the files-archive ends, cleanly, after this many bytes
    archive_status: int = 200  # anything else: the files-archive answers with this status (JSON body)
    ui_route: bool = True  # the UI download URL exists (else it answers 404, as on instances without it)
    extra_files: dict[str, bytes] = field(default_factory=dict)  # more files of the record, served plainly


class ScriptedServer:
    """``async with ScriptedServer({1: Script(...)}) as server``: ``server.base``, ``server.served``."""

    def __init__(self, scripts: dict[int, Script], *, hidden: frozenset[int] = frozenset(),
                 vanish: bool = False) -> None:
        self.scripts = scripts
        self.hidden = hidden  # records the search counts in its total but never serves on a page
        self.vanish = vanish  # a one-hit request (a recount) no longer counts the hidden records
        self.served: Counter[str] = Counter()  # request path -> requests
        self.base = ""

    def files(self, rid: int) -> dict[str, bytes]:
        script = self.scripts[rid]
        return {script.key: script.body, **script.extra_files}

    def hit(self, rid: int) -> dict[str, object]:
        script = self.scripts[rid]
        entries = []
        for key, body in self.files(rid).items():
            entry: dict[str, object] = {"key": key,
                                        "links": {"self": f"{self.base}/api/records/{rid}/files/{key}/content"}}
            if script.size or key != script.key:
                entry["size"] = script.stated_size if key == script.key and script.stated_size else len(body)
            if script.md5 or key != script.key:
                stated = script.stated_md5 if key == script.key and script.stated_md5 else None
                entry["checksum"] = f"md5:{stated or hashlib.md5(body).hexdigest()}"
            entries.append(entry)
        return {"id": rid, "conceptrecid": str(rid - 1), "created": "2020-01-01T00:00:00+00:00",
                "metadata": {"title": f"Record {rid}", "access_right": "open"}, "files": entries}

    async def _record(self, request: web.Request) -> web.StreamResponse:
        self.served[request.path] += 1
        return web.json_response(self.hit(int(request.match_info["id"])))

    async def _search(self, request: web.Request) -> web.StreamResponse:
        self.served["search"] += 1
        page, size = int(request.query.get("page", "1")), int(request.query.get("size", "25"))
        ids = sorted(self.scripts)
        served = [rid for rid in ids if rid not in self.hidden]
        hits = [self.hit(rid) for rid in served[(page - 1) * size: page * size]]
        total = len(served) if self.vanish and size == 1 else len(ids)
        return web.json_response({"hits": {"hits": hits, "total": total}, "links": {}})

    async def _archive(self, request: web.Request) -> web.StreamResponse:
        self.served[request.path] += 1
        rid = int(request.match_info["id"])
        if (status := self.scripts[rid].archive_status) != 200:
            return web.json_response({"status": status, "message": "scripted"}, status=status)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for key, body in self.files(rid).items():
                archive.writestr(key, body)
        data = buffer.getvalue()
        cut = self.scripts[rid].archive_cut
        return await self._chunked(request, 200, data if cut is None else data[:cut], {})

    async def _content(self, request: web.Request) -> web.StreamResponse:
        self.served[request.path] += 1
        rid, key = int(request.match_info["id"]), request.match_info["key"]
        script = self.scripts[rid]
        body = self.files(rid)[key]
        if key != script.key:
            return web.Response(body=body, content_type="application/octet-stream")
        if script.status != 200:
            return web.json_response({"status": script.status, "message": "scripted"}, status=script.status)
        if not script.ui_route and not request.path.startswith("/api/"):
            return web.json_response({"status": 404, "message": "no such route"}, status=404)
        asked = _RANGE.match(request.headers.get("Range", ""))
        start, stop, status, headers = 0, len(body), 200, {}
        if asked and script.ranges:
            start = int(asked.group(1)) + script.start_shift
            stop = int(asked.group(2)) + 1 if asked.group(2) else len(body)
            status = 206
            if script.content_range:
                total = script.total if script.total is not None else len(body)
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        if script.end_at is not None:
            stop = min(stop, max(start, script.end_at))
        if script.per_answer is not None:
            stop = min(stop, start + script.per_answer)
        return await self._chunked(request, status, body[start:stop], headers)

    @staticmethod
    async def _chunked(request: web.Request, status: int, data: bytes, headers: dict[str, str]) -> web.StreamResponse:
        """A body with no Content-Length that ends cleanly (chunked), however short."""
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/octet-stream", **headers})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if data:
            await response.write(data)
        await response.write_eof()
        return response

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ScriptedServer]:
        app = web.Application()
        app.router.add_get("/api/records", self._search)
        app.router.add_get("/api/records/{id}", self._record)
        app.router.add_get("/api/records/{id}/files-archive", self._archive)
        app.router.add_get("/api/records/{id}/files/{key:.+}/content", self._content)
        app.router.add_get("/records/{id}/files/{key:.+}", self._content)  # the UI download URL
        async with serve(app) as self.base:
            yield self

    def file_requests(self, rid: int) -> int:
        """Requests for the scripted file of record ``rid``, at either URL."""
        key = self.scripts[rid].key
        return self.served[f"/api/records/{rid}/files/{key}/content"] + self.served[f"/records/{rid}/files/{key}"]
