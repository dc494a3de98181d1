"""The object store of an InvenioRDM on S3 storage (invenio-s3): file bytes at presigned URLs on a host of
their own, answering as S3 does.

A URL is ``/bucket/<bucket-id>/<object-id>/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=...&
X-Amz-Expires=...&X-Amz-SignedHeaders=host&X-Amz-Signature=<hmac>``, the HMAC (with a secret of this store)
over the method, the path, the date and the expiry. X-Amz-Expires counts from X-Amz-Date's whole second, to
the millisecond, so expiries under a second work. Range is always honoured. Refusals are S3's XML errors: a
request carrying an Authorization header is 400 (one auth mechanism only), a HEAD at a GET-signed URL or a
tampered URL 403 SignatureDoesNotMatch, an expired one 403 "Request has expired". Body faults, bandwidth
caps and the ``expired`` fault apply here, keyed by the path and its attempt number, whatever the signature.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import math
import secrets
import socket
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from asyncdl.emulator.body import BodySender, ranged_response, shared_link
from asyncdl.emulator.config import EmulatorConfig
from asyncdl.emulator.dataset import Dataset, FileSpec, RecordSpec
from asyncdl.emulator.faults import FaultPlan

ALGORITHM = "AWS4-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
TOKEN_PARAMS = ("access_token", "token")
ONE_AUTH = ("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
            "parameter or the Authorization header should be specified")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your key and "
            "signing method.")


class StoreStats:
    """What the store served and refused."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.credentials_seen = 0  # requests with an Authorization header, a token parameter or a Cookie
        self.statuses: Counter[int] = Counter()
        self.refused: Counter[str] = Counter()  # S3 error code -> times
        self.faults: Counter[str] = Counter()
        self.bytes_served = 0
        self.range_requests = 0
        self.bodies_in_flight = 0
        self.bodies_peak = 0  # most bodies sent at once
        self.bodies_cut = 0  # bodies the client left before their end

    def snapshot(self) -> dict[str, Any]:
        return {"requests": self.requests, "credentials_seen": self.credentials_seen,
                "statuses": {str(k): v for k, v in self.statuses.items()}, "refused": dict(self.refused),
                "faults": dict(self.faults), "bytes_served": self.bytes_served,
                "range_requests": self.range_requests, "bodies_peak": self.bodies_peak}


class Signer:
    """Signs a path for GET for ``expiry`` seconds, and judges a request's signature."""

    def __init__(self, expiry: float, *, secret: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.expiry, self.clock = expiry, clock
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, method: str, path: str, date: str, expires: str) -> str:
        text = f"{method}\n{path}\n{date}\n{expires}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def query(self, path: str) -> str:
        """The query string of a fresh GET signature of ``path``."""
        now = self.clock()
        whole = math.floor(now)
        date = time.strftime(DATE_FORMAT, time.gmtime(whole))
        expires = f"{now - whole + self.expiry:.3f}".rstrip("0").rstrip(".")
        return urlencode({"X-Amz-Algorithm": ALGORITHM, "X-Amz-Date": date, "X-Amz-Expires": expires,
                          "X-Amz-SignedHeaders": "host",
                          "X-Amz-Signature": self._mac("GET", path, date, expires)})

    def refusal(self, method: str, path: str, query: Mapping[str, str]) -> tuple[str, str] | None:
        """(S3 error code, message) for a signature that does not let ``method`` at ``path`` now, else None."""
        date, expires, given = (query.get(k, "") for k in ("X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature"))
        if query.get("X-Amz-Algorithm") != ALGORITHM or not given:
            return "AccessDenied", "Access Denied"
        # every URL is signed for GET: a HEAD (or any other method) needs a signature of its own
        if method != "GET" or not hmac.compare_digest(given, self._mac("GET", path, date, expires)):
            return "SignatureDoesNotMatch", MISMATCH
        try:
            expires_at = calendar.timegm(time.strptime(date, DATE_FORMAT)) + float(expires)
        except (ValueError, OverflowError):
            return "AccessDenied", "X-Amz-Date must be in the ISO8601 Long Format"
        if self.clock() > expires_at:
            return "AccessDenied", "Request has expired"
        return None


def s3_error(status: int, code: str, message: str) -> web.Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>")
    return web.Response(text=body, status=status, content_type="application/xml")


