"""The run's brake: many requests in a row that bring nothing, for a while, stop the run.

Per-file limits (the retry budget and the request ceiling) bound what one file can cost; the brake
bounds the run whatever the cause: a server that fails every request, or answers in a way no retry
can use, is asked at most ``requests`` times after the last progress (and never stopped sooner than
``seconds`` after it), instead of once per file and retry for a whole selection.

Progress is anything that moves the mirror forward: bytes past a download's high-water mark, a file
finished, a JSON answer (a page of records, a record), or a definitive answer (403, 404, 410).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from asyncdl.errors import NoProgressError


class Brake:
    """Counts requests since the last progress; :meth:`request` raises NoProgressError past the limits."""

    def __init__(self, *, requests: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests = requests
        self.seconds = seconds
        self._clock = clock
        self._since = clock()
        self._count = 0
        self._last_problem = ""

    def progress(self) -> None:
        """Something moved forward: the count starts again."""
        self._since = self._clock()
        self._count = 0

    def problem(self, description: str) -> None:
        """The latest failed answer, named in the error if the brake stops the run."""
        self._last_problem = description

    def request(self) -> None:
        """A request is about to be sent; refused when too many went before it with nothing to show."""
        if self.requests <= 0:
            return
        elapsed = self._clock() - self._since
        if self._count >= self.requests and elapsed >= self.seconds:
            last = f"; the last problem: {self._last_problem}" if self._last_problem else ""
            raise NoProgressError(f"stopped after {self._count} requests in {elapsed:.0f} s brought no new bytes, "
                                  f"no finished file and no record{last}. Nothing is lost: run the same command "
                                  "later to continue")
        self._count += 1
