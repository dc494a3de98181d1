"""Events every stage reports, and the sink protocol that progress displays implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
class RateLimitPaused:
    """The server said 429: requests to ``host`` (``bucket``) wait ``seconds``."""

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
    """A file reached its end state: ``outcome`` is ok, skipped or failed, with the reason."""

    path: str
    outcome: str
    reason: str
    size: int | None


Event = (PageFetched | CrawlDone | RateLimitPaused | Notice | FileQueued | FileStarted | FileAdvanced
         | FileFinished)


class ProgressSink(Protocol):
    """Receives events; implementations show them (rich, plain log, JSON lines) or drop them."""

    def emit(self, event: Event) -> None: ...


class NullSink:
    """Drops every event."""

    def emit(self, event: Event) -> None:
        return None


class ListSink:
    """Keeps every event (for tests and the Python API)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)
