"""The one retry policy: JSON requests, single streams and segments all retry through :class:`Retry`.

A try that fails with a retryable error, or ends short, counts against the budget unless it got further
than every earlier try (a high-water mark: bytes that only repeat what an earlier try brought are no
progress); more than ``retries`` such tries in a row spend it. Between tries: exponential backoff, capped,
with full jitter. A connection that cannot be made at all (refused, no such host) has a budget of its own:
CONNECT_TRIES tries, waits of at most CONNECT_WAIT_MAX, so a wrong --base-url fails in seconds. 429s are not
counted here: :meth:`Client.stream` waits them out (the governor pauses
the host), up to ``max_rate_limit_waits`` in a row.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from anyio import sleep

from asyncdl.brake import Brake
from asyncdl.config import Config
from asyncdl.errors import AsyncdlError, ConnectError, ShortBodyError

CONNECT_TRIES = 4  # about 5 s in all with the default backoff_base of 0.5 s
CONNECT_WAIT_MAX = 4.0


def backoff(config: Config, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): exponential, capped, with full jitter."""
    ceiling = min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Retry:
    """The budget of one request or download: ``await retry.after(error, position)`` after each failed try."""

    def __init__(self, config: Config, *, start: int, on_fault: Callable[[AsyncdlError], None], brake: Brake,
                 on_retry: Callable[[AsyncdlError, int, int, float], None] | None = None) -> None:
        self.config = config
        self.high_water = start
        self.in_a_row = 0
        self.connect_failures = 0
        self.first_failure: float | None = None
        self._on_fault = on_fault  # a fault that ends the tries
        self._on_retry = on_retry  # a fault retried: (error, which retry, of how many, seconds before it)
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
        """After a try that failed with ``error`` or ended short at ``position``: count the fault (with which
        retry it is, of how many, and the wait), re-raise once the budget is spent (a short body as "ended at
        byte X of Y, N times"), else wait."""
        if not error.retryable:
            raise error
        self.first_failure = self.first_failure or time.monotonic()
        connect = isinstance(error, ConnectError)
        tries = min(CONNECT_TRIES, self.config.retries + 1)
        if connect:
            self.connect_failures += 1
            if self.connect_failures >= tries:
                spent = time.monotonic() - self.first_failure
                raise ConnectError(f"{error} ({self.connect_failures} tries over {spent:.0f} s); check --base-url "
                                   "and the network") from error
        progressed = self.ended_at(position)
        wait = backoff(self.config, max(1, self.in_a_row))
        if connect:
            wait = min(wait, CONNECT_WAIT_MAX)
        if self.spent or self._on_retry is None:
            self._on_fault(error)  # a fault met (and retried, unless the budget is spent)
        elif connect:
            self._on_retry(error, self.connect_failures, tries - 1, wait)
        else:
            self._on_retry(error, max(1, self.in_a_row), self.config.retries, wait)
        self._brake.problem(str(error))
        if progressed:
            self._brake.progress()
        if self.spent:
            if isinstance(error, ShortBodyError):
                raise ShortBodyError(f"the server ended the body at byte {error.position} of {error.size}, "
                                     f"{self.in_a_row} times without getting further", position=error.position,
                                     size=error.size) from error
            raise error
        await sleep(wait)
