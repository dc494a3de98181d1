"""Events every stage reports, and the sink protocol that progress displays implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self


@dataclass(frozen=True, slots=True)
class PageFetched:
    """A search page arrived: ``records`` new records; ``pages_done`` of ``pages_planned`` so far."""

    records: int
    pages_done: int
    pages_planned: int
    total_hits: int | None


@dataclass(frozen=True, slots=True)
class CrawlDone:
    """The crawl found ``records`` records in ``pages`` pages."""

    records: int
    pages: int


@dataclass(frozen=True, slots=True)
class PlanDone:
    """Every record the run will see is planned: the files queued (and their bytes) are the run's total."""


@dataclass(frozen=True, slots=True)
class CrawlShort:
    """Part of the selection fell short: the server stated ``stated`` records (``now`` when asked again at
    the end) and its pages gave ``reached``; ``part`` names which search, ``detail`` where it fell short."""

    part: str
    stated: int
    reached: int
    now: int | None = None
    detail: str = ""
    unit: str = "records"  # or "files": a record whose file listing gave fewer files than it stated

    @property
    def message(self) -> str:
        again = f" ({self.now} when asked again)" if self.now is not None and self.now != self.stated else ""
        where = f": {self.detail}" if self.detail else ""
        gave = "its pages gave" if self.unit == "records" else "its listing gave"
        return f"{self.part}: the server stated {self.stated} {self.unit}{again}, {gave} {self.reached}{where}"


@dataclass(frozen=True, slots=True)
class RateLimitPaused:
    """The server said 429: requests to ``host`` (``bucket``) wait ``seconds``."""

    host: str
    bucket: str
    seconds: float
    remaining: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class RatePaced:
    """No 429: asyncdl keeps to ``host``'s stated budget, and the next request in ``bucket`` waits
    ``seconds`` (``remaining`` of ``limit`` left by its estimate)."""

    host: str
    bucket: str
    seconds: float
    remaining: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read (a warning, a skipped record and why)."""

    message: str
    level: str = "warning"


@dataclass(frozen=True, slots=True)
class FileQueued:
    """A file was planned for transfer (``size`` bytes, None when the record does not say)."""

    path: str
    size: int | None


@dataclass(frozen=True, slots=True)
class FileStarted:
    """A transfer began; ``offset`` > 0 when it resumes bytes already on disk."""

    path: str
    size: int | None
    offset: int


@dataclass(frozen=True, slots=True)
class FileAdvanced:
    """``nbytes`` more bytes of ``path`` arrived (negative when a restart discarded bytes)."""

    path: str
    nbytes: int


@dataclass(frozen=True, slots=True)
class FileFinished:
    """A file reached its end state: ``outcome`` is ok, skipped, linked (the same stored file as ``source``,
    another file of DEST, which was fetched instead) or failed, with the reason; how many bytes this run
    received for it, and whether its checksum was verified. It is also the file's result."""

    path: str
    outcome: str
    reason: str
    size: int | None
    record_id: str = ""
    key: str = ""
    bytes_received: int = 0
    verified: bool = False
    source: str = ""
    journaled: bool = False  # the journal holds this result already (done in an earlier run): nothing to write


@dataclass(frozen=True, slots=True)
class FileFiltered:
    """A file of the selection left out by the filters (or a duplicate key), with the reason."""

    record_id: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileUnavailable:
    """A file of the selection that the server does not have complete (its listing's ``status`` is not
    ``completed``): not downloaded, not a failure, but the run is not complete either."""

    path: str
    record_id: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class PathNote:
    """A file's path was changed to be safe or distinct (``note`` says how)."""

    path: str
    note: str


@dataclass(frozen=True, slots=True)
class RecordPlanned:
    """A record of this run (this shard's) was planned."""

    record_id: str


@dataclass(frozen=True, slots=True)
class RecordInaccessible:
    """A selected record's files cannot be had (restricted, embargoed), with the reason."""

    record_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RequestSent:
    """A request went out (each hop of a redirect and each retry counts); ``kind``: see
    :func:`asyncdl.invenio.request_kind`."""

    host: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class FaultMet:
    """A fault was met: ``kind`` is a key of :data:`asyncdl.errors.FAULT_LABELS` (a reset, a 429...). When it
    is retried: which retry this is (``retry`` of the ``retries`` its budget allows) and the ``wait`` before it;
    ``retry`` 0 when it is not (a spent budget, a 429 waited out by the governor, a corrupt body)."""

    kind: str
    detail: str = ""
    retry: int = 0
    retries: int = 0
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class ArchiveUsed:
    """A record's files-archive was asked for ``requests`` times and gave ``members`` verified files (0: it
    failed, and its files were fetched one by one)."""

    record_id: str
    members: int
    requests: int

    @property
    def requests_saved(self) -> int:
        """One request per file the archive gave, less the archive's own (negative when it failed)."""
        return self.members - self.requests


@dataclass(frozen=True, slots=True)
class ConcurrencyChanged:
    """``-j auto`` set the files downloaded at once to ``files`` (``why``: a few words)."""

    files: int
    why: str


Event = (PageFetched | CrawlDone | PlanDone | CrawlShort | RateLimitPaused | RatePaced | Notice | FileQueued
         | FileStarted | FileAdvanced | FileFinished | FileFiltered | FileUnavailable | PathNote | RecordPlanned
         | RecordInaccessible | RequestSent | FaultMet | ArchiveUsed | ConcurrencyChanged)


class ProgressSink(Protocol):
    """Receives events; implementations show them (rich, plain log, JSON lines) or drop them."""

    def emit(self, event: Event) -> None: ...


class Display:
    """A sink that shows something: a context manager that starts showing on entry and stops on exit."""

    def emit(self, event: Event) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class NullSink(Display):
    """Drops every event."""


class ListSink(Display):
    """Keeps every event (for tests and the Python API)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class Fanout:
    """Hands every event to each receiver in turn (the run's accounting, its journal, the display)."""

    def __init__(self, *receivers: ProgressSink) -> None:
        self.receivers = receivers

    def emit(self, event: Event) -> None:
        for receiver in self.receivers:
            receiver.emit(event)