class ObjectStore:
    """The store's request handling; :meth:`presign` gives the URL the instance redirects a download to."""

    def __init__(self, config: EmulatorConfig, dataset: Dataset, *, signer: Signer | None = None) -> None:
        self.config = config
        self.stats = StoreStats()
        self.signer = signer or Signer(config.presign_expiry)
        self.base_url = ""
        self._objects: dict[str, FileSpec] = {}  # path -> file, registered when first signed
        self._attempts: Counter[str] = Counter()
        self.faults = FaultPlan(config.faults)
        self.body = BodySender(dataset, self.faults, config.chunk_size, self._count, self._struck,
                               shared_link(config.faults))

    def presign(self, record: RecordSpec, spec: FileSpec) -> str:
        """A fresh signed URL of the file's bytes."""
        bucket = uuid.uuid5(uuid.NAMESPACE_URL, f"bucket:{record.id}")
        stored = uuid.uuid5(uuid.NAMESPACE_URL, f"object:{spec.file_id or f'{record.id}:{spec.key}'}")
        path = f"/bucket/{bucket}/{stored}/data"
        self._objects[path] = spec
        return f"{self.base_url}{path}?{self.signer.query(path)}"

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.on_response_prepare.append(self._server_header)
        app.router.add_get("/_emulator/stats", self.stats_view)
        app.router.add_get(r"/bucket/{bucket}/{object}/data", self.object)
        return app

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            response: web.StreamResponse = await handler(request)
            return response
        self.stats.requests += 1
        if "Authorization" in request.headers or "Cookie" in request.headers or \
                any(p in request.query for p in TOKEN_PARAMS):
            self.stats.credentials_seen += 1
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # no such route: S3's own 404
            response = s3_error(exc.status, "NoSuchKey", "The specified key does not exist.")
        self.stats.statuses[response.status] += 1
        return response

    @staticmethod
    async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = "AmazonS3"

    async def object(self, request: web.Request) -> web.StreamResponse:
        if "Authorization" in request.headers and "X-Amz-Algorithm" in request.query:
            self.stats.refused["InvalidArgument"] += 1
            return s3_error(400, "InvalidArgument", ONE_AUTH)
        attempt = self._attempts[request.path]
        self._attempts[request.path] += 1
        refusal = self.signer.refusal(request.method, request.path, request.query)
        if refusal is None and self.faults.applies("expired", request.path, attempt):
            self.stats.faults["expired"] += 1
            refusal = "AccessDenied", "Request has expired"
        if refusal is not None:
            self.stats.refused[refusal[0]] += 1
            return s3_error(403, *refusal)
        spec = self._objects.get(request.path)
        if spec is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return await self._serve(request, spec, attempt)

    async def _serve(self, request: web.Request, spec: FileSpec, attempt: int) -> web.StreamResponse:
        name = spec.key.rsplit("/", 1)[-1]
        headers = {"Accept-Ranges": "bytes", "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        ranged = ranged_response(request, spec, headers)
        if ranged is None:
            return s3_error(416, "InvalidRange", "The requested range is not satisfiable")
        response, start, end = ranged
        self.stats.range_requests += response.status == 206
        await response.prepare(request)
        stats = self.stats
        stats.bodies_in_flight += 1
        stats.bodies_peak = max(stats.bodies_peak, stats.bodies_in_flight)
        finished = False
        try:
            finished = await self.body.send(request, response, spec, start, end, label=request.path,
                                            fault_key=request.path, attempt=attempt)
        finally:
            stats.bodies_in_flight -= 1
            stats.bodies_cut += not finished
        return response

    def _count(self, n: int, label: str) -> None:
        self.stats.bytes_served += n

    def _struck(self, fault: str, path: str) -> None:
        self.stats.faults[fault] += 1

    async def stats_view(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.snapshot())


class RunningStore:
    """A listening store: its base URL, counters and runner."""

    def __init__(self, store: ObjectStore, runner: web.AppRunner) -> None:
        self.store, self.runner = store, runner

    @property
    def url(self) -> str:
        return self.store.base_url

    @property
    def stats(self) -> StoreStats:
        return self.store.stats

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_store(config: EmulatorConfig, dataset: Dataset, *,
                      ssl_context: ssl.SSLContext | None = None) -> RunningStore:
    """Listen on ``config.presign_host`` (a free port); an address that cannot be bound raises OSError."""
    store = ObjectStore(config, dataset)
    runner = web.AppRunner(store.build(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((config.presign_host, 0))
    except OSError as exc:
        sock.close()
        await runner.cleanup()
        raise OSError(exc.errno, f"the presigned object store cannot listen on {config.presign_host}: "
                                 f"{exc.strerror}") from exc
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context else "http"
    store.base_url = f"{scheme}://{config.presign_host}:{sock.getsockname()[1]}"
    return RunningStore(store, runner)
