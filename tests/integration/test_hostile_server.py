"""A server that answers badly: truncated or wrongly shaped JSON, redirect loops, gzip, lying lengths."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from asyncdl import Config, Selection, crawl_records
from asyncdl.errors import BadResponseError
from asyncdl.pipeline import mirror
from tests.http_helpers import serve

pytestmark = pytest.mark.anyio
BODY = b"0123456789"


def hit(record_id: int, base: str, *, size: object = len(BODY), key: str = "a.bin") -> dict[str, object]:
    return {"id": record_id, "conceptrecid": str(record_id - 1), "title": f"Record {record_id}",
            "created": "2020-01-01T00:00:00+00:00", "metadata": {"title": f"Record {record_id}",
                                                                "access_right": "open"},
            "files": [{"key": key, "size": size, "checksum": f"md5:{hashlib.md5(BODY).hexdigest()}",
                       "links": {"self": f"{base}/api/records/{record_id}/files/{key}/content"}}]}


@pytest.fixture
async def hostile() -> AsyncIterator[str]:
    """A real HTTP server on a free port whose answers are wrong in the ways the tests need."""
    state: dict[str, str] = {}

    async def record(request: web.Request) -> web.StreamResponse:
        rid = int(request.match_info["id"])
        base = state["base"]
        if rid == 2:
            return web.Response(body=json.dumps(hit(2, base)).encode()[:40], content_type="application/json")
        if rid == 3:
            return web.json_response([1, 2, 3])
        if rid == 4:
            return web.json_response(hit(4, base, size=-5))
        if rid == 5:
            raise web.HTTPFound(f"{base}/api/records/5")
        if rid == 6:
            body = gzip.compress(json.dumps(hit(6, base)).encode())
            return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if rid == 10:  # an HTML page with status 200 where JSON was expected
            return web.Response(text="<!DOCTYPE html><html><body>Maintenance</body></html>", content_type="text/html")
        if rid == 11:  # a gzip bomb: 3 MiB of JSON from a few KB on the wire
            padded = {**hit(11, base), "padding": " " * (3 * 1024 * 1024)}
            body = gzip.compress(json.dumps(padded).encode())
            return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        if rid == 12:  # a plain 3 MiB JSON document
            return web.json_response({**hit(12, base), "padding": " " * (3 * 1024 * 1024)})
        if rid == 13:  # a checksum in an algorithm asyncdl does not compute
            data = hit(13, base)
            data["files"][0]["checksum"] = "crc32c:" + hashlib.sha256(BODY).hexdigest()[:8]  # type: ignore[index]
            return web.json_response(data)
        if rid == 18:  # a malformed multipart checksum
            data = hit(18, base)
            data["files"][0]["checksum"] = "multipart:zz-0-0"  # type: ignore[index]
            return web.json_response(data)
        if rid == 14:  # neither size nor checksum
            data = hit(14, base)
            del data["files"][0]["size"], data["files"][0]["checksum"]  # type: ignore[index]
            return web.json_response(data)
        return web.json_response(hit(rid, base))

    async def content(request: web.Request) -> web.StreamResponse:
        rid = int(request.match_info["id"])
        if rid == 1:  # announces more bytes than the record's size
            return web.Response(body=BODY + b"xx", content_type="application/octet-stream")
        if rid == 7:  # gzip-encoded file body: the bytes after decoding are the file
            return web.Response(body=gzip.compress(BODY), headers={"Content-Type": "application/octet-stream",
                                                                   "Content-Encoding": "gzip"})
        if rid == 8:  # JSON error document with status 200 where the file should be
            return web.json_response({"status": 200, "message": "not a file"})
        if rid == 15:  # the file's bytes, labelled as something else
            return web.Response(body=BODY, content_type="text/plain")
        if rid == 16:  # the "unusual traffic" page
            return web.Response(text="<html><body>unusual traffic</body></html>", status=403, content_type="text/html")
        if rid == 17:  # an HTML page with status 200 where the file should be
            return web.Response(text="<html><body>Log in</body></html>", content_type="text/html")
        return web.Response(body=BODY, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/api/records/{id}", record)
    app.router.add_get("/api/records/{id}/files/{key}/content", content)
    async with serve(app) as base:
        state["base"] = base
        yield base


async def records(base: str, *ids: str, max_json_bytes: int = Config.max_json_bytes) -> list[str]:
    config = Config(base_url=base, retries=0, max_json_bytes=max_json_bytes)
    found = await crawl_records(Selection(identifiers=ids), config)
    return [r.id for r in found]


async def test_bad_json_is_a_clear_error(hostile: str) -> None:
    with pytest.raises(BadResponseError, match=r"malformed or truncated JSON from .*/api/records/2"):
        await records(hostile, "2")
    with pytest.raises(BadResponseError, match="record is not a JSON object"):
        await records(hostile, "3")
    with pytest.raises(BadResponseError, match="size"):
        await records(hostile, "4")
    with pytest.raises(BadResponseError, match="more than 10 redirects"):
        await records(hostile, "5")


async def test_gzip_json_is_read(hostile: str) -> None:
    assert await records(hostile, "6") == ["6"]


async def test_lying_lengths_and_non_files_are_refused(hostile: str, tmp_path: Path) -> None:
    summary = await mirror(Selection(identifiers=("1", "7", "8", "9")), tmp_path, Config(base_url=hostile,
                                                                                         retries=0))
    outcomes = {r.record_id: (r.outcome, r.reason) for r in summary.results}
    assert outcomes["9"][0] == "ok"
    assert outcomes["7"][0] == "ok"  # gzip on the wire, the file's own bytes on disk
    assert outcomes["1"][0] == "failed" and "announced 12 bytes for a file of 10" in outcomes["1"][1]
    assert outcomes["8"][0] == "failed"  # a JSON body of another size and md5 is never taken for the file
    assert (tmp_path / "7" / "a.bin").read_bytes() == BODY
    assert not (tmp_path / "1" / "a.bin").exists() and not (tmp_path / "8" / "a.bin").exists()


async def test_html_and_huge_json_are_refused(hostile: str) -> None:
    with pytest.raises(BadResponseError, match=r"expected JSON from .*/api/records/10 but got an HTML page"):
        await records(hostile, "10")
    assert await records(hostile, "11", "12") == ["11", "12"]  # 3 MiB is well under the cap
    for rid in ("11", "12"):  # past the cap, plain or as a gzip bomb: refused, never decoded whole
        with pytest.raises(BadResponseError, match=r"refused .* from .*/api/records/1[12]"):
            await records(hostile, rid, max_json_bytes=1024 * 1024)


async def test_unknown_or_missing_checksums_are_size_checked(hostile: str, tmp_path: Path) -> None:
    summary = await mirror(Selection(identifiers=("13", "14", "15", "18")), tmp_path,
                           Config(base_url=hostile, retries=0))
    outcomes = {r.record_id: r for r in summary.results}
    assert {rid: r.outcome for rid, r in outcomes.items()} == {"13": "ok", "14": "ok", "15": "ok", "18": "ok"}
    assert not outcomes["18"].verified and outcomes["18"].reason == (
        "size checked only; the record gives a malformed multipart checksum 'zz-0-0' (asyncdl reads "
        "<etag hex>-<parts>-<part size>)")
    assert not outcomes["13"].verified and not outcomes["14"].verified  # said so, not claimed
    assert outcomes["13"].reason == ("size checked only; the record gives a crc32c checksum, which asyncdl "
                                     "cannot compute")
    assert outcomes["14"].reason == "not verified: the record gives no size and no checksum"
    assert outcomes["15"].verified  # a wrong Content-Type does not matter: the md5 does
    assert all((tmp_path / rid / "a.bin").read_bytes() == BODY for rid in ("13", "14", "15"))


RECORD_ANSWERS = {"2": "malformed or truncated JSON", "3": "record is not a JSON object", "4": "size",
                  "5": "more than 10 redirects", "10": "expected JSON"}
FILE_ANSWERS = {"1": "announced 12 bytes for a file of 10", "8": "announced", "16": "blocked by the server",
                "17": "got an HTML page instead of the file"}


@pytest.mark.parametrize("rid", [*RECORD_ANSWERS, *FILE_ANSWERS])
async def test_every_bad_answer_is_one_line_naming_the_url(hostile: str, tmp_path: Path, rid: str) -> None:
    """As a user sees it: ``asyncdl get`` prints one line for the bad answer, with the URL that gave it, and
    exits 1; no traceback, and no file under its name."""
    done = await anyio.run_process([sys.executable, "-m", "asyncdl", "get", rid, "--base-url", hostile,
                                    "--retries", "0", "-q", "-o", str(tmp_path)], check=False)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    if rid in RECORD_ANSWERS:
        (line,) = stderr.splitlines()
        assert line.startswith("error: ") and RECORD_ANSWERS[rid] in line
        assert f"{hostile}/api/records/{rid}" in line, line
    else:
        (line,) = [text for text in stderr.splitlines() if text.startswith("failed: ")]
        assert FILE_ANSWERS[rid] in line, line
        assert f"{hostile}/api/records/{rid}/files/a.bin/content" in line, line
        assert not (tmp_path / rid / "a.bin").exists()
