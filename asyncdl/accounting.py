"""The one owner of a run's counters: fed by events, read by the displays, summed up in a RunSummary.

Every stage reports what happens as events (:mod:`asyncdl.events`); the run hands each to its
:class:`Accounting` first. The progress displays read it live, and the run's :class:`RunSummary` (the
end-of-run table, the plain last line, the JSON ``RunSummary``) is made from it, so every figure is counted
once, in one place. Speed and time left are over a moving window, so a crawl or a rate-limit pause early in
the run does not skew them for the rest of it.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

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
    RateLimitPaused,
    RecordInaccessible,
    RecordPlanned,
    RequestSent,
)

KEEP = 10_000  # results and notes kept in full; beyond, only counted (memory stays flat)
WINDOW = 20.0  # seconds of the moving window that speed and time left are measured over
SAMPLE_EVERY = 0.25  # seconds between two samples of the bytes done


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

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, window: float = WINDOW) -> None:
        self.clock = clock
        self.window = window
        self.started = clock()
        self.summary = RunSummary()
        self.pages = self.pages_planned = self.records_found = 0
        self.crawl_done = False
        self.done_bytes = 0  # bytes of the planned files on disk or arriving (skipped files count whole)
        self.moved_bytes = 0  # bytes received in this run (the speed's measure)
        self.active: dict[str, tuple[int | None, int]] = {}  # path -> (size, bytes so far)
        self.paused_until = 0.0  # a 429 pause of some host runs until then (clock time)
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    # -- feeding ---------------------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        s = self.summary
        match event:
            case RequestSent():
                s.requests += 1
            case FaultMet(kind):
                s.faults[kind] += 1
            case PageFetched(records, done, planned, _):
                self.pages, self.pages_planned = done, max(planned, done)
                self.records_found += records
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
                self.active[path] = (size, offset)
                self._advance(offset, moved=False)  # resumed from the part file: already here
            case FileAdvanced(path, nbytes):
                size, got = self.active.get(path, (None, 0))
                self.active[path] = (size, got + nbytes)
                self._advance(nbytes, moved=True)
            case FileFinished():
                self._finished(event)
            case RateLimitPaused(_, _, seconds, _, _):
                self.paused_until = max(self.paused_until, self.clock() + seconds)

    def _finished(self, event: FileFinished) -> None:
        s = self.summary
        s.counts[event.outcome] += 1
        s.bytes_received += event.bytes_received
        if s.counts[event.outcome] <= KEEP:
            s.results.append(event)
        if event.outcome in ("skipped", "linked"):
            self._advance(event.size or 0, moved=False)  # done, but nothing crossed the network: not speed
        elif event.outcome == "failed":
            self._advance(-self.active.get(event.path, (None, 0))[1], moved=False)
        self.active.pop(event.path, None)

    def _advance(self, nbytes: int, *, moved: bool) -> None:
        self.done_bytes += nbytes
        self.moved_bytes += nbytes if moved else 0
        now = self.clock()
        if now - self._samples[-1][0] >= SAMPLE_EVERY:
            self._samples.append((now, self.moved_bytes))
            self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop samples older than the window, keeping the newest of them as the window's base."""
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

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

    def speed(self) -> float:
        """Bytes a second received over the last ``window`` seconds (falls to 0 while nothing arrives; files
        found already there or linked are done, but are no speed)."""
        now = self.clock()
        self._forget(now)
        since, then = self._samples[0]
        span = now - since
        return max(0.0, (self.moved_bytes - then) / span) if span > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current speed, once the crawl has said how much there is."""
        left = self.queued_bytes - self.done_bytes
        speed = self.speed()
        return left / speed if speed > 0 and left > 0 and self.crawl_done else None

    @property
    def paused(self) -> float:
        """Seconds left of a rate-limit pause under way (0: none)."""
        return max(0.0, self.paused_until - self.clock())
