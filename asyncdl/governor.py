"""One request governor per host: pace requests so the server's rate limit is not hit.

Zenodo (Flask-Limiter) keeps moving windows per User-Agent + IP: at most L requests in any W seconds, in a
"search" bucket and a "default" bucket. Every response states L (X-RateLimit-Limit), what is left
(X-RateLimit-Remaining) and when the oldest counted request expires (Retry-After seconds; X-RateLimit-Reset
as a wall-clock epoch). The governor learns these per bucket from the responses and paces requests:

* until a bucket has answered, at most ``initial_concurrency`` of its requests are in flight (a probe);
* then remaining is estimated as the lowest R stated since the last reset minus the requests in flight (the
  server counts concurrent requests in its own order; whatever it counted after the lowest R is still in
  flight); the lowest R may rise only once a stated reset has passed, or from a request sent alone (its
  answer is the freshest count); a request goes out only while the estimate exceeds ``safety_margin``;
* bursts are fine (a moving window only counts requests): once the budget is spent, the bucket waits for
  its requests in flight to answer, then sends one request alone (a probe) the moment a slot has surely
  expired, and its answer says how many more may go. A slot expires W after the server counted a request,
  and it counted each of ours by the time it answered, so this process keeps the answer times of its last
  L requests: the slot of the (L - margin)-th newest frees at its answer + W. W is the longest reset the
  server has stated; headers in whole seconds overstate it by up to a second, so W is then taken as whole
  seconds (one more after a 429 says that was early). Without them, the probe goes at the stated reset.
  R requests thus finish close to the moving window's bound, (ceil(R / L) - 1) * W;
* with ``rate_share`` < 1 this process keeps to floor(L * rate_share) requests in any W seconds, so
  machines sharing one budget leave each other room (a request counts from its answer, not its send: the
  server counted it somewhere in between), and spaces its requests W / floor(L * rate_share) apart once
  the budget runs below a quarter; ``max_rate`` spaces requests at least 1 / max_rate apart;
* a 429 pauses the bucket until Retry-After; the caller acquires again and retries the same request.

Budget requests, not bytes: a ticket covers one request until its response headers arrive.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

import anyio

from asyncdl.errors import ConfigError

_EPS = 1e-9  # seconds; waits shorter than this count as none
_CLOCK_SLACK = 1e-3  # seconds; a request sent this close to a stated reset was sent at it
_MAX_WAIT = 3600.0  # a stated reset further away than this is clock skew or garbage


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """What one response says about its bucket; None where a header is missing or unreadable."""

    limit: int | None
    remaining: int | None
    retry_after: float | None  # Retry-After as sent (whole seconds, rounded down by Flask-Limiter)
    reset_in: float | None  # best estimate of seconds until the oldest counted request expires


PACE_TOLD = 0.5  # a wait for the request budget at least this long is told (the display says it is paced)


@dataclass(frozen=True, slots=True)
class PauseNotice:
    """A 429 paused ``bucket`` for ``seconds``; ``remaining`` of ``limit`` requests are left."""

    bucket: str
    seconds: float
    remaining: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class BucketStats:
    """Counters and learned budget of one bucket; ``remaining`` is the current local estimate."""

    requests: int
    throttled: int
    paused_seconds: float
    limit: int | None
    remaining: int | None
    window: float | None


@dataclass(frozen=True, slots=True)
class GovernorStats:
    """A snapshot of every bucket's :class:`BucketStats`, with totals."""

    buckets: Mapping[str, BucketStats]

    @property
    def requests(self) -> int:
        return sum(b.requests for b in self.buckets.values())

    @property
    def throttled(self) -> int:
        return sum(b.throttled for b in self.buckets.values())

    @property
    def paused_seconds(self) -> float:
        return sum(b.paused_seconds for b in self.buckets.values())


