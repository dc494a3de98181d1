"""``asyncdl status DEST --watch``: a running mirror watched from another terminal, read-only from its
journals (safe while the run writes, whatever shard or machine runs it).

Every ``interval`` seconds the journals are read again: files and bytes by state, the speed over a moving
window (from the bytes done and the bytes the files in flight have on disk), the time left at that speed,
the files in flight with their progress, the latest failures with their reasons, a line per shard. On a
terminal it is a live rich view; otherwise a plain line each interval. It says when no run is active, and
ends when the run does (``follow``: stays, waiting for the next one, until Ctrl-C).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from asyncdl.store.status import Status, active, in_flight, read_status, recent_failures
from asyncdl.units import format_size, plural

WINDOW = 20.0  # seconds the speed is measured over


@dataclass
class Snapshot:
    """DEST as its journals say it is now."""

    status: Status
    flying: list[tuple[str, int, int | None]]
    failures: list[tuple[str, str]]
    active: bool
    at: float

    @property
    def files(self) -> int:
        return sum(c.files for c in self.status.states.values())

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.status.states.values())

    @property
    def done_bytes(self) -> int:
        """Bytes of the finished files, and what the files in flight have on disk."""
        done = self.status.states.get("done")
        return (done.bytes if done else 0) + sum(got for _, got, _ in self.flying)

    def count(self, state: str) -> int:
        found = self.status.states.get(state)
        return found.files if found else 0


def take(dest: Path, clock: Callable[[], float] = time.monotonic) -> Snapshot:
    status = read_status(dest)
    return Snapshot(status, in_flight(dest), recent_failures(dest), active(status), clock())


class Speed:
    """Bytes a second over the last ``WINDOW`` seconds of snapshots (0 until two are apart)."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, snapshot: Snapshot) -> float:
        self.samples.append((snapshot.at, snapshot.done_bytes))
        while len(self.samples) > 2 and self.samples[1][0] <= snapshot.at - WINDOW:
            self.samples.popleft()
        (since, then), (now, bytes_now) = self.samples[0], self.samples[-1]
        return max(0.0, (bytes_now - then) / (now - since)) if now > since else 0.0


def describe(snapshot: Snapshot, speed: float) -> str:
    """The one line of the plain mode."""
    left = snapshot.total_bytes - snapshot.done_bytes
    eta = f", about {left / speed:.0f} s left" if speed > 0 and left > 0 else ""
    return (f"files {snapshot.count('done')}/{snapshot.files} done, {len(snapshot.flying)} in flight, "
            f"{snapshot.count('failed')} failed | {format_size(snapshot.done_bytes)}/"
            f"{format_size(snapshot.total_bytes)} at {format_size(speed)}/s{eta} | "
            + ("a run is active" if snapshot.active else "no run active"))


def view(dest: Path, snapshot: Snapshot, speed: float) -> RenderableType:
    """The live view on a terminal."""
    states = Table("state", "files", "bytes")
    for state in ("done", "partial", "pending", "failed"):
        if state in snapshot.status.states:
            states.add_row(state, str(snapshot.count(state)), format_size(snapshot.status.states[state].bytes))
    parts: list[RenderableType] = [Text(f"asyncdl status of {dest}", style="bold"), states,
                                   Text(describe(snapshot, speed))]
    if snapshot.flying:
        flying = Table("in flight", "done", "of", "%", title_justify="left")
        for path, got, size in snapshot.flying[:10]:
            shown = path if len(path) <= 60 else "…" + path[-59:]
            share = f"{100 * got / size:.0f}" if size else "?"
            flying.add_row(shown, format_size(got), format_size(size or 0) if size else "?", share)
        if len(snapshot.flying) > 10:
            flying.caption = f"and {plural(len(snapshot.flying) - 10, 'more file')}"
        parts.append(flying)
    for path, reason in snapshot.failures:
        parts.append(Text(f"failed: {path}: {reason}", style="red"))
    shards = [s for s in snapshot.status.shards if s.shard]
    if shards:
        table = Table("shard", "done", "failed", "last run", title_justify="left")
        for s in snapshot.status.shards:
            table.add_row(s.shard or "whole", f"{s.done}/{s.files}", str(s.failed),
                          s.last_outcome or ("-" if s.started else "not started"))
        parts.append(table)
    return Group(*parts)


def watch(dest: Path, *, console: Console, interval: float = 2.0, follow: bool = False,
          clock: Callable[[], float] = time.monotonic) -> Snapshot:
    """Watch DEST until its run ends (or, with ``follow``, until interrupted); the last snapshot."""
    speed = Speed()
    snapshot = take(dest, clock)
    if not snapshot.active and not follow:
        console.print(f"no run active in {dest}: {describe(snapshot, 0.0)}", highlight=False, markup=False,
                      soft_wrap=True)
        return snapshot
    live = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None
    seen_active = snapshot.active
    try:
        if live is not None:
            live.start()
        while True:
            rate = speed.add(snapshot)
            if live is not None:
                live.update(view(dest, snapshot, rate))
            else:
                console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {describe(snapshot, rate)}", highlight=False,
                              markup=False, soft_wrap=True)
            if seen_active and not snapshot.active and not follow:
                break
            time.sleep(interval)
            snapshot = take(dest, clock)
            seen_active = seen_active or snapshot.active
    finally:
        if live is not None:
            live.stop()
    last = snapshot.status.runs[0]["outcome"] if snapshot.status.runs else "none"
    console.print(f"the run ended: {last}", highlight=False, markup=False)
    return snapshot
