"""One :class:`Client` per run: every request asyncdl sends goes through it.

It holds the session (which keeps no cookies), sends the User-Agent and the token (as a Bearer header, never
in a URL, and only to the configured host), paces every request through the host's :class:`Governor`,
follows redirects itself (so Authorization never crosses to another host), waits out 429s, and translates
every failure into an asyncdl error before the caller sees it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from asyncdl.brake import Brake
from asyncdl.config import Config
from asyncdl.errors import AsyncdlError, BadResponseError, RateLimitedError, fault_kind
from asyncdl.events import FaultMet, NullSink, ProgressSink, RateLimitPaused, RatePaced, RequestSent
from asyncdl.governor import Governor, GovernorStats, PauseNotice
from asyncdl.http.response import Response, transport_error, with_params
from asyncdl.http.retry import Retry
from asyncdl.http.statuses import error_for
from asyncdl.invenio import request_kind
from asyncdl.pacing import Pacer
from asyncdl.redact import redact

MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307, 308)
INITIAL_CONCURRENCY = 4  # requests of a bucket in flight before its limit is known (Zenodo's smallest is 30/min)


def host_of(url: str | URL) -> str:
    """``host:port`` of a URL, lower-cased: the key of its governor and of where the token may go."""
    parsed = url if isinstance(url, URL) else URL(url)
    return f"{(parsed.host or '').lower()}:{parsed.port}"


def host_key(spec: str) -> str:
    """The ``host:port`` a configured host names: ``data.caltech.edu`` (https, 443), ``127.0.0.1:8080``, or
    a URL (``http://example.org``)."""
    return host_of(spec if "://" in spec else f"https://{spec}")


@dataclass(frozen=True, slots=True)
class Hop:
    """One answer, its redirect not followed: the status, where it points and its ``Link`` header."""

    url: str
    status: int
    location: str | None
    link: str


class Client:
    """``async with Client(config, sink=sink) as client: await client.get_json(url)``. Every request sent
    (RequestSent), fault met (FaultMet) and rate-limit pause (RateLimitPaused) is an event for ``sink``."""

    def __init__(self, config: Config, *, sink: ProgressSink | None = None) -> None:
        self.config = config
        self.sink = sink or NullSink()
        self.brake = Brake(requests=config.no_progress_requests, seconds=config.no_progress_seconds)
        self._governors: dict[str, Governor] = {}
        self._tokens = {host_key(host): token for host, token in config.host_tokens if token}
        if config.token:
            self._tokens[host_of(config.base_url)] = config.token
        self._session: aiohttp.ClientSession | None = None
        self._bandwidth = Pacer(config.bwlimit) if config.bwlimit else None  # every download's, together

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=max(64, self.config.host_connections * 4),
                                         limit_per_host=self.config.host_connections)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout,
                                        sock_read=self.config.read_timeout)
        # no cookie jar: a cookie the instance sets (Zenodo's load balancer's) would go back to any host
        # under its name, whatever the port, such as an object store its downloads are redirected to
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                              cookie_jar=aiohttp.DummyCookieJar(), read_bufsize=self.config.chunk_size,
                                              headers={"User-Agent": self.config.user_agent})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def governors(self) -> dict[str, GovernorStats]:
        """Each host's governor, as it stands now (for the metrics)."""
        return {host: governor.stats for host, governor in list(self._governors.items())}

    def governor(self, url: str | URL) -> Governor:
        """The governor of the URL's host (one per host, shared by every request)."""
        host = host_of(url)
        if host not in self._governors:
            self._governors[host] = Governor(max_rate=self.config.max_rate, rate_share=self.config.rate_share,
                                             initial_concurrency=INITIAL_CONCURRENCY,
                                             on_pause=functools.partial(self._paused, host),
                                             on_pace=functools.partial(self._paced, host))
        return self._governors[host]

    def _paused(self, host: str, notice: PauseNotice) -> None:
        self.sink.emit(RateLimitPaused(host, notice.bucket, notice.seconds, notice.remaining, notice.limit))

    def _paced(self, host: str, notice: PauseNotice) -> None:
        self.sink.emit(RatePaced(host, notice.bucket, notice.seconds, notice.remaining, notice.limit))

    def fault(self, error: AsyncdlError, retry: int = 0, retries: int = 0, wait: float = 0.0) -> None:
        """Report a fault met (and retried, or ending a file): a reset, a stall, a 5xx, a corrupt body...; when
        retried, which retry of how many, in how many seconds."""
        self.sink.emit(FaultMet(fault_kind(error), str(error), retry, retries, wait))

    def retry(self, *, start: int = 0) -> Retry:
        """A new retry budget (see :class:`Retry`) for a request or a download starting at byte ``start``."""
        return Retry(self.config, start=start, on_fault=self.fault, on_retry=self.fault, brake=self.brake)

    def token_for(self, url: str | URL) -> str | None:
        """The token configured for the URL's host (``--token`` is base_url's), else None."""
        return self._tokens.get(host_of(url))

    def _headers(self, url: URL, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The request's headers; a token goes only to the host it is configured for (checked at every hop of
        a redirect, so it never crosses to another host)."""
        headers = dict(extra or {})
        if token := self.token_for(url):
            headers["Authorization"] = f"Bearer {token}"
        return headers

    @asynccontextmanager
    async def _send(self, url: str, *, headers: Mapping[str, str] | None, bucket: str,
                    follow: bool = True) -> AsyncIterator[aiohttp.ClientResponse]:
        """One governed GET, following redirects hop by hop (unless ``follow`` is False); transport errors
        become TransportError."""
        assert self._session is not None, "use the client inside 'async with'"
        for _ in range(MAX_REDIRECTS + 1):
            target = URL(url, encoded=True)
            self.brake.request()
            async with self.governor(target).request(bucket) as ticket:
                self.sink.emit(RequestSent(host_of(target), request_kind(target.path)))
                try:
                    response = await self._session.get(target, headers=self._headers(target, headers),
                                                       allow_redirects=False)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise transport_error(exc, "for", url) from exc  # Retry.after names it to the brake
                ticket.observe(response.status, response.headers)
            if follow and response.status in REDIRECTS and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                response.release()
                continue
            try:
                yield response
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise transport_error(exc, "while reading", url) from exc
            finally:
                response.release()
            return
        raise BadResponseError(f"more than {MAX_REDIRECTS} redirects from {redact(url)}", url=redact(url))

    def file_pacer(self) -> Pacer | None:
        """A new pacer for one file's bodies (``--bwlimit-file``), or None."""
        return Pacer(self.config.bwlimit_file) if self.config.bwlimit_file else None

    @asynccontextmanager
    async def download(self, url: str, *, headers: Mapping[str, str] | None = None,
                       pacer: Pacer | None = None) -> AsyncIterator[Response]:
        """:meth:`stream` for file bytes: the body is read under the run's bandwidth cap and ``pacer``'s."""
        pacers = tuple(p for p in (self._bandwidth, pacer) if p is not None)
        async with self.stream(url, headers=headers, pacers=pacers) as response:
            yield response

    @asynccontextmanager
    async def stream(self, url: str, *, headers: Mapping[str, str] | None = None, bucket: str = "default",
                     pacers: tuple[Pacer, ...] = ()) -> AsyncIterator[Response]:
        """A successful (2xx) response whose body the caller reads; 429s are waited out and retried.

        Error statuses raise the matching asyncdl error before the body is touched; reading the body
        may raise TransportError (reset, stall past the read timeout, early end).
        """
        waits = 0
        while True:
            async with self._send(url, headers=headers, bucket=bucket) as raw:
                if raw.status != 429:
                    if raw.status >= 400:
                        body = await raw.content.read(65536)
                        error = error_for(raw.status, url=redact(str(raw.url)),
                                          content_type=raw.headers.get("Content-Type", ""), body=body,
                                          redirected=host_of(raw.url) != host_of(url))
                        self._judge(error)
                        raise error
                    yield Response(raw, pacers)
                    return
            waited = RateLimitedError.from_status(raw.status, url=redact(url))
            self.fault(waited)
            self.brake.problem(str(waited))
            waits += 1
            if waits > self.config.max_rate_limit_waits:
                raise RateLimitedError(f"still rate limited after {waits} waits at {redact(url)}", url=redact(url))

    def _judge(self, error: AsyncdlError) -> None:
        """A definitive answer (403, 404, 410...) is progress for the brake: the run learnt something.
        A retryable one is named to the brake by Retry.after, where every retried error is."""
        if not error.retryable:
            self.brake.progress()

    async def hop(self, url: str) -> Hop:
        """GET ``url`` without following its redirect (retrying what can be retried); error statuses raise."""
        retry = self.retry()
        while True:
            try:
                async with self._send(url, headers={"Accept": "text/html,application/json"}, bucket="default",
                                      follow=False) as raw:
                    if raw.status >= 400:
                        body = await raw.content.read(65536)
                        error = (RateLimitedError.from_status(raw.status, url=redact(url)) if raw.status == 429
                                 else error_for(raw.status, url=redact(url),
                                                content_type=raw.headers.get("Content-Type", ""), body=body))
                        self._judge(error)
                        raise error
                    location = raw.headers.get("Location") if raw.status in REDIRECTS else None
                    self.brake.progress()
                    return Hop(url, raw.status, location, raw.headers.get("Link", ""))
            except AsyncdlError as exc:
                await retry.after(exc)

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None, bucket: str = "default",
                       accept: str = "application/json") -> Any:
        """GET a JSON document, retrying what can be retried (:class:`Retry`); raise an asyncdl error otherwise."""
        url = with_params(url, params)
        retry = self.retry()
        while True:
            try:
                async with self.stream(url, headers={"Accept": accept}, bucket=bucket) as response:
                    document = await response.json(self.config.max_json_bytes)
                self.brake.progress()
                return document
            except AsyncdlError as exc:
                await retry.after(exc)
