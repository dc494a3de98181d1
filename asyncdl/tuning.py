"""``-j auto``: the files downloaded at once, found by trying while the run goes.

The tuner looks at the run every ``window`` seconds: the bytes that arrived, whether every download slot
was taken with work waiting for one (files queued, or a large file's extra connections), and trouble (429s,
rate-limit pauses, stalls). It starts low and, while every slot is busy, tries one level up and keeps it
only if the bytes a second rose by ``GAIN`` (5%) or more; otherwise it goes back and waits a few windows
before trying again. The first tries double the level (a slow start, as TCP's), the later ones add one.
Trouble takes a quarter off at once; bytes falling by a quarter with every slot busy take one off. It never
goes past ``ceiling`` (the connections allowed to one host). Requests stay the governor's: the tuner
decides how many downloads run side by side, the governor when each request may go, so while the governor
paces requests no level up is tried (more downloads would only wait for the budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from asyncdl.events import ConcurrencyChanged, Event, FaultMet, FileAdvanced, RateLimitPaused, RatePaced

START = 4  # files at once when a run begins
GAIN = 1.05  # a level up is kept when the bytes a second rise by this much
FALL = 0.75  # with every slot busy, bytes a second below this share of the level's own take one off
BACK_OFF = 0.25  # trouble takes this share of the level off (at least one)
HOLD = 4  # windows to wait after a level up that did not pay, or after trouble
BUSY = 0.6  # share of a window's looks that must find every slot busy for a level up
LOOKS = 5  # looks at the slots per window
TROUBLE = frozenset({"429", "timeout"})  # faults that say "too much at once"


@dataclass
class Trial:
    """A level up under test: the level before it, and the bytes a second there."""

    before: int
    speed: float


class Tuner:
    """Decides the level from one window's figures; :meth:`run` feeds it from the live run."""

    def __init__(self, apply: Callable[[int], None], busy: Callable[[], bool], tell: Callable[[Event], None], *,
                 ceiling: int, start: int = START, window: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.apply, self.busy, self.tell, self.clock = apply, busy, tell, clock
        self.ceiling, self.window = max(1, ceiling), window
        self.level = min(start, self.ceiling)
        self.slow_start = True
        self.trial: Trial | None = None
        self.speed_here: float | None = None  # bytes a second at this level, once measured
        self.hold = 0
        self._bytes = 0
        self._trouble = False
        self._paced = False

    # -- what the run tells ------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        match event:
            case FileAdvanced(nbytes=nbytes):
                self._bytes += nbytes
            case FaultMet(kind=kind) if kind in TROUBLE:
                self._trouble = True
            case RateLimitPaused():
                self._trouble = True
            case RatePaced():
                self._paced = True

    # -- deciding ----------------------------------------------------------------------------------------
    def decide(self, speed: float, busy: float, *, trouble: bool = False, paced: bool = False) -> int:
        """The level after a window with ``speed`` bytes a second, every slot busy for the share ``busy``
        of it, and ``trouble`` or pacing met."""
        level, trial = self.level, self.trial
        self.trial = None
        wants_more = busy >= BUSY and not paced and speed > 0 and level < self.ceiling  # bytes come, slots full
        if trouble:
            self._change(max(1, level - max(1, round(level * BACK_OFF))), "back off: rate limit or stall", hold=True)
        elif trial is not None and (speed <= 0 or speed < trial.speed * GAIN):  # no bytes: no gain either
            self.slow_start = False
            self.speed_here = trial.speed
            self._change(trial.before, f"back: {speed / max(trial.speed, 1):.2f}x the bytes/s", hold=True)
        elif trial is not None:  # it paid: kept, and the next level up tried at once while it is wanted
            self.speed_here = speed
            if wants_more:
                self._try_up(speed)
        elif self.hold > 0:
            self.hold -= 1
            self.speed_here = speed if self.speed_here is None else max(self.speed_here, speed)
        elif wants_more:
            self._try_up(speed)
        elif busy >= BUSY and self.speed_here and speed < self.speed_here * FALL and level > 1:
            self._change(level - 1, "bytes/s fell with every slot busy", hold=True)
            self.speed_here = speed
        elif busy >= BUSY or self.speed_here is None:
            self.speed_here = speed
        return self.level

    def _try_up(self, speed: float) -> None:
        self.trial = Trial(self.level, speed)
        step = self.level if self.slow_start else 1
        self._change(min(self.ceiling, self.level + step), "trying more at once")

    def _change(self, level: int, why: str, *, hold: bool = False) -> None:
        if hold:
            self.hold = HOLD
        if level != self.level:
            self.level = level
            self.apply(level)
            self.tell(ConcurrencyChanged(level, why))

    # -- the live loop -----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Tune until cancelled (the run cancels it when the downloads are done)."""
        self.apply(self.level)
        self.tell(ConcurrencyChanged(self.level, "start"))
        while True:
            self._bytes, self._trouble, self._paced = 0, False, False
            began, looks = self.clock(), 0
            for _ in range(LOOKS):
                await anyio.sleep(self.window / LOOKS)
                looks += self.busy()
            span = max(1e-6, self.clock() - began)
            self.decide(self._bytes / span, looks / LOOKS, trouble=self._trouble, paced=self._paced)


class LentSlots:
    """The run's download slots lent to large files' extra connections (``--segments auto``): a slot only
    when one is free (a file waiting for one gets it first, as the limiter serves waiters before lending)."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.wanted = False  # an extra connection found no slot since the tuner last looked

    def lend(self) -> object | None:
        token = object()
        try:
            self.limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            self.wanted = True
            return None
        return token

    def give_back(self, token: object) -> None:
        self.limiter.release_on_behalf_of(token)

    def take_wanted(self) -> bool:
        """Whether a slot was wanted since the last call (and forget it)."""
        wanted, self.wanted = self.wanted, False
        return wanted
