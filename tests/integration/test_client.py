"""The HTTP client on its own, against a real server: redirects hop by hop, connections given back, rate
headers learnt, requests counted."""

from __future__ import annotations

import gzip
import random
import re
import socket
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web

from asyncdl import Config
from asyncdl.errors import BadResponseError, NoProgressError, RateLimitedError, RemoteError
from asyncdl.events import FaultMet, ListSink, RequestSent
from asyncdl.http import Client
from asyncdl.http.client import MAX_REDIRECTS
from tests.http_helpers import serve

pytestmark = pytest.mark.anyio
INCOMPRESSIBLE = random.Random(7).randbytes(1000)
LIMITS = {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49", "Retry-After": "60"}


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def hop(request: web.Request) -> web.StreamResponse:
        left, status = int(request.match_info["left"]), int(request.match_info["status"])
        if left == 0:
            return web.json_response({"hops": "done"}, headers=LIMITS)
        return web.Response(status=status, headers={"Location": f"/hop/{left - 1}/{status}", **LIMITS})

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>" + "x" * 2_000_000 + "</html>", content_type="text/html")

    async def hop_with_body(request: web.Request) -> web.StreamResponse:
        left = int(request.match_info["left"])
        if left == 0:
            return web.json_response({"hops": "done"})
        return web.Response(status=302, text="Redirecting" + "." * 300_000,  # as a web server's page says
                            headers={"Location": f"/hop-with-body/{left - 1}"})

    async def located(request: web.Request) -> web.StreamResponse:  # a 200 that names a Location: no redirect
        return web.json_response({"here": True}, headers={"Location": "/hop/0/302"})

    errors_sent = 0

    async def broken_error(request: web.Request) -> web.StreamResponse:
        """First a 503 whose page breaks off (a reset while its body is read), then the document."""
        nonlocal errors_sent
        if errors_sent:
            return web.json_response({"ok": True})
        errors_sent += 1
        response = web.StreamResponse(status=503)
        response.content_length = 100_000
        await response.prepare(request)  # the headers, then not a byte of the page
        assert request.transport is not None
        request.transport.abort()
        return response

    limited_sent = 0

    async def limited(request: web.Request) -> web.StreamResponse:
        """429 with Retry-After 0 for the first ``once`` requests (all of them without ``once``), then JSON."""
        nonlocal limited_sent
        limited_sent += 1
        once = int(request.query.get("once", "0"))
        if once and limited_sent > once:
            return web.json_response({"ok": True})
        return web.json_response({"status": 429}, status=429, headers={"Retry-After": "0"})

    async def status(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": int(request.match_info["code"]), "message": "the server's own words"},
                                 status=int(request.match_info["code"]))

    async def sized(request: web.Request) -> web.StreamResponse:  # with Content-Length
        return web.Response(body=b"x" * int(request.match_info["size"]), content_type="application/json")

    async def chunked(request: web.Request) -> web.StreamResponse:  # no Content-Length
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"x" * int(request.match_info["size"]))
        await response.write_eof()
        return response

    async def gzipped(request: web.Request) -> web.StreamResponse:  # compressed, larger than the decoded body
        return web.Response(body=gzip.compress(INCOMPRESSIBLE), headers={"Content-Encoding": "gzip",
                                                                         "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/sized/{size}", sized)
    app.router.add_get("/chunked/{size}", chunked)
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/hop/{left}/{status}", hop)
    app.router.add_get("/hop-with-body/{left}", hop_with_body)
    app.router.add_get("/located", located)
    app.router.add_get("/broken-error", broken_error)
    app.router.add_get("/limited", limited)
    app.router.add_get("/page", page)
    async with serve(app) as base:
        yield base


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_is_followed_hop_by_hop(server: str, status: int) -> None:
    events = ListSink()
    async with Client(Config(base_url=server), sink=events) as client:
        assert await client.get_json(f"{server}/hop/3/{status}") == {"hops": "done"}
    assert sum(isinstance(e, RequestSent) for e in events.events) == 4  # each hop: a request, governed, counted


async def test_at_most_max_redirects_are_followed(server: str) -> None:
    async with Client(Config(base_url=server, retries=0)) as client:
        assert await client.get_json(f"{server}/hop/{MAX_REDIRECTS}/302") == {"hops": "done"}
        with pytest.raises(BadResponseError, match=f"more than {MAX_REDIRECTS} redirects"):
            await client.get_json(f"{server}/hop/{MAX_REDIRECTS + 1}/302")


async def test_connections_are_given_back(server: str) -> None:
    """With one connection per host, a redirect chain and answers left unread (an HTML page refused) must
    each give their connection back, or the next request waits for ever."""
    async with Client(Config(base_url=server, connections_per_host=1, retries=0, read_timeout=5)) as client:
        for _ in range(3):
            with pytest.raises(BadResponseError, match="expected JSON"):
                await client.get_json(f"{server}/page")
            async with client.stream(f"{server}/page") as response:
                assert response.status == 200  # the body is never read
            assert await client.get_json(f"{server}/hop/2/302") == {"hops": "done"}


async def test_rate_headers_are_learnt(server: str) -> None:
    async with Client(Config(base_url=server)) as client:
        await client.get_json(f"{server}/hop/0/302")
        bucket = client.governor(server).stats.buckets["default"]
        assert (bucket.limit, bucket.remaining, bucket.window) == (50, 49, 60.0)


async def test_a_redirect_with_a_page_gives_its_connection_back(server: str) -> None:
    async with Client(Config(base_url=server, connections_per_host=1, retries=0, read_timeout=5)) as client:
        with anyio.fail_after(30):  # an unreleased hop would hold the one connection: the next waits for ever
            assert await client.get_json(f"{server}/hop-with-body/3") == {"hops": "done"}


async def test_a_location_header_on_a_200_is_not_a_redirect(server: str) -> None:
    events = ListSink()
    async with Client(Config(base_url=server), sink=events) as client:
        assert await client.get_json(f"{server}/located") == {"here": True}
    assert sum(isinstance(e, RequestSent) for e in events.events) == 1


async def test_an_error_page_that_breaks_off_is_a_lost_connection_and_retried(server: str) -> None:
    events = ListSink()
    config = Config(base_url=server, backoff_base=0.001, backoff_max=0.005)
    async with Client(config, sink=events) as client:
        assert await client.get_json(f"{server}/broken-error") == {"ok": True}
    assert [e.kind for e in events.events if isinstance(e, FaultMet)] == ["connection"]


async def test_each_429_is_one_fault_and_the_waits_are_bounded(server: str) -> None:
    events = ListSink()
    async with Client(Config(base_url=server, max_rate_limit_waits=2), sink=events) as client:
        assert await client.get_json(f"{server}/limited?once=1") == {"ok": True}
        assert [e.kind for e in events.events if isinstance(e, FaultMet)] == ["429"]
        with anyio.fail_after(20), pytest.raises(RateLimitedError, match="still rate limited after 3 waits"):
            async with client.stream(f"{server}/limited"):
                pass
    assert sum(isinstance(e, RequestSent) for e in events.events) == 2 + 3  # waits 1 and 2, then refused


@pytest.mark.parametrize("why", ["a refused connection", "429s"])
async def test_the_brake_names_the_last_problem(server: str, why: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    url, named = (f"{closed}/x", "cannot connect to 127.0.0.1") if why == "a refused connection" else (
        f"{server}/limited", "rate limited (429)")
    config = Config(base_url=server, retries=10, backoff_base=0.001, backoff_max=0.005, max_rate_limit_waits=10,
                    no_progress_requests=2, no_progress_seconds=0)
    async with Client(config) as client:
        with pytest.raises(NoProgressError, match=re.escape("the last problem: ") + ".*" + re.escape(named)):
            await client.get_json(url)


@pytest.mark.parametrize("code", [400, 401, 404, 422])
async def test_an_error_status_raises_with_the_servers_words(server: str, code: int) -> None:
    events = ListSink()
    async with Client(Config(base_url=server), sink=events) as client:
        with pytest.raises(RemoteError, match=f"{code}.*the server's own words"):
            async with client.stream(f"{server}/status/{code}"):
                raise AssertionError("an error status is never handed over as an answer")
    assert sum(isinstance(e, RequestSent) for e in events.events) == 1


@pytest.mark.parametrize("route", ["sized", "chunked"])
async def test_a_json_answer_may_have_up_to_the_limit_and_not_a_byte_more(server: str, route: str) -> None:
    refused = "refused a 1001-byte answer" if route == "sized" else "refused an answer of more than 1000 bytes"
    async with Client(Config(base_url=server, retries=0)) as client:
        async with client.stream(f"{server}/{route}/1000") as response:
            assert await response.read(1000) == b"x" * 1000
        with pytest.raises(BadResponseError, match=refused):  # a stated length is refused before reading
            async with client.stream(f"{server}/{route}/1001") as response:
                await response.read(1000)


async def test_a_compressed_answer_is_judged_by_its_decoded_size(server: str) -> None:
    async with Client(Config(base_url=server, retries=0)) as client, client.stream(f"{server}/gzipped") as response:
        assert (response.content_length or 0) > 1000  # the compressed length says nothing of the JSON
        assert await response.read(1000) == INCOMPRESSIBLE
