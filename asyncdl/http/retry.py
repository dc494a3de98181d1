"""The one retry policy: JSON requests, single streams and segments all retry through :class:`Retry`.

A try that fails with a retryable error, or ends short, counts against the budget unless it got further
than every earlier try (a high-water mark: bytes that only repeat what an earlier try brought are no
progress); more than ``retries`` such tries in a row spend it. Between tries: exponential backoff, capped,
with full jitter. 429s are not counted here: :meth:`Client.stream` waits them out (the governor pauses
the host), up to ``max_rate_limit_waits`` in a row.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from anyio import sleep

from asyncdl.brake import Brake
from asyncdl.config import Config
from asyncdl.errors import AsyncdlError, ShortBodyError


def backoff(config: Config, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped, with full jitter."""
    ceiling = min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Retry:
    """The budget of one request or download: ``await retry.after(error, position)`` after each failed try."""

    def __init__(self, config: Config, *, start: int, on_fault: Callable[[AsyncdlError], None], brake: Brake) -> None:
        self.config = config
        self.high_water = start
        self.in_a_row = 0
        self._on_fault = on_fault
        self._brake = brake

    def ended_at(self, position: int) -> bool:
        """Record where a try ended; True when it got further than every earlier try."""
        if position > self.high_water:
            self.high_water = position
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        return False

    @property
    def spent(self) -> bool:
        return self.in_a_row > self.config.retries

    async def after(self, error: AsyncdlError, position: int = 0) -> None:
        """After a try that failed with ``error`` or ended short at ``position``: count the fault, re-raise
        once the budget is spent (a short body as "ended at byte X of Y, N times"), else wait."""
        if not error.retryable:
            raise error
        self._on_fault(error)
        self._brake.problem(str(error))
        if self.ended_at(position):
            self._brake.progress()
        if self.spent:
            if isinstance(error, ShortBodyError):
                raise ShortBodyError(f"the server ended the body at byte {error.position} of {error.size}, "
                                     f"{self.in_a_row} times without getting further", position=error.position,
                                     size=error.size) from error
            raise error
        await sleep(backoff(self.config, max(1, self.in_a_row)))
