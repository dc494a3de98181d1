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


Event = PageFetched | CrawlDone | RateLimitPaused | Notice


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