class Ticket:
    """Leave to send one request; settle it exactly once with :meth:`observe` or :meth:`release`."""

    __slots__ = ("_governor", "alone", "bucket", "counted", "done", "sent_at")

    def __init__(self, governor: Governor, bucket: str, sent_at: float, *, alone: bool) -> None:
        self._governor, self.bucket, self.sent_at, self.done = governor, bucket, sent_at, False
        self.alone = alone  # no other request of the bucket was in flight from its send to its answer
        self.counted: list[float] = [sent_at]  # its entry in the bucket's recent requests: send, then answer time

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Report the response (see :meth:`Governor.observe`)."""
        self._governor.observe(self, status=status, headers=headers)

    def release(self) -> None:
        """Report that no response came (see :meth:`Governor.release`)."""
        self._governor.release(self)


@dataclass(slots=True)
class _Bucket:
    name: str
    lock: anyio.Lock = field(default_factory=anyio.Lock)  # FIFO: one waiter at a time does the waiting
    changed: anyio.Event | None = None  # set when a response or release arrives
    in_flight: int = 0
    min_remaining: int | None = None  # lowest remaining stated since the last reset (None: nothing learned)
    rise_at: float = -math.inf  # min_remaining may only rise once this stated reset has passed
    reset_at: float | None = None  # when a slot frees by the newest statement (None: unknown or spent)
    limit: int | None = None
    window: float | None = None
    unlimited: bool = False  # answered without any rate-limit headers
    probe: Ticket | None = None  # the request in flight alone, if one is
    whole_seconds: bool = False  # the stated resets come in whole seconds (so does the window, then)
    window_slack: float = 0.0  # added to a whole-second window once a probe at its end was refused
    last_send: float = -math.inf
    paused_until: float = -math.inf
    backoff: float = 0.0
    # this process's requests of the last window, oldest first, each [its send time, then its answer's time]
    recent: deque[list[float]] = field(default_factory=deque)
    requests: int = 0
    throttled: int = 0
    paused_seconds: float = 0.0


def _number(value: object) -> float | None:
    """A finite, non-negative number from a header value, or None."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _retry_after(value: str | None, wall: float) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date."""
    if value is None:
        return None
    if (seconds := _number(value)) is None:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = max(0.0, (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - wall)
    return min(seconds, _MAX_WAIT)


def parse_rate_headers(headers: Mapping[str, str], wall: float) -> RateHeaders:
    """Read the rate-limit headers, in any letter case; ``wall`` is the local epoch time now.

    Retry-After is preferred. It is whole seconds rounded down, so X-RateLimit-Reset (an epoch) may raise
    ``reset_in`` by up to one second; alone, the epoch is compared with ``wall``. Garbage reads as None.
    """
    lower: dict[str, str] = {}
    for key, value in headers.items():
        lower.setdefault(str(key).lower(), value)
    limit = _number(lower.get("x-ratelimit-limit"))
    limit_int = int(limit) if limit is not None and limit >= 1 else None
    remaining = _number(lower.get("x-ratelimit-remaining"))
    remaining_int = None if remaining is None else int(min(remaining, limit_int or remaining))
    retry_after = _retry_after(lower.get("retry-after"), wall)
    epoch = _number(lower.get("x-ratelimit-reset"))
    by_epoch = None if epoch is None else max(0.0, epoch - wall)
    if retry_after is not None and by_epoch is not None:
        reset_in: float | None = min(max(retry_after, by_epoch), retry_after + 1.0)
    else:
        reset_in = retry_after if by_epoch is None else by_epoch
    return RateHeaders(limit_int, remaining_int, retry_after, None if reset_in is None else min(reset_in, _MAX_WAIT))


class Governor:
    """Shared by every request to one host; see the module docstring for the pacing rules."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
                 wall_clock: Callable[[], float] = time.time, initial_concurrency: int = 1,
                 max_rate: float | None = None, rate_share: float = 1.0, safety_margin: int = 1,
                 initial_backoff: float = 1.0, max_backoff: float = 60.0,
                 on_pause: Callable[[PauseNotice], None] | None = None,
                 on_pace: Callable[[PauseNotice], None] | None = None) -> None:
        if initial_concurrency < 1 or safety_margin < 0 or not 0 < rate_share <= 1:
            raise ConfigError("need initial_concurrency >= 1, safety_margin >= 0, 0 < rate_share <= 1")
        if (max_rate is not None and max_rate <= 0) or not 0 < initial_backoff <= max_backoff:
            raise ConfigError("need max_rate > 0 and 0 < initial_backoff <= max_backoff")
        self._clock, self._sleep, self._wall_clock = clock, sleep, wall_clock
        self._initial, self._max_rate, self._share = initial_concurrency, max_rate, rate_share
        self._margin, self._backoff, self._max_backoff = safety_margin, initial_backoff, max_backoff
        self._on_pause = on_pause
        self._on_pace = on_pace  # told when a request waits for the budget (no 429: asyncdl's own pacing)
        self._buckets: dict[str, _Bucket] = {}

    async def acquire(self, bucket: str) -> Ticket:
        """Wait until a request in ``bucket`` may be sent; settle the ticket with observe() or release().

        After a 429 the caller observes it, then calls acquire again and retries the same request:
        acquire waits out the pause.
        """
        if (b := self._buckets.get(bucket)) is None:
            b = self._buckets[bucket] = _Bucket(bucket, backoff=self._backoff)
        async with b.lock:
            while (delay := self._delay(b, self._clock())) != 0.0:
                if self._on_pace is not None and delay is not None and delay >= PACE_TOLD and b.limit is not None:
                    self._on_pace(PauseNotice(b.name, delay, max(0, self._estimate(b)), b.limit))
                await self._wait(b, delay)
            return self._take(b)

    @asynccontextmanager
    async def request(self, bucket: str) -> AsyncIterator[Ticket]:
        """``async with gov.request("search") as ticket:`` send, then ``ticket.observe(status, headers)``.

        If nothing was observed when the block exits (a connection error, a cancellation), the ticket is
        released.
        """
        ticket = await self.acquire(bucket)
        try:
            yield ticket
        finally:
            if not ticket.done:
                self.release(ticket)

    def observe(self, ticket: Ticket, *, status: int, headers: Mapping[str, str]) -> None:
        """Learn from the response to ``ticket``: its status and headers (a Mapping in any letter case).

        A 429 pauses the bucket until Retry-After (else X-RateLimit-Reset, else a growing backoff), calls
        ``on_pause`` and is counted. The caller must then acquire again and retry the same request.
        """
        b, now = self._settle(ticket), self._clock()
        info = parse_rate_headers(headers, self._wall_clock())
        if info.limit is not None and info.limit != b.limit:
            b.limit, b.window = info.limit, None  # a different limit: relearn its window
        if status == 429:
            b.throttled += 1
            if ticket.alone and b.whole_seconds:
                b.window_slack = 1.0  # a probe at the end of the whole-second window was early
            with contextlib.suppress(ValueError):
                b.recent.remove(ticket.counted)  # a refused request is not counted by the server
            seconds = info.reset_in or b.backoff
            b.backoff = self._backoff if info.reset_in else min(2 * b.backoff, self._max_backoff)
            if info.remaining is not None or b.min_remaining is not None:
                b.min_remaining, b.rise_at = 0, now + seconds
            b.reset_at = now + seconds
            self._pause(b, now, seconds)
        else:
            b.backoff = self._backoff
            if info.remaining is not None:
                self._learn_remaining(b, now, info, sent_at=ticket.sent_at, alone=ticket.alone)
            elif b.min_remaining is None and info.limit is None and status < 400:
                b.unlimited = True
            span = info.retry_after if info.retry_after is not None else info.reset_in
            if span and info.limit is not None and info.limit == b.limit:
                b.window = max(b.window or 0.0, span)
                b.whole_seconds = info.retry_after is not None and float(info.retry_after).is_integer()
        self._notify(b)

    def release(self, ticket: Ticket) -> None:
        """Settle a ticket whose request got no response; it still counts as sent."""
        self._notify(self._settle(ticket))

    @property
    def stats(self) -> GovernorStats:
        """Requests, 429s, paused seconds and the learned limit, remaining and window of each bucket."""
        return GovernorStats({name: BucketStats(
            b.requests, b.throttled, b.paused_seconds, b.limit,
            None if b.min_remaining is None else max(0, self._estimate(b)), b.window,
        ) for name, b in self._buckets.items()})

    @staticmethod
    def _learn_remaining(b: _Bucket, now: float, info: RateHeaders, *, sent_at: float, alone: bool) -> None:
        """Keep the lowest remaining stated since the last reset; a higher one only after that reset.

        The server counts concurrent requests in its own order, so the freshest-sent answer is not the
        freshest count; but every request counted after the one with the lowest remaining is still in
        flight, so ``min_remaining - in_flight`` never overstates what is left (expiries only add to it).
        A higher remaining is believed only from a request sent after the stated reset, so the server
        counted it after a slot expired, or from one sent alone, which the server counted after every other.
        """
        assert info.remaining is not None
        reset_at = None if info.reset_in is None else now + info.reset_in
        if b.min_remaining is None or alone or sent_at >= b.rise_at - _CLOCK_SLACK:
            b.min_remaining, b.rise_at = info.remaining, (reset_at if reset_at is not None else now)
        else:
            b.min_remaining = min(b.min_remaining, info.remaining)
        b.reset_at = reset_at

    def _estimate(self, b: _Bucket) -> int:
        return 0 if b.min_remaining is None else b.min_remaining - b.in_flight

    def _delay(self, b: _Bucket, now: float) -> float | None:
        """0.0: send now; > 0: wait that long (or until a response); None: wait for a response."""
        if (wait := max(b.paused_until, b.last_send + self._gap(b), self._share_free_at(b, now)) - now) > _EPS:
            return wait
        if b.min_remaining is None:
            return 0.0 if b.unlimited or b.in_flight < self._initial else None
        if self._estimate(b) > self._margin:
            return 0.0
        if self._own_window(b) is not None and self._share >= 1 and b.in_flight:
            return None  # their answers come first: they may show slots freed meanwhile
        if (free_at := self._own_slot_at(b)) is not None:
            return 0.0 if (wait := free_at - now) <= _EPS else wait
        if b.reset_at is not None:
            return 0.0 if (wait := b.reset_at - now) <= _EPS else wait
        return None if b.in_flight else 0.0  # nothing will answer: probe

    async def _wait(self, b: _Bucket, delay: float | None) -> None:
        if delay is not None and b.in_flight == 0:
            await self._sleep(delay)  # no response can arrive meanwhile
            return
        if b.changed is None:
            b.changed = anyio.Event()
        changed = b.changed
        if delay is None:
            await changed.wait()
            return
        async with anyio.create_task_group() as tg:

            async def wake() -> None:
                await changed.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wake)
            await self._sleep(delay)
            tg.cancel_scope.cancel()

    def _take(self, b: _Bucket) -> Ticket:
        now = self._clock()
        if b.min_remaining is not None and self._estimate(b) <= self._margin:
            b.reset_at = None  # this request spends the slot the reset freed
        if b.probe is not None:
            b.probe.alone = False  # the server may count this one before it
        ticket = Ticket(self, b.name, now, alone=b.in_flight == 0)
        b.probe = ticket if ticket.alone else None
        b.in_flight += 1
        b.requests += 1
        b.last_send = now
        b.recent.append(ticket.counted)
        self._forget(b, now)
        return ticket

    def _forget(self, b: _Bucket, now: float) -> None:
        """Drop the recent requests that have left every window: older than the window, or than the limit."""
        keep = None if b.window is None else now - max(b.window, self._own_window(b) or 0.0)
        while b.recent and ((keep is not None and b.recent[0][0] <= keep) or len(b.recent) > (b.limit or 1000)):
            b.recent.popleft()

    def _own_window(self, b: _Bucket) -> float | None:
        """The window this process counts its own requests in: the learnt one, whole seconds if stated so."""
        if not b.window:
            return None
        if b.whole_seconds and b.window >= 1:
            return math.floor(b.window) + b.window_slack
        return b.window

    def _own_slot_at(self, b: _Bucket) -> float | None:
        """With the whole budget (rate_share 1) and nothing in flight: when the server surely has a slot
        free again, by this process's own requests (the answer of the (L - margin)-th newest + W); None when
        they do not fill the budget (others' requests do: wait for the stated reset instead) or nothing is
        learnt."""
        window = self._own_window(b)
        if self._share < 1 or b.limit is None or window is None or b.in_flight:
            return None
        allowed = b.limit - self._margin
        answered = sorted(entry[0] for entry in b.recent)
        if allowed < 1 or len(answered) < allowed:
            return None
        return answered[len(answered) - allowed] + window

    def _gap(self, b: _Bucket) -> float:
        """The least spacing between two sends: 1 / max_rate; with a share of the budget, window / effective
        limit once it runs low (while it is plentiful, bursts are fine: a moving window only counts requests)."""
        gap = 0.0 if self._max_rate is None else 1.0 / self._max_rate
        if self._share < 1 and b.limit is not None and b.window:
            effective = max(1, math.floor(b.limit * self._share))
            low_water = max(self._margin + 1, effective // 4)
            if b.min_remaining is None or self._estimate(b) <= low_water:
                gap = max(gap, b.window / effective)
        return gap

    def _share_free_at(self, b: _Bucket, now: float) -> float:
        """With rate_share < 1: when this process may send again without using more than its share
        (floor(limit * share) requests in any window) of a budget it shares with other machines."""
        if self._share >= 1 or b.limit is None or not b.window:
            return -math.inf
        while b.recent and b.recent[0][0] <= now - b.window:
            b.recent.popleft()
        if len(b.recent) < max(1, math.floor(b.limit * self._share)):
            return -math.inf
        # the server counted the request somewhere between its send and its answer: by the answer's time
        # (the send's while in flight) it leaves the server's window too, a little past the edge at most
        return b.recent[0][0] + b.window * 1.01

    def _settle(self, ticket: Ticket) -> _Bucket:
        if ticket._governor is not self or ticket.done:
            raise RuntimeError("a ticket must be settled exactly once, by the governor that issued it")
        ticket.done = True
        b = self._buckets[ticket.bucket]
        b.in_flight -= 1
        if b.probe is ticket:
            b.probe = None
        ticket.counted[0] = self._clock()  # answered now: counted by the server at the latest now
        return b

    def _notify(self, b: _Bucket) -> None:
        if b.changed is not None:
            b.changed.set()
            b.changed = None

    def _pause(self, b: _Bucket, now: float, seconds: float) -> None:
        until = now + seconds
        if until <= b.paused_until:
            return
        b.paused_seconds += until - max(now, b.paused_until)
        b.paused_until = until
        if self._on_pause is not None:
            self._on_pause(PauseNotice(b.name, seconds, 0, b.limit))
