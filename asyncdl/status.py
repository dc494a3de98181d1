"""``asyncdl status`` and ``asyncdl verify``: what the journals in DEST say, and whether the disk agrees."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from asyncdl import invenio
from asyncdl.config import Config
from asyncdl.errors import JournalError
from asyncdl.events import NullSink, ProgressSink
from asyncdl.fsutil import md5_of
from asyncdl.http import Client
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.shard import Shard, from_journal_name
from asyncdl.store.journal import FileRow, Journal, connect
from asyncdl.store.merged import journal_paths, merged
from asyncdl.store.schema import ROW_COLUMNS
from asyncdl.transfer import Transfer

VERIFY_FAILURE = "md5 mismatch or missing at verify"


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
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    runs: list[dict[str, object]] = field(default_factory=list)
    shards: list[ShardState] = field(default_factory=list)
    bytes_left: int = 0
    speed: float | None = None

    @property
    def eta(self) -> float | None:
        """Seconds to fetch what is left at the speed of the last run that moved bytes (of each shard)."""
        return self.bytes_left / self.speed if self.speed and self.bytes_left else None


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
        status.failures = list(db.execute(
            "SELECT path, COALESCE(last_error, ''), attempts FROM files WHERE state = 'failed' ORDER BY path"))
    speeds = []
    for path in paths:
        with _reading(path) as journal:
            runs = _runs(journal)
            status.shards.append(_shard_state(journal, path))
        status.runs += runs
        moving = [r for r in runs if r["bytes"] and r["seconds"]]
        if moving:  # shards run side by side: their speeds add up
            speeds.append(float(str(moving[0]["bytes"])) / float(str(moving[0]["seconds"])))
    status.runs.sort(key=lambda r: float(str(r["started"] or 0)), reverse=True)
    status.speed = sum(speeds) if speeds else None
    status.shards += not_started(paths)
    return status


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


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    still_bad: list[tuple[str, str]] = field(default_factory=list)


async def verify(dest: Path, *, config: Config, repair: bool = False, sink: ProgressSink | None = None,
                 on_file: Callable[[str, int], None] | None = None,
                 on_total: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-hash every finished file against the journal's md5; with ``repair``, download the bad ones again.
    ``on_total`` is told the bytes to hash before the first file, ``on_file`` each file as it is checked.

    Every journal in DEST is read (each path once); a bad file is marked failed, or repaired, in the
    journal of the shard it belongs to, so that shard's next run fetches it.
    """
    report = VerifyReport()
    paths = journal_paths(dest)
    bad: dict[int, list[FileRow]] = {}
    with merged(paths) as db:
        if on_total is not None:
            on_total(db.execute("SELECT COALESCE(SUM(size), 0) FROM files WHERE state = 'done'").fetchone()[0])
        query = f"SELECT {ROW_COLUMNS}, journal FROM files WHERE state IN ('done', 'failed') ORDER BY path"
        for *columns, number in db.execute(query):
            row = FileRow(*columns)
            if row.state == "failed":
                if repair and (row.last_error or "").startswith(VERIFY_FAILURE):  # an earlier verify's: too
                    report.mismatched.append(row.path)
                    bad.setdefault(number, []).append(row)
                continue
            report.checked += 1
            target = dest / row.path
            if not target.is_file():
                report.missing.append(row.path)
                bad.setdefault(number, []).append(row)
            elif row.md5 and await anyio.to_thread.run_sync(md5_of, target) != row.md5:
                report.mismatched.append(row.path)
                bad.setdefault(number, []).append(row)
            else:
                report.ok += 1
            if on_file is not None:
                on_file(row.path, row.size or 0)
    for number, rows in sorted(bad.items()):
        journal = Journal(paths[number])
        try:
            if repair:
                await _repair(dest, config, rows, journal, report, sink or NullSink())
            else:
                for row in rows:
                    journal.mark_failed(row.path, VERIFY_FAILURE)
        finally:
            journal.close()
    return report


async def _repair(dest: Path, config: Config, rows: list[FileRow], journal: Journal, report: VerifyReport,
                  sink: ProgressSink) -> None:
    """Fetch ``rows`` again, each from the instance its mirror ran against; the token goes only to
    ``config.base_url`` (the instance it was given for), never to another one the journal names."""
    by_base: dict[str, list[tuple[FileRow, str]]] = {}
    for row in rows:
        api_url = journal.record_api_url(row.record_id) or invenio.record_url(config.base_url, row.record_id)
        by_base.setdefault(invenio.base_of(api_url), []).append((row, api_url))
    for base, items in by_base.items():
        token = config.token if same_instance(base, config.base_url) else None
        await _repair_from(dest, dataclasses.replace(config, base_url=base, token=token), items, journal, report,
                           sink)


def same_instance(first: str, second: str) -> bool:
    """Whether two base URLs name one instance (scheme, host and port; a trailing slash aside)."""
    return first.rstrip("/").lower() == second.rstrip("/").lower()


async def _repair_from(dest: Path, config: Config, items: list[tuple[FileRow, str]], journal: Journal,
                       report: VerifyReport, sink: ProgressSink) -> None:
    async with Client(config, sink=sink) as client:
        transfer = Transfer(client, config, dest)
        for row, api_url in items:
            record = Record(id=row.record_id, title="", api_url=api_url)
            entry = FileEntry(key=row.key, size=row.size, url=row.url,
                              checksum=Checksum("md5", row.md5) if row.md5 else None)
            result = await transfer.fetch(PlannedFile(record, entry, row.path))
            if result.outcome in ("ok", "skipped"):
                report.repaired.append(row.path)
                journal.mark_done(row.path, str(dest / row.path))
            else:
                report.still_bad.append((row.path, result.reason))
                journal.mark_failed(row.path, f"{VERIFY_FAILURE}; repair failed: {result.reason}")
