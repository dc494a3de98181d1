"""Bandwidth caps (``--bwlimit``, ``--bwlimit-file``): bytes a second, kept by pacing the reads of bodies.

A :class:`Pacer` is a virtual clock: each piece read books ``len / rate`` seconds after the pieces before
it, and the reader sleeps until its booking is due. ``burst`` seconds of credit are kept after an idle
spell, so a short wait between requests is not lost; over any longer span the rate holds. One pacer is
shared by every download of a run (the total cap), and one more paces each file (all its segments).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio


class Pacer:
    """``await pacer.take(n)`` after reading ``n`` bytes: returns when the rate allows them."""

    def __init__(self, rate: float, *, burst: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("a pacer needs a rate above 0")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._due = clock()  # when every byte taken so far is paid for

    def book(self, nbytes: int) -> float:
        """Book ``nbytes``; the seconds to wait before they are paid for (0: now)."""
        now = self.clock()
        self._due = max(self._due, now - self.burst) + nbytes / self.rate
        return max(0.0, self._due - now)

    async def take(self, nbytes: int) -> None:
        if (wait := self.book(nbytes)) > 0:
            await anyio.sleep(wait)
