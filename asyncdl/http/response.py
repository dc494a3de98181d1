"""A response in asyncdl's terms: what the rest of the program reads of an answer, aiohttp kept inside."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from asyncdl.errors import BadResponseError, ConnectError, StalledError, TransportError
from asyncdl.pacing import Pacer
from asyncdl.redact import redact


def with_params(url: str, params: Mapping[str, str] | None) -> str:
    """The URL with ``params`` as its query string (added to any it has)."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params, safe=':/')}" if params else url


def is_html(content_type: str, body: bytes) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


def transport_error(exc: BaseException, doing: str, url: str) -> TransportError:
    """A connection failure as an asyncdl error, in words (a timeout is a stall)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(_cannot_connect(exc))
    kind = StalledError if isinstance(exc, TimeoutError) else TransportError
    return kind(f"{type(exc).__name__} {doing} {redact(url)}: {exc}")


def _cannot_connect(exc: aiohttp.ClientConnectorError) -> str:
    """"cannot connect to 127.0.0.1:9: connection refused", "cannot find the host doi.org: ..." """
    error = exc.os_error
    reason = (os.strerror(error.errno) if isinstance(error.errno, int) and not isinstance(error, socket.gaierror)
              else error.strerror or str(error) or type(error).__name__).lower()
    dns = getattr(aiohttp, "ClientConnectorDNSError", None)
    if (dns is not None and isinstance(exc, dns)) or isinstance(exc.os_error, socket.gaierror):
        return f"cannot find the host {exc.host}: {reason}"
    return f"cannot connect to {exc.host}:{exc.port}: {reason}"


class Response:
    """A successful answer whose body the caller reads (inside :meth:`Client.stream`'s ``async with``)."""

    def __init__(self, raw: aiohttp.ClientResponse, pacers: tuple[Pacer, ...] = ()) -> None:
        self._raw = raw
        self._pacers = pacers  # bandwidth caps the body is read under (--bwlimit, --bwlimit-file)
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = str(raw.url)

    @property
    def shown_url(self) -> str:
        """The URL for messages (token parameters masked)."""
        return redact(self.url)

    @property
    def content_length(self) -> int | None:
        return self._raw.content_length

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def encoding(self) -> str:
        """The Content-Encoding, lower-cased; "" for none or identity."""
        value = self.headers.get("Content-Encoding", "").strip().lower()
        return "" if value == "identity" else value

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The (decoded) body in chunks of at most ``size`` bytes; a connection that fails is turned into a
        TransportError by :meth:`Client._send`, around whose ``yield`` every body is read."""
        async for chunk in self._raw.content.iter_chunked(size):
            for pacer in self._pacers:
                await pacer.take(len(chunk))
            yield chunk

    async def read(self, limit: int) -> bytes:
        """The whole (decoded) body, refused past ``limit`` bytes: a huge or gzip-bomb answer costs no more."""
        if (self.content_length or 0) > limit and not self.encoding:
            raise BadResponseError(f"refused a {self.content_length}-byte answer from {self.shown_url} (more than "
                                   f"the {limit} bytes a JSON document may have)", url=self.shown_url,
                                   status=self.status)
        body = bytearray()
        async for chunk in self.chunks(256 * 1024):
            body += chunk
            if len(body) > limit:
                raise BadResponseError(f"refused an answer of more than {limit} bytes from {self.shown_url} (the "
                                       "most a JSON document may have)", url=self.shown_url, status=self.status)
        return bytes(body)

    async def json(self, limit: int) -> Any:
        """The JSON document of the body; an HTML page or malformed JSON is a BadResponseError."""
        body = await self.read(limit)
        if is_html(self.content_type, body):
            raise BadResponseError(f"expected JSON from {self.shown_url} but got an HTML page (status "
                                   f"{self.status})", url=self.shown_url, status=self.status)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BadResponseError(f"malformed or truncated JSON from {self.shown_url} (status {self.status}, "
                                   f"{len(body)} bytes)", url=self.shown_url, status=self.status) from exc
