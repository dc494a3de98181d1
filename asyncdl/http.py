"""HTTP for asyncdl: the only module that imports aiohttp.

One :class:`Client` per run holds the session, sends the User-Agent and the token (as a Bearer
header, never in a URL), paces every request through the host's :class:`Governor`, follows
redirects itself (dropping Authorization when the host changes), retries 5xx and connection errors
with jittered backoff, waits out 429s, and translates every failure into an asyncdl error.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
import anyio
from yarl import URL

from asyncdl.brake import Brake
from asyncdl.config import Config
from asyncdl.errors import (
    AccessDeniedError,
    AuthenticationError,
    BadResponseError,
    BlockedError,
    GoneError,
    NotFoundError,
    RateLimitedError,
    RemoteError,
    ServerError,
    TransportError,
    fault_kind,
)
from asyncdl.governor import Governor, PauseNotice
from asyncdl.redact import redact

MAX_REDIRECTS = 10
INITIAL_CONCURRENCY = 4  # requests of a bucket in flight before its limit is known (Zenodo's smallest is 30/min)
MAX_JSON_BYTES = 64 * 1024 * 1024  # far above any record or page Zenodo sends (a few MB at most)


def _host(url: str | URL) -> str:
    """``host:port`` of a URL, lower-cased: the key of its governor and of where the token may go."""
    parsed = url if isinstance(url, URL) else URL(url)
    return f"{(parsed.host or '').lower()}:{parsed.port}"


def with_params(url: str, params: Mapping[str, str] | None) -> str:
    """The URL with ``params`` as its query string (added to any it has)."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, safe=':/')}" if params else url


def is_html(content_type: str, body: bytes) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


@dataclass
class ClientStats:
    """What the client did, for the run summary."""

    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # fault kind (errors.fault_kind) -> times met

    def note(self, error: BaseException) -> None:
        """Count a fault met (and retried, or reported): a reset, a stall, a 5xx, a corrupt body..."""
        self.faults[fault_kind(error)] += 1


