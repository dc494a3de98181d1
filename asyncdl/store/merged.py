"""Every journal in a destination read as one: what ``status``, ``verify``, the manifest and orphan removal see.

Each shard keeps its own journal (``journal-2-of-8.sqlite``; ``journal.sqlite`` for a whole run). They are
merged into a private temporary database, one journal at a time, so any number of shards and files fit.
A path that several journals know (a destination sharded twice, or mirrored whole and in shards) counts
once, by its most recently updated row.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asyncdl.errors import JournalError, UsageError
from asyncdl.store.journal import FileRow, Journal, connect, copy_in, writing
from asyncdl.store.lock import serialized
from asyncdl.store.names import MANIFEST, MANIFEST_LOCK, PART_SUFFIX, STATE_DIR, sidecar_of
from asyncdl.store.schema import FILE_COLUMNS, ROW_COLUMNS, files_table

_NAMES = [name for name, _ in FILE_COLUMNS]
_SELECTED = ", ".join("COALESCE(updated, 0)" if name == "updated" else name for name in _NAMES)
_UPDATED = ", ".join(f"{name} = excluded.{name}" for name in _NAMES[1:])
MERGED = files_table(extra="journal INTEGER")
UPSERT = f"""
INSERT INTO files ({", ".join(_NAMES)}, journal) SELECT {_SELECTED}, ? FROM shard.files WHERE true
ON CONFLICT(path) DO UPDATE SET {_UPDATED}, journal = excluded.journal WHERE excluded.updated > files.updated
"""


def journal_paths(dest: Path) -> list[Path]:
    """Every journal in DEST, sorted by name; a UsageError when there is none."""
    found = sorted((dest / STATE_DIR).glob("journal*.sqlite"))
    if not found:
        raise UsageError(f"{dest} has no asyncdl journal (expected {dest / STATE_DIR}/journal.sqlite)")
    return found


class FinishedCopies:
    """Finished files of every journal of DEST by stored file: the run's own journal first, then the others
    (other shards', a whole run's) read as they are now."""

    def __init__(self, journal: Journal, dest: Path) -> None:
        self._others: list[sqlite3.Connection] = []
        self.unreadable: list[str] = []  # other journals that could not be read (their copies are not used)
        for path in journal_paths(dest):  # the run's own journal exists: never empty
            if path != journal.path:
                try:
                    self._others.append(connect(path))
                except JournalError as exc:
                    self.unreadable.append(str(exc))
        self._journal = journal

    def find(self, path: str, md5: str | None, size: int | None, file_id: str | None) -> tuple[str, float] | None:
        """(path, mtime) of a finished copy of the stored file planned at ``path``, if a journal has one
        (a journal another run damages meanwhile is left out). Blocking: from one worker thread at a time."""
        found = self._journal.copy_of(path, md5, size, file_id)
        for db in self._others:
            if found is not None:
                return found
            try:
                found = copy_in(db, path, md5, size, file_id)
            except sqlite3.DatabaseError:
                continue
        return found

    def close(self) -> None:
        for db in self._others:
            db.close()


@contextmanager
def merged(paths: list[Path]) -> Iterator[sqlite3.Connection]:
    """A temporary database whose table ``files`` has one row per path over all ``paths`` (blocking); its
    column ``journal`` is the index in ``paths`` of the journal the row came from."""
    db = sqlite3.connect("", timeout=30, isolation_level=None)  # "": a private database on disk, removed at close
    try:
        try:
            db.executescript(MERGED)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot merge the journals of {paths[0].parent}: {exc}") from exc
        for number, path in enumerate(paths):
            connect(path).close()  # a journal created a moment ago gets its tables first
            _merge_one(db, path, number)
        yield db
    finally:
        db.close()


def _merge_one(db: sqlite3.Connection, path: Path, number: int) -> None:
    """Upsert the rows of one journal into the merged database."""
    try:
        db.execute("ATTACH DATABASE ? AS shard", (str(path),))
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from exc
    try:
        db.execute("BEGIN")
        db.execute(UPSERT, (number,))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise JournalError(f"cannot read the journal {path}: {exc}") from exc
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.execute("DETACH DATABASE shard")


@contextmanager
def finished_files(paths: list[Path]) -> Iterator[tuple[int, Iterator[tuple[FileRow, int]]]]:
    """Over every journal: the bytes of the done files, and every done or failed file (each path once, by
    path) with the index in ``paths`` of the journal it came from (blocking)."""
    with merged(paths) as db:
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM files WHERE state = 'done'").fetchone()[0]
        query = f"SELECT {ROW_COLUMNS}, journal FROM files WHERE state IN ('done', 'failed') ORDER BY path"
        yield total, ((FileRow(*columns), number) for *columns, number in db.execute(query))


def close_out(dest: Path, name: str = "manifest", *, tidy_since: float | None = None) -> list[str]:
    """A run's end over one merge of every journal, under the manifest lock (blocking): with ``tidy_since``,
    remove the orphan part files (see :func:`remove_orphans`); then rewrite DEST/manifest.csv (record, key,
    path, size, md5, state of every file any journal knows). Returns what was tidied, for the log.

    ``name`` names the temporary file, so shards finishing at once do not write the same one; the lock
    makes them write one after the other, so the last one written has read every journal's last state."""
    target = dest / MANIFEST
    temporary = dest / STATE_DIR / f"{name}.csv.tmp"
    with writing(target), serialized(dest / STATE_DIR / MANIFEST_LOCK):
        with merged(journal_paths(dest)) as db:
            changes = [] if tidy_since is None else _remove_orphans(db, dest, tidy_since)
            with temporary.open("w", newline="", encoding="utf-8") as stream:
                writer = csv.writer(stream)
                writer.writerow(["record", "key", "path", "size", "md5", "state"])
                writer.writerows(db.execute("SELECT record_id, key, path, size, md5, state FROM files "
                                            "ORDER BY path"))
        os.replace(temporary, target)
    return changes


def remove_orphans(dest: Path, *, since: float) -> list[str]:
    """Remove part files that no journal in DEST knows (blocking; after a run that planned every file).

    Parts modified at or after ``since`` (the run's start) are left alone: a shard running beside this
    one may have just created one and not yet recorded it.
    """
    with merged(journal_paths(dest)) as db:
        return _remove_orphans(db, dest, since)


def _remove_orphans(db: sqlite3.Connection, dest: Path, since: float) -> list[str]:
    """:func:`remove_orphans` over journals already merged into ``db``."""
    changes = []
    for part in dest.rglob(f"*{PART_SUFFIX}"):
        relative = part.relative_to(dest).as_posix()
        if relative.startswith(STATE_DIR + "/"):
            continue
        path = relative[: -len(PART_SUFFIX)]
        if db.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone() is not None:
            continue
        try:
            if part.stat().st_mtime >= since:
                continue
        except OSError:
            continue
        try:
            part.unlink(missing_ok=True)
            sidecar_of(part).unlink(missing_ok=True)
        except OSError as exc:  # e.g. another user's part on a shared scratch folder
            changes.append(f"{relative}: no journal row knows this partial file; not removed: {exc}")
            continue
        changes.append(f"{relative}: no journal row knows this partial file; removed")
    return changes
