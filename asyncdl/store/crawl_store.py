"""One crawl of a selection, shared by the shards of a destination: ``DEST/.asyncdl/crawl-KEY.sqlite``.

The shard holding the crawl lease writes each search page it fetched (its JSON, by URL) and each record it
found, in the order found; the other shards read the records as they appear. A shard that takes the lease
over after the crawler died replays the stored pages instead of asking for them again. Like the shard
journals it keeps SQLite's rollback journal (no WAL), so it works on network file systems, with one writer
at a time (the lease holder). Every method blocks (call it from a worker thread).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from asyncdl.errors import JournalError
from asyncdl.events import CrawlShort
from asyncdl.models import Record
from asyncdl.store.records import record_from_json, record_to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value REAL);
CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
                                    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shortfalls (data TEXT NOT NULL);
"""


class CrawlStore:
    """The shared crawl of one selection (see the module docstring); ``generation`` counts fresh starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"the shared crawl {path} cannot be read ({exc}); move it away to crawl "
                               "afresh") from exc

    def close(self) -> None:
        self._db.close()

    # -- state ------------------------------------------------------------------------------------------------
    def _get(self, key: str) -> float | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def state(self) -> tuple[int, float | None, float | None]:
        """(generation, when it started, when it finished or None)."""
        with self._lock:
            return int(self._get("generation") or 0), self._get("started"), self._get("finished")

    def begin(self) -> int:
        """Start a new generation: what an earlier crawl stored is forgotten. Returns the new generation."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            generation = int(self._get("generation") or 0) + 1
            self._db.execute("DELETE FROM pages")
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM shortfalls")
            self._db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                                 [("generation", generation), ("started", time.time()), ("finished", None)])
            return generation

    def finish(self, shortfalls: list[CrawlShort] | None = None) -> None:
        """The crawl is complete: its pages are no longer needed (only a takeover replays them); the parts
        where the server's pages fell short of its totals are kept for the shards that read the crawl."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM pages")
            self._db.executemany("INSERT INTO shortfalls VALUES (?)",
                                 [(json.dumps(dataclasses.asdict(short)),) for short in shortfalls or ()])
            self._db.execute("INSERT OR REPLACE INTO state VALUES ('finished', ?)", (time.time(),))

    # -- pages ------------------------------------------------------------------------------------------------
    def page(self, url: str) -> Any | None:
        """The JSON a search page gave, if this generation fetched it."""
        with self._lock:
            row = self._db.execute("SELECT body FROM pages WHERE url = ?", (url,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_page(self, url: str, data: Any) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?)", (url, json.dumps(data)))

    # -- records ----------------------------------------------------------------------------------------------
    def add_records(self, records: list[Record]) -> None:
        """Append records found (one transaction; a record stored already is kept as it was)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO records (id, data) VALUES (?, ?)",
                                 [(r.id, json.dumps(record_to_json(r))) for r in records])

    def shortfalls(self) -> list[CrawlShort]:
        """The shortfalls the finished crawl met."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM shortfalls").fetchall()
        return [CrawlShort(**json.loads(data)) for (data,) in rows]

    def records_after(self, seq: int, limit: int = 500) -> list[tuple[int, Record]]:
        """The next records found after position ``seq``, in the order found."""
        with self._lock:
            rows = self._db.execute("SELECT seq, data FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (seq, limit)).fetchall()
        return [(int(number), record_from_json(json.loads(data))) for number, data in rows]
