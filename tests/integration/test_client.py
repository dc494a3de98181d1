"""The HTTP client on its own, against a real server: redirects hop by hop, connections given back, rate
headers learnt, requests counted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from asyncdl import Config
from asyncdl.errors import BadResponseError
from asyncdl.events import ListSink, RequestSent
from asyncdl.http import Client
from asyncdl.http.client import MAX_REDIRECTS
from tests.http_helpers import serve

pytestmark = pytest.mark.anyio
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

    app = web.Application()
    app.router.add_get("/hop/{left}/{status}", hop)
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
