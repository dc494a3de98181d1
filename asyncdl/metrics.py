"""Prometheus metrics of a run, for servers: ``--metrics-port`` serves ``/metrics`` while the run lasts,
``--metrics-file`` rewrites a text-format file every interval (node_exporter's textfile collector, for cron
and Slurm jobs). Made with the Prometheus client library, on a registry of the run's own.

Counters follow the run's events (files by outcome, bytes received, requests by host and kind, faults by
kind, rate-limit pauses); gauges are read when scraped (files in flight and queued, the concurrency in use,
each host's learned request limit and remaining budget from its governor).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from asyncdl.accounting import Accounting
from asyncdl.errors import LocalError
from asyncdl.events import (
    Event,
    FaultMet,
    FileAdvanced,
    FileFiltered,
    FileFinished,
    FileQueued,
    FileUnavailable,
    RateLimitPaused,
    RecordPlanned,
    RequestSent,
)
from asyncdl.governor import GovernorStats

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series beside each counter: asyncdl_start_time_seconds says it once
Governors = Callable[[], Mapping[str, GovernorStats]]  # host -> its governor's snapshot, now


class RunMetrics:
    """The run's metrics: a progress sink (feed it every event) with its own registry."""

    def __init__(self, accounting: Accounting) -> None:
        self.registry = CollectorRegistry()
        self.accounting = accounting
        self._governors: Governors = dict
        self._concurrency: Callable[[], int] = lambda: 0
        r = self.registry
        self.files = Counter("asyncdl_files", "Files by outcome: ok, skipped (already there), linked, failed, "
                             "filtered, unavailable.", ["outcome"], registry=r)
        self.planned = Counter("asyncdl_files_planned", "Files planned for transfer.", registry=r)
        self.records = Counter("asyncdl_records", "Records of the selection planned.", registry=r)
        self.received = Counter("asyncdl_received_bytes", "Bytes received from servers (a download started again "
                                "counts its bytes again).", registry=r)
        self.requests = Counter("asyncdl_requests", "Requests sent, by host and kind (search, record, file, "
                                "archive), each retry and redirect hop included.", ["host", "kind"], registry=r)
        self.faults = Counter("asyncdl_faults", "Faults met, by kind (most were recovered by a retry).", ["kind"],
                              registry=r)
        self.rate_limited = Counter("asyncdl_rate_limited_responses", "Answers 429 (rate limited).", registry=r)
        self.pauses = Counter("asyncdl_rate_limit_pauses", "Pauses the server's rate limit imposed, by host.",
                              ["host"], registry=r)
        self.paused = Counter("asyncdl_rate_limit_paused_seconds", "Seconds of those pauses, by host.", ["host"],
                              registry=r)
        Gauge("asyncdl_files_in_flight", "Files being transferred now.", registry=r).set_function(
            lambda: len(accounting.active))
        Gauge("asyncdl_files_queued", "Files planned and not finished yet.", registry=r).set_function(
            lambda: accounting.queued - accounting.finished)
        Gauge("asyncdl_planned_bytes", "Bytes of the files planned so far.", registry=r).set_function(
            lambda: accounting.queued_bytes)
        Gauge("asyncdl_done_bytes", "Bytes of the files done (received, found there or linked).", registry=r
              ).set_function(lambda: accounting.done_bytes)
        Gauge("asyncdl_concurrency", "Files transferred at once (the limit in use).", registry=r).set_function(
            lambda: self._concurrency())
        Gauge("asyncdl_crawl_done", "1 once the crawl has listed every record, else 0.", registry=r).set_function(
            lambda: int(accounting.crawl_done))
        Gauge("asyncdl_start_time_seconds", "When the run started (Unix time).", registry=r).set(time.time())
        r.register(_BudgetCollector(lambda: self._governors()))
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total...

    def bind(self, *, governors: Governors, concurrency: Callable[[], int]) -> None:
        """Where the gauges read the run's governors and concurrency (once the run exists)."""
        self._governors, self._concurrency = governors, concurrency

    def emit(self, event: Event) -> None:
        match event:
            case FileQueued():
                self.planned.inc()
            case FileFinished(outcome=outcome):
                self.files.labels(outcome).inc()
            case FileFiltered():
                self.files.labels("filtered").inc()
            case FileUnavailable():
                self.files.labels("unavailable").inc()
            case RecordPlanned():
                self.records.inc()
            case FileAdvanced(nbytes=nbytes) if nbytes > 0:
                self.received.inc(nbytes)
            case RequestSent(host=host, kind=kind):
                self.requests.labels(host, kind or "other").inc()
            case FaultMet(kind=kind):
                self.faults.labels(kind).inc()
                if kind == "429":
                    self.rate_limited.inc()
            case RateLimitPaused(host=host, seconds=seconds):
                self.pauses.labels(host).inc()
                self.paused.labels(host).inc(seconds)


