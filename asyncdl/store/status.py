"""What the journals in DEST say: files and bytes by state, failures, the last runs, each shard, time left."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from asyncdl.errors import JournalError
from asyncdl.shard import Shard, from_journal_name
from asyncdl.store.journal import bytes_kept, connect
from asyncdl.store.lock import held
from asyncdl.store.merged import journal_paths, merged
from asyncdl.store.names import PART_SUFFIX


@dataclass
class StateCount:
    files: int = 0
    bytes: int = 0


@dataclass
class ShardState:
    """One journal's own view: its shard (None for a whole run), files, done, failed, its last run's outcome.
    A shard of N whose journal does not exist (yet) has ``started`` False."""

    journal: str
    shard: str | None
    started: bool = True
    files: int = 0
    done: int = 0
    failed: int = 0
    bytes: int = 0
    done_bytes: int = 0
    last_outcome: str | None = None


@dataclass
class Status:
    """Counts and bytes by state, failures with reasons, the last runs, each shard, and an ETA, over every
    journal."""

    states: dict[str, StateCount] = field(default_factory=dict)
    linked: StateCount = field(default_factory=StateCount)  # done files linked from another copy in DEST
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # records whose files could not be had
    runs: list[dict[str, object]] = field(default_factory=list)
    shards: list[ShardState] = field(default_factory=list)
    bytes_left: int = 0
    speed: float | None = None

    @property
    def eta(self) -> float | None:
        """Seconds to fetch what is left at the speed of the last run that moved bytes (of each shard)."""
        return self.bytes_left / self.speed if self.speed and self.bytes_left else None


DEAD = "ended without a word (killed or lost)"  # a run the journal says is running, whose lock nobody holds


def read_status(dest: Path) -> Status:
    """Status over every journal in DEST: states and failures from the merged files (each path once),
    the runs and a line per shard from each journal."""
    status = Status()
    paths = journal_paths(dest)
    with merged(paths) as db:
        for state, count, size, done in db.execute(
                "SELECT state, COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(bytes_done), 0) FROM files "
                "GROUP BY state"):
            status.states[state] = StateCount(count, size)
            if state != "done":
                status.bytes_left += size - (done if state == "partial" else 0)
        status.linked = StateCount(*db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files "
                                               "WHERE state = 'done' AND source IS NOT NULL").fetchone())
        status.failures = list(db.execute(
            "SELECT path, COALESCE(last_error, ''), attempts FROM files WHERE state = 'failed' ORDER BY path"))
    speeds = []
    for path in paths:
        with _reading(path) as journal:
            runs = _runs(journal)
            state = _shard_state(journal, path)
            status.unavailable += journal.execute("SELECT id, unavailable FROM records WHERE unavailable IS NOT NULL "
                                                  "ORDER BY id").fetchall()
        live = held(path.parent / f"lock{path.name[len('journal'):-len('.sqlite')]}")
        for position, run in enumerate(runs):  # only the newest run can still be going, and only if it holds the lock
            if run["outcome"] == "running" and (position > 0 or not live):
                run["outcome"] = DEAD
        if state.last_outcome == "running" and not live:
            state.last_outcome = DEAD
        status.shards.append(state)
        status.runs += runs
        moving = [r for r in runs if r["bytes"] and r["seconds"]]
        if moving:  # shards run side by side: their speeds add up
            speeds.append(float(str(moving[0]["bytes"])) / float(str(moving[0]["seconds"])))
    status.runs.sort(key=lambda r: float(str(r["started"] or 0)), reverse=True)
    status.speed = sum(speeds) if speeds else None
    status.shards += not_started(paths)
    return status


def active(status: Status) -> bool:
    """Whether a run is going on in DEST (a journal's newest run says running and holds its lock)."""
    return any(shard.last_outcome == "running" for shard in status.shards)


def in_flight(dest: Path, limit: int = 20) -> list[tuple[str, int, int | None]]:
    """The files being transferred (state partial), the most recently started first: (path, bytes on disk,
    size), the bytes from the part file (or its sidecar's pieces) as it stands now."""
    found: list[tuple[float, str, int | None]] = []
    for path in journal_paths(dest):
        with _reading(path) as journal:
            found += journal.execute("SELECT COALESCE(updated, 0), path, size FROM files WHERE state = 'partial' "
                                     "ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
    found.sort(reverse=True)
    return [(name, bytes_kept(dest / (name + PART_SUFFIX), size), size) for _, name, size in found[:limit]]


def recent_failures(dest: Path, limit: int = 5) -> list[tuple[str, str]]:
    """The files that failed most recently, with their reasons."""
    found: list[tuple[float, str, str]] = []
    for path in journal_paths(dest):
        with _reading(path) as journal:
            found += journal.execute("SELECT COALESCE(updated, 0), path, COALESCE(last_error, '') FROM files "
                                     "WHERE state = 'failed' ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
    found.sort(reverse=True)
    return [(name, reason) for _, name, reason in found[:limit]]


def not_started(paths: list[Path]) -> list[ShardState]:
    """The shards of every N seen among the journals that have no journal: not started (or lost)."""
    shards = [shard for shard in map(from_journal_name, (path.name for path in paths)) if shard is not None]
    seen = {(shard.index, shard.count) for shard in shards}
    return [ShardState(f"journal{Shard(k, n).suffix}.sqlite", str(Shard(k, n)), started=False)
            for n in sorted({shard.count for shard in shards}) for k in range(1, n + 1) if (k, n) not in seen]


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A journal opened for reading; a damaged one is a JournalError naming it."""
    db = connect(path)
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from exc
    finally:
        db.close()


def _runs(db: sqlite3.Connection) -> list[dict[str, object]]:
    """The last five runs a journal records."""
    names = ("id", "command", "started", "ended", "outcome", "ok", "failed", "bytes", "seconds")
    return [dict(zip(names, row, strict=True)) for row in db.execute(
        "SELECT id, command, started, ended, outcome, files_ok, files_failed, bytes, seconds FROM runs "
        "ORDER BY started DESC LIMIT 5")]


def _shard_state(db: sqlite3.Connection, path: Path) -> ShardState:
    """Files, bytes and the last outcome the journal at ``path`` records."""
    shard = from_journal_name(path.name)
    state = ShardState(path.name, None if shard is None else str(shard))
    for name, count, size in db.execute("SELECT state, COUNT(*), COALESCE(SUM(size), 0) FROM files GROUP BY state"):
        state.files += count
        state.bytes += size
        if name == "done":
            state.done, state.done_bytes = count, size
        elif name == "failed":
            state.failed = count
    last = db.execute("SELECT outcome FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    state.last_outcome = last[0] if last else None
    return state
