"""The journal: DEST/.asyncdl/journal.sqlite (journal-K-of-N.sqlite for a shard), the single source of truth
for what is done.

Tables: ``runs`` (command, selection, start, end, outcome, counts), ``records`` (id, concept, title,
updated, raw JSON), ``selections`` (which records a selection gave when it was last crawled), and
``files`` (record, key, path, size, md5, url, state, bytes done, attempts, last error, mtime, the stated
checksum of any kind).
File states: pending -> partial -> done, or failed. One writer task applies every change, batched in
transactions; the rest of the program only sends it changes, as the typed messages below. The schema
and its migrations are in :mod:`asyncdl.store.schema`. SQLite runs in WAL mode, so ``status``
can read while a run writes (a shard's journal in rollback mode, see :func:`connect`).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio

from asyncdl.errors import DiskFullError, JournalError, LocalError, translate_os_error
from asyncdl.events import Event, FileFinished, FileStarted, RecordInaccessible
from asyncdl.models import Record
from asyncdl.shard import from_journal_name
from asyncdl.store import sidecar
from asyncdl.store.names import PART_SUFFIX, sidecar_of
from asyncdl.store.records import record_from_json
from asyncdl.store.schema import ROW_COLUMNS, migrate
from asyncdl.streams import batches

T = TypeVar("T")
TOLD = 100  # files gone or changed on disk named one by one at the start of a run (the rest counted)


@dataclass(frozen=True, slots=True)
class FileRow:
    path: str
    record_id: str
    key: str
    size: int | None
    md5: str | None
    url: str
    state: str
    bytes_done: int
    attempts: int
    last_error: str | None
    mtime: float | None
    checksum: str | None = None  # as the record states it: "md5:...", "sha256:...", "multipart:..."


def journal_error(exc: sqlite3.Error | OSError, path: Path) -> LocalError:
    """A full disk is a DiskFullError (free space and run again); anything else a JournalError."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFullError(f"no space left on the device holding {path.parent} (the journal could not be "
                             "written): free some and run again (partial files are kept and will resume)")
    if isinstance(exc, OSError):
        translated = translate_os_error(exc, path)
        if isinstance(translated, LocalError):
            return translated
    what = f"the journal {path}" if path.suffix == ".sqlite" else str(path)
    return JournalError(f"cannot write {what}: {exc}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Journal writes raise DiskFullError or JournalError, never a bare sqlite3 or OS error."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise journal_error(exc, path) from exc


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) a journal; a corrupt one is a JournalError naming the file.

    A whole run's journal uses SQLite's WAL (readers never wait for the writer). A shard's journal uses the
    rollback journal: WAL needs memory shared by every process that opens the database, so one host, and a
    shard's journal is read from other machines (other shards, ``status`` on a login node) over a shared
    file system; the rollback journal only needs the file system's locks.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    shared = from_journal_name(path.name) is not None
    try:
        connection = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        connection.execute(f"PRAGMA journal_mode={'DELETE' if shared else 'WAL'}")
        connection.execute(f"PRAGMA synchronous={'FULL' if shared else 'NORMAL'}")
        migrate(connection, path)
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
            raise journal_error(exc, path) from exc
        raise JournalError(f"the journal {path} cannot be read ({exc}); move it away to start afresh "
                           "(files already downloaded are adopted after hashing)") from exc
    return connection


# finished, elsewhere than the path given; "+state": never the state index (see copy_in)
FINISHED_AT_ANOTHER_PATH = "+state = 'done' AND path != ? AND mtime IS NOT NULL LIMIT 1"


def copy_in(db: sqlite3.Connection, path: str, md5: str | None, size: int | None,
            file_id: str | None) -> tuple[str, float] | None:
    """A finished file other than ``path`` that is the same stored file (the same file id, or the same md5
    and size), with the mtime it was finished with; None if the journal ``db`` has none."""
    # two lookups, each by its own index (files_file_id, files_copy): with an OR, or with "state =" indexable,
    # SQLite walked the state index, every finished row for every planned file (quadratic over a mirror)
    found = FINISHED_AT_ANOTHER_PATH
    row = db.execute(f"SELECT path, mtime FROM files WHERE file_id = ? AND {found}", (file_id, path)).fetchone() \
        if file_id is not None else None
    if row is None and md5 is not None and size is not None:
        row = db.execute(f"SELECT path, mtime FROM files WHERE md5 = ? AND size = ? AND {found}",
                         (md5, size, path)).fetchone()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True, slots=True)
class Planned:
    """A file of the selection, planned at ``path`` (a changed size or checksum makes it pending again)."""

    path: str
    record_id: str
    key: str
    size: int | None
    md5: str | None
    url: str
    file_id: str | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """A transfer of ``path`` began with ``offset`` bytes already on disk."""

    path: str
    offset: int


