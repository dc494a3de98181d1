"""Moving-window rate limits keyed by User-Agent + IP, as Flask-Limiter does for Zenodo."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """``count`` requests per ``seconds``; ``label`` is how the 429 body names it."""

    count: int
    seconds: float
    label: str

    @classmethod
    def per(cls, count: int, unit: str, *, unit_seconds: float) -> Limit:
        """E.g. ``Limit.per(30, "minute", unit_seconds=60)`` -> "30 per 1 minute"."""
        return cls(count, unit_seconds, f"{count} per 1 {unit}")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one hit: allowed or not, and what the headers should say."""

    allowed: bool
    limit: Limit
    remaining: int
    reset_in: float


class MovingWindowLimiter:
    """Counts hits in moving windows; a refused hit is not counted."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, Limit], deque[float]] = {}

    def hit(self, key: str, limits: Sequence[Limit]) -> Verdict:
        """Record a hit for ``key`` if every limit allows it."""
        now = self._clock()
        windows = []
        for limit in limits:
            window = self._hits.setdefault((key, limit), deque())
            while window and window[0] <= now - limit.seconds:
                window.popleft()
            windows.append((limit, window))
        refused = [(lim, w) for lim, w in windows if len(w) >= lim.count]
        if refused:
            limit, window = max(refused, key=lambda lw: lw[1][0] + lw[0].seconds)
            return Verdict(False, limit, 0, window[0] + limit.seconds - now)
        for _, window in windows:
            window.append(now)
        limit, window = min(windows, key=lambda lw: (lw[0].count - len(lw[1]), lw[0].seconds))
        return Verdict(True, limit, limit.count - len(window), window[0] + limit.seconds - now)


def headers_for(verdict: Verdict, *, wall_now: float) -> dict[str, str]:
    """X-RateLimit-* and Retry-After as Zenodo sends them on every response."""
    reset_in = max(0.0, verdict.reset_in)
    return {
        "X-RateLimit-Limit": str(verdict.limit.count),
        "X-RateLimit-Remaining": str(verdict.remaining),
        "X-RateLimit-Reset": str(math.ceil(wall_now + reset_in)),
        "Retry-After": str(math.ceil(reset_in)),
    }