class _BudgetCollector(Collector):
    """Each host's governor, read at scrape time: its learned limit, the budget left, requests and 429s."""

    def __init__(self, governors: Governors) -> None:
        self.governors = governors

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit = GaugeMetricFamily("asyncdl_rate_limit_requests", "The request limit a host states per window "
                                  "(learned from its X-RateLimit-Limit).", labels=["host", "bucket"])
        remaining = GaugeMetricFamily("asyncdl_rate_limit_remaining_requests", "Requests left in the host's "
                                      "current window (asyncdl's estimate).", labels=["host", "bucket"])
        window = GaugeMetricFamily("asyncdl_rate_limit_window_seconds", "The length of the host's rate-limit "
                                   "window.", labels=["host", "bucket"])
        for host, stats in self.governors().items():
            for bucket, b in stats.buckets.items():
                if b.limit is not None:
                    limit.add_metric([host, bucket], b.limit)
                if b.remaining is not None:
                    remaining.add_metric([host, bucket], b.remaining)
                if b.window is not None:
                    window.add_metric([host, bucket], b.window)
        yield from (limit, remaining, window)


class MetricsExport:
    """``with MetricsExport(metrics, port=..., file=..., interval=...):`` serves ``/metrics`` on ``port`` (of
    ``address``) and rewrites ``file`` every ``interval`` seconds (atomically: a reader never sees half a
    file) while the block runs, and once more at its end."""

    def __init__(self, metrics: RunMetrics, *, port: int | None = None, address: str = "127.0.0.1",
                 file: Path | None = None, interval: float = 10.0) -> None:
        self.metrics, self.port, self.address, self.file, self.interval = metrics, port, address, file, interval
        self._server: object | None = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def __enter__(self) -> MetricsExport:
        if self.port is not None:
            try:
                self._server, _ = start_http_server(self.port, addr=self.address, registry=self.metrics.registry)
            except OSError as exc:  # a port in use, or an address that does not resolve (its errno is negative)
                reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
                raise LocalError(f"cannot serve metrics on {self.address}:{self.port}: {reason}") from exc
        if self.file is not None:
            self.write()  # a path that cannot be written is told now, not after hours
            self._writer = threading.Thread(target=self._rewrite, name="asyncdl-metrics", daemon=True)
            self._writer.start()
        return self

    def write(self) -> None:
        assert self.file is not None
        try:
            write_to_textfile(str(self.file), self.metrics.registry)
        except OSError as exc:
            raise LocalError(f"cannot write the metrics file {self.file}: {exc.strerror or exc}") from exc

    def _rewrite(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(LocalError):  # a full disk for a moment: the next interval tries again
                self.write()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
            with contextlib.suppress(LocalError):
                self.write()  # the run's last state
        if self._server is not None:
            shutdown = getattr(self._server, "shutdown", None)
            if shutdown is not None:
                shutdown()
            close = getattr(self._server, "server_close", None)
            if close is not None:
                close()