@dataclass(frozen=True, slots=True)
class Done:
    """``path`` is verified under its final name (``absolute``: where, for its mtime); ``source``: the copy in
    DEST it was linked from, if it was."""

    path: str
    absolute: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """``path`` failed for ``reason``."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordSeen:
    """A record of the selection, kept to plan its files again without a request (``data``: its JSON)."""

    record_id: str
    conceptrecid: str | None
    title: str
    updated: str
    data: str


@dataclass(frozen=True, slots=True)
class SelectionCrawled:
    """A crawl of the selection ``key`` completed with these record ids (JSON list)."""

    key: str
    description: str
    ids: str


@dataclass(frozen=True, slots=True)
class RecordUnavailable:
    """A record of the selection whose files could not be had (``reason``: restricted, embargoed...)."""

    record_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Moved:
    """A finished file renamed from ``old`` to ``path`` (another layout): its row follows it."""

    old: str
    path: str


Message = Planned | Started | Done | Failed | Moved | RecordSeen | RecordUnavailable | SelectionCrawled


class Journal:
    """Reads at start, and one writer task for every change during a run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)  # the writer's connection (used from its thread, one batch at a time)
        self.reader = connect(path)  # reads, from worker threads, one at a time, while the writer writes (WAL)
        self._reading = threading.Lock()
        self.run_id: int | None = None
        self._send, self._receive = anyio.create_memory_object_stream[Message](math.inf)

    # -- reads (blocking: from a worker thread) -------------------------------------------------------------
    def finished(self, paths: list[str]) -> dict[str, FileRow]:
        """The finished rows among ``paths`` (one query), by path."""
        with self._reading:
            rows = self.reader.execute(f"SELECT {ROW_COLUMNS} FROM files WHERE +state = 'done' AND path IN "
                                       "(SELECT value FROM json_each(?))", (json.dumps(paths),)).fetchall()
        return {row[0]: FileRow(*row) for row in rows}

    def finished_of_record(self, record_id: str) -> dict[str, FileRow]:
        """The finished rows of a record's files, by key (one query; a key at two paths: either)."""
        with self._reading:
            rows = self.reader.execute(f"SELECT {ROW_COLUMNS} FROM files WHERE +state = 'done' AND record_id = ?",
                                       (record_id,)).fetchall()
        return {row[2]: FileRow(*row) for row in rows}

    def layout_placed(self) -> tuple[str | None, int]:
        """See :func:`layout_placed`."""
        with self._reading:
            return layout_placed(self.reader)

    def copy_of(self, path: str, md5: str | None, size: int | None, file_id: str | None) -> tuple[str, float] | None:
        """See :func:`copy_in`, in this journal."""
        with self._reading:
            return copy_in(self.reader, path, md5, size, file_id)

    def files(self, state: str | None = None) -> Iterator[FileRow]:
        query = f"SELECT {ROW_COLUMNS} FROM files" + (" WHERE state = ?" if state else "") + " ORDER BY path"
        for row in self.db.execute(query, (state,) if state else ()):
            yield FileRow(*row)

    def selection_ids(self, key: str) -> list[str] | None:
        """The ids of the records a selection gave at its last complete crawl, when the journal still has
        every one of them (None: never crawled, or a record is missing)."""
        with self._reading:
            row = self.reader.execute("SELECT record_ids FROM selections WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            ids: list[str] = json.loads(row[0])
            known = self.reader.execute("SELECT count(*) FROM records WHERE id IN (SELECT value FROM json_each(?))",
                                        (row[0],)).fetchone()[0]
        return ids if known == len(set(ids)) else None

    def stored_records(self, ids: list[str], *, raw: bool = False) -> list[Record]:
        """The records of ``ids`` (a batch) in that order, as kept; their API JSON only with ``raw``
        (``--save-metadata``), else left in SQLite unparsed."""
        column = "metadata" if raw else "json_remove(metadata, '$.raw')"
        with self._reading:
            found = dict(self.reader.execute(f"SELECT id, {column} FROM records WHERE id IN "
                                             "(SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchall())
        return [record_from_json(json.loads(found[record_id])) for record_id in ids if record_id in found]

    def record_api_url(self, record_id: str) -> str | None:
        """The API URL of a record as the run that crawled it built it (from its --base-url)."""
        with self._reading:
            row = self.reader.execute("SELECT json_extract(metadata, '$.api_url') FROM records WHERE id = ?",
                                      (record_id,)).fetchone()
        return (row[0] or None) if row is not None else None

    def last_success(self, key: str) -> float | None:
        row = self.db.execute("SELECT crawled FROM selections WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else None

    # -- the writer -----------------------------------------------------------------------------------------
    def begin_run(self, command: str, selection: str, layout: str | None = None) -> int:
        with writing(self.path):
            self.db.execute("UPDATE records SET unavailable = NULL WHERE unavailable IS NOT NULL")  # told again
            cursor = self.db.execute("INSERT INTO runs (command, selection, started, outcome, layout) "
                                     "VALUES (?, ?, ?, ?, ?)", (command, selection, time.time(), "running", layout))
        self.run_id = int(cursor.lastrowid or 0)
        return self.run_id

    def end_run(self, *, outcome: str, ok: int, failed: int, nbytes: int, seconds: float) -> None:
        with writing(self.path):
            self.db.execute("UPDATE runs SET ended = ?, outcome = ?, files_ok = ?, files_failed = ?, bytes = ?, "
                            "seconds = ? WHERE id = ?",
                            (time.time(), outcome, ok, failed, nbytes, seconds, self.run_id))

    def send(self, message: Message) -> None:
        """Queue a change for the writer task (never blocks)."""
        self._send.send_nowait(message)

    def close_writer(self) -> None:
        self._send.close()

    async def run_writer(self) -> None:
        """Apply queued changes in batched transactions until the stream closes."""
        async for batch in batches(self._receive):
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._apply, batch)

    def _apply(self, batch: list[Message]) -> None:
        with writing(self.path), self.db:  # one transaction: committed whole, or rolled back
            self.db.execute("BEGIN")
            for message in batch:
                self._do(message)

    def _do(self, message: Message) -> None:
        match message:
            case Planned():
                self._planned(message)
            case Started(path, offset):
                self.db.execute("UPDATE files SET state = 'partial', bytes_done = ?, updated = ? WHERE path = ?",
                                (offset, time.time(), path))
            case Done(path, absolute, source):
                self._done(path, absolute, source)
            case Failed(path, reason):
                self._failed(path, reason)
            case Moved(old, path):
                self.db.execute("DELETE FROM files WHERE path = ?", (path,))
                self.db.execute("UPDATE files SET path = ?, run_id = ?, updated = ? WHERE path = ?",
                                (path, self.run_id, time.time(), old))
            case RecordSeen(record_id, conceptrecid, title, updated, data):
                self.db.execute("INSERT OR REPLACE INTO records (id, conceptrecid, title, updated, metadata, seen) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (record_id, conceptrecid, title, updated, data, time.time()))
            case RecordUnavailable(record_id, reason):
                self.db.execute("UPDATE records SET unavailable = ? WHERE id = ?", (reason, record_id))
            case SelectionCrawled(key, description, ids):
                self.db.execute("INSERT OR REPLACE INTO selections VALUES (?, ?, ?, ?)",
                                (key, description, time.time(), ids))

    def _planned(self, m: Planned) -> None:
        self.db.execute(
            "INSERT INTO files (path, record_id, key, size, md5, url, state, updated, run_id, file_id, checksum) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "record_id = excluded.record_id, key = excluded.key, size = excluded.size, md5 = excluded.md5, "
            "url = excluded.url, run_id = excluded.run_id, file_id = excluded.file_id, checksum = excluded.checksum, "
            "state = CASE WHEN files.md5 IS NOT excluded.md5 OR files.size IS NOT excluded.size "
            "OR files.checksum IS NOT excluded.checksum THEN 'pending' ELSE files.state END",
            (m.path, m.record_id, m.key, m.size, m.md5, m.url, time.time(), self.run_id, m.file_id, m.checksum))

    def _done(self, path: str, absolute: str, source: str | None = None) -> None:
        try:
            mtime: float | None = os.stat(absolute).st_mtime
        except OSError:
            mtime = None
        self.db.execute("UPDATE files SET state = 'done', bytes_done = size, last_error = NULL, mtime = ?, "
                        "updated = ?, source = ? WHERE path = ?", (mtime, time.time(), source, path))

    def _failed(self, path: str, reason: str) -> None:
        self.db.execute("UPDATE files SET state = 'failed', attempts = attempts + 1, last_error = ?, updated = ? "
                        "WHERE path = ?", (reason, time.time(), path))

    def mark_done(self, path: str, absolute: str) -> None:
        """Record a file as done outside a run (``verify --repair``)."""
        with writing(self.path):
            self._done(path, absolute)

    def mark_failed(self, path: str, reason: str) -> None:
        """Record a file as failed outside a run (``verify``)."""
        with writing(self.path):
            self._failed(path, reason)

    def close(self) -> None:
        self.db.close()
        self.reader.close()

    # -- start and end of a run -------------------------------------------------------------------------------
    def reconcile(self, dest: Path) -> list[str]:
        """Make the journal agree with the disk (blocking). Returns what was changed, for the log.

        A finished file deleted or resized by hand is fetched again (a resized one is re-verified first).
        Part files are left alone here: the run resumes those of its files (after re-hashing them), and
        :func:`asyncdl.journals.remove_orphans` removes the rest once the run has planned every file.
        """
        gone: list[str] = []
        changed: list[str] = []
        root = str(dest) + os.sep
        with self._reading:  # streamed: one row at a time, one stat each, only the differences kept
            for path, size, mtime in self.reader.execute("SELECT path, size, mtime FROM files WHERE state = 'done'"):
                try:
                    info = os.stat(root + path)
                except OSError:
                    gone.append(path)
                    continue
                if info.st_size != size or info.st_mtime != mtime:
                    changed.append(path)
        with writing(self.path), self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE files SET state = 'pending' WHERE path = ?", ((p,) for p in gone + changed))
        changes = ([f"{p}: gone from disk, will be fetched again" for p in gone[:TOLD]]
                   + [f"{p}: changed on disk, will be verified again" for p in changed[:TOLD]])
        if len(gone) + len(changed) > len(changes):
            changes.append(f"... and {len(gone) + len(changed) - len(changes)} more files gone or changed on disk")
        return changes

    def note_partials(self, dest: Path) -> None:
        """Record the bytes on disk of every unfinished file (blocking; at the end of a run)."""
        with writing(self.path), self.db:
            self.db.execute("BEGIN")
            for row in self.files("partial"):
                self.db.execute("UPDATE files SET bytes_done = ? WHERE path = ?",
                                (bytes_kept(dest / (row.path + PART_SUFFIX), row.size), row.path))


def placed_elsewhere(db: sqlite3.Connection, path: str, record_id: str, key: str) -> FileRow | None:
    """The finished row of the same record's file at another path than ``path`` (an earlier layout's)."""
    row = db.execute(f"SELECT {ROW_COLUMNS} FROM files WHERE record_id = ? AND key = ? AND path != ? "
                     "AND +state = 'done' LIMIT 1", (record_id, key, path)).fetchone()
    return FileRow(*row) if row else None


def layout_placed(db: sqlite3.Connection) -> tuple[str | None, int]:
    """The layout the journal last placed files by (None: unknown, from before layouts were kept) and how
    many finished files it holds."""
    if "layout" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:  # before layouts were kept
        return None, 0
    row = db.execute("SELECT layout FROM runs WHERE layout IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    done = db.execute("SELECT count(*) FROM files WHERE state = 'done'").fetchone()[0]
    return (row[0] if row else None), int(done)


class JournalView:
    """A journal opened read-only (a dry run's): what it finished, never a write; no journal, no answers."""

    def __init__(self, path: Path) -> None:
        self.db: sqlite3.Connection | None = None
        if path.exists():
            try:
                self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                          check_same_thread=False)
            except sqlite3.Error as exc:
                raise journal_error(exc, path) from exc
        self.path = path

    def placed_elsewhere(self, path: str, record_id: str, key: str) -> FileRow | None:
        return self._ask(placed_elsewhere, None, path, record_id, key)

    def layout_placed(self) -> tuple[str | None, int]:
        """See :func:`layout_placed` (no journal: none, and no finished file)."""
        nothing: tuple[str | None, int] = (None, 0)
        return self._ask(layout_placed, nothing)

    def _ask(self, question: Callable[..., T], none: T, *args: Any) -> T:
        if self.db is None:
            return none
        try:
            return question(self.db, *args)
        except sqlite3.Error as exc:
            raise journal_error(exc, self.path) from exc

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


def bytes_kept(part: Path, size: int | None) -> int:
    """What a part file holds for the next run: a segmented part is made at its full size, so its
    sidecar's pieces tell how much of it is done; a plain part holds what its length says."""
    if not part.exists():
        return 0
    pieces = sidecar.read(sidecar_of(part), size) if size is not None else None
    if pieces is not None:
        return sum(done for _, _, done in pieces)
    return part.stat().st_size


class JournalRecorder:
    """Receives the run's events and sends every file's state changes to the journal writer."""

    def __init__(self, journal: Journal, dest: Path) -> None:
        self.journal, self.dest = journal, dest

    def emit(self, event: Event) -> None:
        if isinstance(event, FileStarted):
            self.journal.send(Started(event.path, event.offset))
        elif isinstance(event, RecordInaccessible):
            self.journal.send(RecordUnavailable(event.record_id, event.reason))
        elif isinstance(event, FileFinished) and not event.journaled:
            if event.outcome == "failed":
                self.journal.send(Failed(event.path, event.reason))
            else:
                self.journal.send(Done(event.path, str(self.dest / event.path), event.source or None))
