"""What earlier runs left of the planned files of the records that arrived together, looked up at once in a
worker thread: done as the record has it now, placed by another layout (then renamed here), or to fetch (with a
finished copy of the same stored file elsewhere in DEST, when a journal has one).

The disk was compared with every finished row at the start of the run (``Journal.reconcile``: a file
deleted, resized or touched since is pending again), so no file is hashed or stat()ed here; the records
planned together cost one query, plus one per record with files still to fetch and one or two per such file
(its copies).
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.errors import UnsafePathError
from asyncdl.fsutil import SafeTargets, move_within
from asyncdl.plan import PlannedFile
from asyncdl.store.journal import FileRow, Journal
from asyncdl.store.merged import FinishedCopies


@dataclass(frozen=True, slots=True)
class Prior:
    """One planned file's past: ``done`` before; renamed here ``moved_from`` another path; else to fetch,
    ``copy`` a finished copy (path, mtime) of the same stored file if one is known; ``problem``: why a move
    was not made."""

    done: bool = False
    moved_from: str | None = None
    copy: tuple[str, float] | None = None
    problem: str | None = None


def stated_checksum(item: PlannedFile) -> str | None:
    return str(item.entry.checksum) if item.entry.checksum is not None else None


def holds(row: FileRow | None, item: PlannedFile) -> bool:
    """The finished row holds the record's file as it is now (size and stated checksum)."""
    return row is not None and row.size == item.entry.size and row.checksum == stated_checksum(item)


def look_back(journal: Journal, copies: FinishedCopies, targets: SafeTargets, items: list[PlannedFile],
              ) -> dict[str, Prior]:
    """The past of each of some records' planned files, by path (blocking: call it from a worker thread).
    A file an earlier run finished at another path (another layout: the run was allowed to go on, so the
    layout is the same or ``--relayout`` was given) is renamed to its planned path here."""
    done = journal.finished([item.path for item in items])
    elsewhere: dict[str, dict[str, FileRow]] = {}  # a record's finished rows by key, asked for when needed
    found: dict[str, Prior] = {}
    for item in items:
        if holds(done.get(item.path), item):
            found[item.path] = Prior(done=True)
            continue
        if item.record.id not in elsewhere:
            elsewhere[item.record.id] = journal.finished_of_record(item.record.id)
        row = elsewhere[item.record.id].get(item.entry.key)
        problem = None
        if row is not None and row.path != item.path and holds(row, item):
            try:
                if move_within(targets, row.path, item.path):
                    found[item.path] = Prior(moved_from=row.path)
                    continue
            except UnsafePathError as exc:
                problem = f"{row.path} not moved to {item.path}: {exc}"
        entry = item.entry
        found[item.path] = Prior(copy=copies.find(item.path, entry.md5, entry.size, entry.file_id), problem=problem)
    return found
