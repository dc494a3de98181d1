"""The one owner of a run's counters: fed by events, read by the displays, summed up in a RunSummary.

Every stage reports what happens as events (:mod:`asyncdl.events`); the run hands each to its
:class:`Accounting` first. The progress displays read it live, and the run's :class:`RunSummary` (the
end-of-run table, the plain last line, the JSON ``RunSummary``) is made from it, so every figure is counted
once, in one place. Speed and time left are over a moving window, so a crawl or a rate-limit pause early in
the run does not skew them for the rest of it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from asyncdl.errors import EXIT_FAILED, EXIT_INACCESSIBLE, EXIT_INTERRUPTED, EXIT_OK
from asyncdl.events import (
    ArchiveUsed,
    ConcurrencyChanged,
    CrawlDone,
    CrawlShort,
    Event,
    FaultMet,
    FileAdvanced,
    FileFiltered,
    FileFinished,
    FileQueued,
    FileStarted,
    FileUnavailable,
    PageFetched,
    PathNote,
    PlanDone,
    RateLimitPaused,
    RatePaced,
    RecordInaccessible,
    RecordPlanned,
    RequestSent,
)

KEEP = 10_000  # results and notes kept in full; beyond, only counted (memory stays flat)
WINDOW = 20.0  # seconds of the moving window that the speed is measured over
FILES_WINDOW = 60.0  # seconds of the window of the files' rate: rate limits count requests a minute
SAMPLE_EVERY = 0.25  # seconds between two samples of the bytes done (of the files finished)
FILE_BUCKET = "default"  # the governor's bucket that file requests go in (Client.stream's)


class BucketBudget(Protocol):
    """What a host's governor knows of one bucket (:class:`asyncdl.governor.BucketStats`)."""

    @property
    def limit(self) -> int | None: ...

    @property
    def remaining(self) -> int | None: ...

    @property
    def window(self) -> float | None: ...


class HostBudget(Protocol):
    """A host's governor as it stands (:class:`asyncdl.governor.GovernorStats`)."""

    @property
    def buckets(self) -> Mapping[str, BucketBudget]: ...


