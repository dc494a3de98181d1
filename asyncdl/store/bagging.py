"""What ``asyncdl bag`` reads from the journals of DEST, and the one change it makes to them: every file's
path moved under the bag's payload folder (``data/``), once, with a run row that says so and carries the
layout the files are placed by from then on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from asyncdl.store.journal import connect, layout_placed, writing
from asyncdl.store.merged import merged


@dataclass(frozen=True, slots=True)
class BagFile:
    """A finished file as the journals record it (each path once)."""

    path: str
    record_id: str
    size: int | None
    md5: str | None
    checksum: str | None
    key: str
    url: str
    mtime: float | None
    linked: bool


@dataclass
class Mirrored:
    """The finished files of every journal in DEST, the records they belong to, and the runs that made them."""

    files: list[BagFile] = field(default_factory=list)
    records: dict[str, dict[str, object]] = field(default_factory=dict)  # id -> what the journal keeps of it
    selections: list[str] = field(default_factory=list)  # each journal's last mirror run, in words
    first: float | None = None  # the first run's start
    last: float | None = None  # the last run's end


def read_mirror(paths: list[Path]) -> Mirrored:
    """The finished files over every journal of ``paths`` (sorted by path) and their records (blocking)."""
    found = Mirrored()
    with merged(paths) as db:
        found.files = [BagFile(path, record_id, size, md5, checksum, key, url, mtime, bool(linked))
                       for path, record_id, size, md5, checksum, key, url, mtime, linked in db.execute(
                           "SELECT path, record_id, size, md5, checksum, key, url, mtime, source IS NOT NULL "
                           "FROM files WHERE state = 'done' ORDER BY path")]
    for path in paths:
        db = connect(path)
        try:
            for record_id, data in db.execute(
                    "SELECT id, json_remove(metadata, '$.raw', '$.files') FROM records WHERE id IN "
                    "(SELECT record_id FROM files WHERE state = 'done')"):
                found.records[record_id] = json.loads(data) if data else {}
            last = db.execute("SELECT command FROM runs WHERE command LIKE 'mirror %' ORDER BY id DESC "
                              "LIMIT 1").fetchone()
            if last is not None and last[0] not in found.selections:
                found.selections.append(last[0])
            first, end = db.execute("SELECT MIN(started), MAX(ended) FROM runs WHERE command LIKE 'mirror %'"
                                    ).fetchone()
        finally:
            db.close()
        if first is not None:
            found.first = first if found.first is None else min(found.first, first)
        if end is not None:
            found.last = end if found.last is None else max(found.last, end)
    return found


def move_under(paths: list[Path], folder: str, token: str, command: str) -> None:
    """Prefix every file's path (and a linked file's source) in each journal with ``folder/``, in one
    transaction per journal, with a run row (selection ``token``) whose layout is the journal's under
    ``folder``; a journal that has the row already (an interrupted bag run again) is left as it is."""
    for path in paths:
        with writing(path):
            db = connect(path)
            try:
                if db.execute("SELECT 1 FROM runs WHERE selection = ?", (token,)).fetchone() is not None:
                    continue
                layout, _ = layout_placed(db)
                now = time.time()
                db.execute("BEGIN IMMEDIATE")
                # in two steps: 'data/x' may already be a path beside 'x' (the primary key is checked row by row);
                # no path starts with '/', so nothing collides on the way
                db.execute("UPDATE files SET path = '/' || path, source = '/' || source")
                db.execute("UPDATE files SET path = ? || path, source = ? || source", (folder, folder))
                db.execute("INSERT INTO runs (command, selection, started, ended, outcome, files_ok, files_failed, "
                           "bytes, seconds, layout) VALUES (?, ?, ?, ?, 'complete', 0, 0, 0, 0, ?)",
                           (command, token, now, now, None if layout is None else f"{folder}/{layout}"))
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                db.close()
