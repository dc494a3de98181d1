"""Fault injection: each kind has a rate, and decisions are deterministic under a seed.

A decision depends on (seed, kind, URL path, attempt number at that path), never on
the order in which concurrent requests arrive, so a run can be repeated exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

BODY_FAULTS = ("reset", "corrupt", "stall", "truncate")


@dataclass(frozen=True)
class FaultConfig:
    """Rates are probabilities per request (0 = never)."""

    seed: int = 0
    latency: float = 0.0
    bandwidth: float = 0.0  # bytes/s of each connection's file bodies (0 = no cap)
    shared_bandwidth: float = 0.0  # bytes/s of all the server's file bodies together (0 = no cap)
    reset: float = 0.0
    error_5xx: float = 0.0
    error_429: float = 0.0
    corrupt: float = 0.0
    stall: float = 0.0
    truncate: float = 0.0
    expired: float = 0.0  # presigned downloads: store requests refused as expired, as if they came too late
    first_attempts: int = 0
    stall_seconds: float = 3600.0
    burst_every: float = 0.0  # seconds between 429 bursts (0 = none): a server-wide refusal, for everyone
    burst_seconds: float = 1.0  # how long each burst lasts
    broken_date_ranges: bool = False  # searches with a created: range match nothing (another back end's reading)

    @property
    def any_body_fault(self) -> bool:
        return any(getattr(self, kind) > 0 for kind in BODY_FAULTS)


def _unit(seed: int, *parts: object) -> float:
    """A number in [0, 1) derived from the parts."""
    text = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2**64


class FaultPlan:
    """Decides which faults hit which request."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config

    def applies(self, kind: str, path: str, attempt: int) -> bool:
        """Whether fault ``kind`` hits the ``attempt``-th request (0-based) for ``path``."""
        rate = float(getattr(self.config, kind))
        if rate <= 0 or (self.config.first_attempts and attempt >= self.config.first_attempts):
            return False
        return _unit(self.config.seed, kind, path, attempt) < rate

    def body_fault(self, path: str, attempt: int) -> str | None:
        """The first body fault that hits this request, if any."""
        return next((k for k in BODY_FAULTS if self.applies(k, path, attempt)), None)

    def position(self, kind: str, path: str, attempt: int, length: int) -> int:
        """Where in a body of ``length`` bytes the fault strikes (0 <= p < length)."""
        return int(_unit(self.config.seed, kind, "at", path, attempt) * max(1, length))

    def burst_left(self, elapsed: float) -> float:
        """Seconds left of the 429 burst under way ``elapsed`` seconds after start (0: none). Bursts take
        the last ``burst_seconds`` of every ``burst_every`` seconds (time-based, not seeded)."""
        every, length = self.config.burst_every, self.config.burst_seconds
        if every <= 0 or length <= 0:
            return 0.0
        phase = elapsed % every
        return every - phase if phase >= every - length else 0.0

    def status_5xx(self, path: str, attempt: int) -> int:
        return (500, 502, 503, 504)[int(_unit(self.config.seed, "which5xx", path, attempt) * 4)]
