"""A real HTTP server that answers with recorded responses (vcrpy cassettes), matched by method, path and
query. Recorded bodies are stored decoded while their ``Content-Encoding`` header remains, so that header
(and the framing ones) is dropped. A request with no recording is answered 599 and kept in ``unmatched``, so
a test can prove that nothing was asked beyond what was recorded."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.http_helpers import serve

DROPPED = {"content-encoding", "content-length", "transfer-encoding", "connection", "alt-svc",
           "strict-transport-security"}


@dataclass
class Recorded:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class ReplayServer:
    """Serves ``interactions`` (a cassette's list); the same request answered again gives the same answer."""

    interactions: list[dict[str, Any]]
    served: Counter[str] = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answers: dict[tuple[str, str], Recorded] = {}
        for interaction in self.interactions:
            request, response = interaction["request"], interaction["response"]
            parts = urlsplit(request["uri"])
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            self.answers.setdefault((request["method"].upper(), target), _recorded(response))

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", self.answer)
        return application

    async def answer(self, request: web.Request) -> web.Response:
        found = self.answers.get((request.method, request.path_qs))
        if found is None:
            self.unmatched.append(f"{request.method} {request.path_qs}")
            return web.Response(status=599, text="no recording of this request")
        self.served[request.path_qs] += 1
        response = web.Response(status=found.status, body=found.body)
        for name, value in found.headers:
            response.headers.add(name, value)
        return response

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        async with serve(self.app()) as base:
            yield base


def _recorded(response: dict[str, Any]) -> Recorded:
    """A vcrpy response (Python's format: status.code, body.string; httpx's: status_code, content)."""
    status = response["status"]["code"] if "status" in response else response["status_code"]
    body = response["body"]["string"] if "body" in response else response.get("content", "")
    headers = []
    for name, values in response["headers"].items():
        if name.lower() in DROPPED:
            continue
        for value in values if isinstance(values, list) else [values]:
            headers.append((name, str(value)))
    return Recorded(int(status), headers, body.encode() if isinstance(body, str) else bytes(body))
