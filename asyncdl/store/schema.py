"""The journal's schema, declared once, with its version and the migrations that bring older journals to it.

``PRAGMA user_version`` holds the schema version. Release 0.1.0 wrote journals without one (version 0); their
tables are version 1's, so migrating them only records the version. Version 2 adds each file's stored-file id
and, for a file linked from another copy in DEST, the path of that copy (``source``). Version 3 adds
``checksum``: the checksum the record states for the file, as ``<kind>:<value>`` (md5, sha256, multipart...;
see :mod:`asyncdl.digests`), which the file was verified against when asyncdl can compute it; an older
journal's rows get ``md5:<their md5>``. Version 4 adds ``records.unavailable``: why the record's files could
not be had in the last run (restricted, embargoed), NULL when they could. A journal of a newer version than
this release knows is refused with a clear error, never guessed at.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from asyncdl.errors import JournalError

SCHEMA_VERSION = 5

# The files table: one row per planned path. Also the shape of the merged view over every journal.
VERSION_1_COLUMNS = (("path", "TEXT PRIMARY KEY"), ("record_id", "TEXT"), ("key", "TEXT"), ("size", "INTEGER"),
                     ("md5", "TEXT"), ("url", "TEXT"), ("state", "TEXT NOT NULL"),
                     ("bytes_done", "INTEGER DEFAULT 0"), ("attempts", "INTEGER DEFAULT 0"), ("last_error", "TEXT"),
                     ("mtime", "REAL"), ("updated", "REAL"), ("run_id", "INTEGER"))
ADDED_IN_2 = (("file_id", "TEXT"), ("source", "TEXT"))
ADDED_IN_3 = (("checksum", "TEXT"),)
FILE_COLUMNS = VERSION_1_COLUMNS + ADDED_IN_2 + ADDED_IN_3
ROW_COLUMNS = ", ".join([name for name, _ in FILE_COLUMNS[:11]] + ["checksum"])  # what a FileRow holds, in order


def files_table(name: str = "files", *, extra: str = "",
                columns: tuple[tuple[str, str], ...] = FILE_COLUMNS) -> str:
    """``CREATE TABLE`` for the files table (``extra``: more column definitions, for the merged view)."""
    columns_sql = ", ".join(f"{column} {kind}" for column, kind in columns)
    return (f"CREATE TABLE IF NOT EXISTS {name} ({columns_sql}{', ' + extra if extra else ''});\n"
            f"CREATE INDEX IF NOT EXISTS {name}_state ON {name}(state);\n")


VERSION_1 = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, command TEXT, selection TEXT, started REAL, ended REAL, outcome TEXT,
    files_ok INTEGER DEFAULT 0, files_failed INTEGER DEFAULT 0, bytes INTEGER DEFAULT 0, seconds REAL
);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, conceptrecid TEXT, title TEXT, updated TEXT, metadata TEXT, seen REAL
);
CREATE TABLE IF NOT EXISTS selections (
    key TEXT PRIMARY KEY, description TEXT, crawled REAL, record_ids TEXT
);
""" + files_table(columns=VERSION_1_COLUMNS)

VERSION_2 = "".join(f"ALTER TABLE files ADD COLUMN {column} {kind};\n" for column, kind in ADDED_IN_2) + """
CREATE INDEX IF NOT EXISTS files_copy ON files(md5, size);
CREATE INDEX IF NOT EXISTS files_file_id ON files(file_id);
"""

VERSION_3 = "".join(f"ALTER TABLE files ADD COLUMN {column} {kind};\n" for column, kind in ADDED_IN_3) + """
UPDATE files SET checksum = 'md5:' || md5 WHERE md5 IS NOT NULL;
"""

VERSION_4 = "ALTER TABLE records ADD COLUMN unavailable TEXT;\n"

VERSION_5 = """
ALTER TABLE runs ADD COLUMN layout TEXT;
CREATE INDEX IF NOT EXISTS files_record_key ON files(record_id, key);
"""

# version -> the script that brings a journal of the version before it to this one (run once, in order)
MIGRATIONS: dict[int, str] = {1: VERSION_1, 2: VERSION_2, 3: VERSION_3, 4: VERSION_4, 5: VERSION_5}


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the journal at ``path`` to SCHEMA_VERSION (a new one is created at it), each step in a transaction."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JournalError(f"the journal {path} was written by a newer asyncdl (schema {version}; this one knows "
                           f"up to {SCHEMA_VERSION}): upgrade asyncdl to resume this mirror")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] >= step:  # another process took this step
                db.execute("COMMIT")
                continue
            for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {step}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