class Client:
    """``async with Client(config) as client: await client.get_json(url)``."""

    def __init__(self, config: Config, *, on_pause: Callable[[PauseNotice], None] | None = None) -> None:
        self.config = config
        self.stats = ClientStats()
        self.brake = Brake(requests=config.no_progress_requests, seconds=config.no_progress_seconds)
        self._on_pause = on_pause
        self._governors: dict[str, Governor] = {}
        self._base_host = _host(config.base_url)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=max(64, self.config.connections_per_host * 4),
                                         limit_per_host=self.config.connections_per_host)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout,
                                        sock_read=self.config.read_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                              read_bufsize=self.config.chunk_size,
                                              headers={"User-Agent": self.config.user_agent})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def governor(self, url: str | URL) -> Governor:
        """The governor of the URL's host (one per host, shared by every request)."""
        host = _host(url)
        if host not in self._governors:
            self._governors[host] = Governor(max_rate=self.config.max_rate, rate_share=self.config.rate_share,
                                             initial_concurrency=INITIAL_CONCURRENCY, on_pause=self._on_pause)
        return self._governors[host]

    @property
    def throttled(self) -> int:
        """429s received, over every host."""
        return sum(g.stats.throttled for g in self._governors.values())

    def _headers(self, url: URL, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The request's headers; the token goes only to the configured host (never across a redirect)."""
        headers = dict(extra or {})
        if self.config.token and _host(url) == self._base_host:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return headers

    @asynccontextmanager
    async def _send(self, url: str, *, headers: Mapping[str, str] | None,
                    bucket: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """One governed GET, following redirects hop by hop; transport errors become TransportError."""
        assert self._session is not None, "use the client inside 'async with'"
        for _ in range(MAX_REDIRECTS + 1):
            target = URL(url, encoded=True)
            self.brake.request()
            async with self.governor(target).request(bucket) as ticket:
                self.stats.requests += 1
                try:
                    response = await self._session.get(target, headers=self._headers(target, headers),
                                                       allow_redirects=False)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = TransportError(f"{type(exc).__name__} for {redact(url)}: {exc}",
                                           timed_out=isinstance(exc, TimeoutError))
                    self.brake.problem(str(error))
                    raise error from exc
                ticket.observe(response.status, response.headers)
            if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                response.release()
                continue
            try:
                yield response
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransportError(f"{type(exc).__name__} while reading {redact(url)}: {exc}",
                                     timed_out=isinstance(exc, TimeoutError)) from exc
            finally:
                response.release()
            return
        raise BadResponseError(f"more than {MAX_REDIRECTS} redirects from {redact(url)}", url=redact(url))

    @asynccontextmanager
    async def stream(self, url: str, *, headers: Mapping[str, str] | None = None,
                     bucket: str = "default") -> AsyncIterator[aiohttp.ClientResponse]:
        """A successful (2xx) response whose body the caller reads; 429s are waited out and retried.

        Error statuses raise the matching asyncdl error before the body is touched; reading the body
        may raise TransportError (reset, stall past the read timeout, early end).
        """
        waits = 0
        while True:
            async with self._send(url, headers=headers, bucket=bucket) as response:
                if response.status != 429:
                    if response.status >= 400:
                        body = await response.content.read(65536)
                        error = error_for(response.status, url=redact(str(response.url)),
                                          content_type=response.headers.get("Content-Type", ""), body=body)
                        if error.retryable:
                            self.brake.problem(str(error))
                        else:  # a definitive answer (403, 404, 410...): the run learnt something
                            self.brake.progress()
                        raise error
                    yield response
                    return
            self.stats.faults["429"] += 1
            self.brake.problem(f"rate limited (429) at {redact(url)}")
            waits += 1
            if waits > self.config.max_rate_limit_waits:
                raise RateLimitedError(f"still rate limited after {waits} waits at {redact(url)}", url=redact(url))

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None, bucket: str = "default",
                       accept: str = "application/json") -> Any:
        """GET a JSON document, retrying what can be retried; raise an asyncdl error otherwise."""
        url = with_params(url, params)
        attempt = 0
        while True:
            try:
                async with self.stream(url, headers={"Accept": accept}, bucket=bucket) as response:
                    document = parse_json(response, await read_capped(response, MAX_JSON_BYTES))
                self.brake.progress()
                return document
            except (ServerError, TransportError, BlockedError) as exc:
                self.stats.note(exc)
                attempt += 1
                if attempt > self.config.retries:
                    raise
                await anyio.sleep(self.backoff(attempt))

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt`` (1-based): exponential, capped, with full jitter."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)



async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole (decoded) body, refused past ``limit`` bytes: a huge or gzip-bomb answer costs no more."""
    url = redact(str(response.url))
    if (response.content_length or 0) > limit and "Content-Encoding" not in response.headers:
        raise BadResponseError(f"refused a {response.content_length}-byte answer from {url} (more than the "
                               f"{limit} bytes a JSON document may have)", url=url, status=response.status)
    body = bytearray()
    async for chunk in response.content.iter_chunked(256 * 1024):
        body += chunk
        if len(body) > limit:
            raise BadResponseError(f"refused an answer of more than {limit} bytes from {url} (the most a JSON "
                                   "document may have)", url=url, status=response.status)
    return bytes(body)


def parse_json(response: aiohttp.ClientResponse, body: bytes) -> Any:
    """The JSON document in a 2xx response; an HTML page or malformed JSON is a BadResponseError."""
    url, status = redact(str(response.url)), response.status
    if is_html(response.headers.get("Content-Type", ""), body):
        raise BadResponseError(f"expected JSON from {url} but got an HTML page (status {status})", url=url,
                               status=status)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadResponseError(f"malformed or truncated JSON from {url} (status {status}, {len(body)} bytes)",
                               url=url, status=status) from exc


def _message(body: bytes) -> str:
    """The server's own message, if its body is JSON with one."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            messages = errors[0].get("messages") or []
            return "; ".join(str(m) for m in messages) or str(data.get("message", ""))
        return str(data.get("message", ""))
    return ""


def error_for(status: int, *, url: str, content_type: str, body: bytes) -> RemoteError:
    """The asyncdl error for an HTTP error status other than 429 (never raised here: returned; 429s are
    waited out by :meth:`Client.stream`)."""
    said = _message(body)
    detail = f": {said}" if said else ""
    if status == 401:
        return AuthenticationError(f"the server refused the token (401) for {url}{detail}", url=url, status=status)
    if status == 403 and is_html(content_type, body):
        return BlockedError(f"blocked by the server (403 HTML page, 'unusual traffic') at {url}", url=url,
                            status=status)
    if status == 403:
        return AccessDeniedError(f"access denied (403: restricted or embargoed) at {url}{detail}", url=url,
                                 status=status)
    if status == 404:
        return NotFoundError(f"not found (404) at {url}{detail}", url=url, status=status)
    if status == 410:
        return GoneError(f"deleted (410) at {url}{detail}", url=url, status=status)
    if status >= 500:
        return ServerError(f"server error {status} at {url}", url=url, status=status)
    return RemoteError(f"HTTP {status} at {url}{detail}", url=url, status=status)