@dataclass
class RunSummary:
    """What a run did: exact counts, and the first ``KEEP`` results of each kind."""

    counts: Counter[str] = field(default_factory=Counter)  # planned, filtered, notes, ok, skipped, linked, failed
    # long lists stay out of repr(): asyncio formats a finished task's result, and these hold thousands
    results: list[FileFinished] = field(default_factory=list, repr=False)
    inaccessible: list[tuple[str, str]] = field(default_factory=list, repr=False)
    unavailable: list[FileUnavailable] = field(default_factory=list, repr=False)  # the server's file is not complete
    shortfalls: list[CrawlShort] = field(default_factory=list)  # parts of the selection the server fell short of
    notes: list[str] = field(default_factory=list, repr=False)
    planned_bytes: int = 0
    bytes_received: int = 0
    records: int = 0
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # faults met (errors.FAULT_LABELS), most recovered
    archives: int = 0  # records whose files came through their files-archive
    archive_files: int = 0  # files those archives gave
    requests_saved: int = 0  # one request per such file, less the archive requests (failed ones too)
    elapsed: float = 0.0
    interrupted: bool = False
    concurrency: list[tuple[float, int]] = field(default_factory=list)  # -j auto: (seconds in, files at once)

    @property
    def rate_limited(self) -> int:
        """Requests answered 429 (each once: they are among the faults met)."""
        return self.faults["429"]

    def _kept(self, outcome: str) -> list[FileFinished]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def ok(self) -> list[FileFinished]:
        """Files downloaded and verified (the first KEEP; ``counts["ok"]`` has them all)."""
        return self._kept("ok")

    @property
    def skipped(self) -> list[FileFinished]:
        """Files already there and verified (the first KEEP)."""
        return self._kept("skipped")

    @property
    def linked(self) -> list[FileFinished]:
        """Files that are the same stored file as another of DEST, linked from it (the first KEEP)."""
        return self._kept("linked")

    @property
    def failed(self) -> list[FileFinished]:
        """Files that failed, with their reasons (the first KEEP)."""
        return self._kept("failed")

    @property
    def exit_code(self) -> int:
        """130 when interrupted; 1 when a file failed or the server's answers fell short of what it stated;
        5 when everything else was had but some records' files (or files the server has not completed) could
        not be: restricted, embargoed, pending; else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.counts["failed"] or self.shortfalls:
            return EXIT_FAILED
        return EXIT_INACCESSIBLE if self.inaccessible or self.unavailable else EXIT_OK


class Accounting:
    """``accounting.emit(event)`` for every event of a run; read its figures at any time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, window: float = WINDOW,
                 files_window: float = FILES_WINDOW) -> None:
        self.clock = clock
        self.window, self.files_window = window, files_window
        self.governors: Callable[[], Mapping[str, HostBudget]] = dict  # the run's, once bound (Run.governors)
        self.started = clock()
        self.plan_done = False  # every record planned: the totals are final
        self.summary = RunSummary()
        self.pages = self.pages_planned = self.records_found = 0
        self.crawl_done = False
        self.done_bytes = 0  # bytes of the planned files on disk or arriving (skipped files count whole)
        self.moved_bytes = 0  # bytes received in this run (the speed's measure)
        self.active: dict[str, tuple[int | None, int]] = {}  # path -> (size, bytes so far)
        self.paused_until = 0.0  # a 429 pause of some host runs until then (clock time)
        self.held: dict[tuple[str, str], float] = {}  # (host, bucket) -> its requests wait until then (clock time)
        self.started_files = 0  # downloads started (each once, however often it starts again)
        self.file_requests: Counter[str] = Counter()  # host -> requests for files (or archives) sent to it
        self._samples: deque[tuple[float, float]] = deque([(self.started, 0)])
        self._under_way = 0.0  # the files in flight, each counted by the share of its bytes here
        self._finishes: deque[tuple[float, float]] = deque()  # (when, files_done then), from the first file
        self._lock = threading.Lock()  # the samples are read by displays' threads too

    # -- feeding ---------------------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        s = self.summary
        match event:
            case RequestSent(host, kind):
                s.requests += 1
                if kind in ("file", "archive"):
                    self.file_requests[host] += 1
            case FaultMet(kind):
                s.faults[kind] += 1
            case PageFetched(records, done, planned, _):
                self.pages, self.pages_planned = done, max(planned, done)
                self.records_found += records
            case PlanDone():
                self.plan_done = True
            case CrawlDone(records, _):
                self.crawl_done, self.records_found = True, records
            case CrawlShort():
                s.shortfalls.append(event)
            case ArchiveUsed(_, members, _):
                s.archives += members > 0
                s.archive_files += members
                s.requests_saved += event.requests_saved
            case RecordPlanned():
                s.records += 1
            case ConcurrencyChanged(files):
                if len(s.concurrency) < KEEP:
                    s.concurrency.append((round(self.clock() - self.started, 2), files))
            case RecordInaccessible(record_id, reason):
                s.inaccessible.append((record_id, reason))
            case FileUnavailable():
                s.counts["unavailable"] += 1
                if len(s.unavailable) < KEEP:
                    s.unavailable.append(event)
            case FileFiltered():
                s.counts["filtered"] += 1
            case PathNote(_, note):
                s.counts["notes"] += 1
                if len(s.notes) < KEEP:
                    s.notes.append(note)
            case FileQueued(_, size):
                s.counts["planned"] += 1
                s.planned_bytes += size or 0
            case FileStarted(path, size, offset):
                self.started_files += path not in self.active
                self._under_way += _share(size, offset) - _share(*self.active.get(path, (None, 0)))
                self.active[path] = (size, offset)
                self._advance(offset, moved=False)  # resumed from the part file: already here
            case FileAdvanced(path, nbytes):
                size, got = self.active.get(path, (None, 0))
                self._under_way += _share(size, got + nbytes) - _share(size, got)
                self.active[path] = (size, got + nbytes)
                self._advance(nbytes, moved=True)
            case FileFinished():
                self._finished(event)
            case RateLimitPaused(host, bucket, seconds, _, _):
                self.paused_until = max(self.paused_until, self.clock() + seconds)
                self.held[host, bucket] = self.clock() + seconds
            case RatePaced(host, bucket, seconds, _, _):
                self.held[host, bucket] = self.clock() + seconds

    def _finished(self, event: FileFinished) -> None:
        s = self.summary
        s.counts[event.outcome] += 1
        s.bytes_received += event.bytes_received
        if s.counts[event.outcome] <= KEEP:
            s.results.append(event)
        size, got = self.active.pop(event.path, (None, 0))
        self._under_way = self._under_way - _share(size, got) if self.active else 0.0  # (0: no drift of the sum)
        if event.outcome in ("skipped", "linked"):
            self._advance(event.size or 0, moved=False)  # done, but nothing crossed the network: not speed
        else:  # a failed file's bytes are not done after all
            self._advance(-got if event.outcome == "failed" else 0, moved=False)

    def _advance(self, nbytes: int, *, moved: bool) -> None:
        self.done_bytes += nbytes
        self.moved_bytes += nbytes if moved else 0
        now = self.clock()
        with self._lock:
            if now - self._samples[-1][0] >= SAMPLE_EVERY:
                self._samples.append((now, self.moved_bytes))
                _forget(self._samples, now - self.window)
            if not self._finishes:  # the first file started (or was found there): the files' rate starts
                self._finishes.append((now, self.files_done))
            elif now - self._finishes[-1][0] >= SAMPLE_EVERY:
                self._finishes.append((now, self.files_done))
                _forget(self._finishes, now - self.files_window)

    # -- reading ---------------------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self.summary.counts["planned"]

    @property
    def queued_bytes(self) -> int:
        return self.summary.planned_bytes

    @property
    def outcomes(self) -> Counter[str]:
        return self.summary.counts

    @property
    def finished(self) -> int:
        counts = self.summary.counts
        return counts["ok"] + counts["skipped"] + counts["linked"] + counts["failed"]

    @property
    def elapsed(self) -> float:
        return max(1e-6, self.clock() - self.started)

    @property
    def plan_final(self) -> bool:
        """Whether the totals are final: the run said every record is planned (PlanDone). The crawl being done
        is not enough: the plan still holds records then, waiting for the downloads to take their files, and
        a shard, a --since-last run or one reading its records back from the journal cannot count them."""
        return self.plan_done

    def speed(self) -> float:
        """Bytes a second received over the last ``window`` seconds (falls to 0 while nothing arrives; files
        found already there or linked are done, but are no speed)."""
        now = self.clock()
        with self._lock:
            _forget(self._samples, now - self.window)
            return _rate(self._samples, now, self.moved_bytes)

    @property
    def files_done(self) -> float:
        """Files finished, and those in flight by the share of their bytes here (ten files half done: 5)."""
        return self.finished + self._under_way

    def file_rate(self) -> float:
        """Files a second done (:attr:`files_done`) over the last ``files_window`` seconds, or since the first
        file started when that is less: what the request budget, the latency and the bytes together allow."""
        now = self.clock()
        with self._lock:
            _forget(self._finishes, now - self.files_window)
            return _rate(self._finishes, now, self.files_done) if self._finishes else 0.0

    def eta(self) -> float | None:
        """Seconds left, once the plan is final: the longest of the bytes left at the speed, the files left at
        their rate, and the wait the request budget puts on the files not started yet (a floor, never the
        estimate alone); None before, and while nothing moves; 0 once all is done."""
        if not self.plan_final:
            return None
        bytes_left, files_left = self.queued_bytes - self.done_bytes, self.queued - self.files_done
        if self.finished >= self.queued:
            return 0.0
        speed, rate = self.speed(), self.file_rate()
        guesses = ([bytes_left / speed] if bytes_left > 0 and speed > 0 else []) + (
            [files_left / rate] if files_left > 0 and rate > 0 else [])
        if not guesses:
            return None
        return max(*guesses, self.budget_wait(self.queued - self.finished - len(self.active)))

    def budget_wait(self, files: int) -> float:
        """Seconds the hosts' request budgets hold ``files`` more downloads up at least: the requests they need
        (as many a file as the files started so far needed) beyond what each host's budget has left, at its
        limit per window; and no less than the wait for the budget (or a 429's pause) under way. 0 when no
        budget is known."""
        if files <= 0 or not self.file_requests:
            return 0.0
        try:
            hosts = self.governors()
        except RuntimeError:  # read from a display's thread while the run added a bucket: next time
            return 0.0
        now, wait = self.clock(), 0.0
        for host, requests in self.file_requests.items():
            wait = max(wait, self.held.get((host, FILE_BUCKET), now) - now)
            bucket = hosts[host].buckets.get(FILE_BUCKET) if host in hosts else None
            if bucket is not None and bucket.limit and bucket.window:
                needed = files * requests / max(1, self.started_files)
                wait = max(wait, (needed - (bucket.remaining or 0)) * bucket.window / bucket.limit)
        return wait

    @property
    def paused(self) -> float:
        """Seconds left of a rate-limit pause under way (0: none)."""
        return max(0.0, self.paused_until - self.clock())


def _share(size: int | None, got: int) -> float:
    """How much of a file is here, 0 to 1 (0 when its size is not known)."""
    return min(1.0, max(0.0, got / size)) if size else 0.0


def _forget(samples: deque[tuple[float, float]], before: float) -> None:
    """Drop samples older than ``before``, keeping the newest of them as the window's base."""
    while len(samples) > 1 and samples[1][0] <= before:
        samples.popleft()


def _rate(samples: deque[tuple[float, float]], now: float, count: float) -> float:
    """How fast ``count`` grew since the window's base sample (0 when no time has passed)."""
    since, then = samples[0]
    return max(0.0, (count - then) / (now - since)) if now > since else 0.0
