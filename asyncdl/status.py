"""``asyncdl status`` and ``asyncdl verify``: what the journals in DEST say, and whether the disk agrees."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from asyncdl import invenio
from asyncdl.config import Config
from asyncdl.errors import UsageError
from asyncdl.events import NullSink, ProgressSink
from asyncdl.fsutil import md5_of
from asyncdl.http import Client
from asyncdl.journal import STATE_DIR, FileRow, Journal, connect
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.transfer import Transfer

VERIFY_FAILURE = "md5 mismatch or missing at verify"


@dataclass
class StateCount:
    files: int = 0
    bytes: int = 0


@dataclass
class Status:
    """Counts and bytes by state, failures with reasons, the last runs and an ETA, over every journal."""

    states: dict[str, StateCount] = field(default_factory=dict)
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    runs: list[dict[str, object]] = field(default_factory=list)
    bytes_left: int = 0
    speed: float | None = None

    @property
    def eta(self) -> float | None:
        """Seconds to fetch what is left at the speed of the last run that moved bytes."""
        return self.bytes_left / self.speed if self.speed and self.bytes_left else None


def journals(dest: Path) -> list[Path]:
    """Every journal in DEST (one per shard when a mirror is split across machines)."""
    found = sorted((dest / STATE_DIR).glob("journal*.sqlite"))
    if not found:
        raise UsageError(f"{dest} has no asyncdl journal (expected {dest / STATE_DIR}/journal.sqlite)")
    return found


def read_status(dest: Path) -> Status:
    status = Status()
    for path in journals(dest):
        db = connect(path)
        try:
            for state, count, size, done in db.execute(
                    "SELECT state, COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(bytes_done), 0) FROM files "
                    "GROUP BY state"):
                entry = status.states.setdefault(state, StateCount())
                entry.files += count
                entry.bytes += size
                if state != "done":
                    status.bytes_left += size - (done if state == "partial" else 0)
            status.failures += list(db.execute(
                "SELECT path, COALESCE(last_error, ''), attempts FROM files WHERE state = 'failed' ORDER BY path"))
            for row in db.execute("SELECT id, command, started, ended, outcome, files_ok, files_failed, bytes, "
                                  "seconds FROM runs ORDER BY started DESC LIMIT 5"):
                names = ("id", "command", "started", "ended", "outcome", "ok", "failed", "bytes", "seconds")
                status.runs.append(dict(zip(names, row, strict=True)))
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot read the journal {path}: {exc}") from exc
        finally:
            db.close()
    status.runs.sort(key=lambda r: float(str(r["started"] or 0)), reverse=True)
    moving = [r for r in status.runs if r["bytes"] and r["seconds"]]
    if moving:
        status.speed = float(str(moving[0]["bytes"])) / float(str(moving[0]["seconds"]))
    return status


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    still_bad: list[tuple[str, str]] = field(default_factory=list)


async def verify(dest: Path, *, config: Config, repair: bool = False, sink: ProgressSink | None = None,
                 on_file: Callable[[str, int], None] | None = None) -> VerifyReport:
    """Re-hash every finished file against the journal's md5; with ``repair``, download the bad ones again."""
    report = VerifyReport()
    bad: list[tuple[Journal, FileRow]] = []
    for path in journals(dest):
        journal = Journal(path)
        try:
            if repair:  # files an earlier verify found bad are repaired too
                for row in journal.files("failed"):
                    if row.last_error == VERIFY_FAILURE:
                        report.mismatched.append(row.path)
                        bad.append((journal, row))
            for row in list(journal.files("done")):
                report.checked += 1
                target = dest / row.path
                if not target.is_file():
                    report.missing.append(row.path)
                    bad.append((journal, row))
                elif row.md5 and (await anyio.to_thread.run_sync(md5_of, target))[0] != row.md5:
                    report.mismatched.append(row.path)
                    bad.append((journal, row))
                else:
                    report.ok += 1
                if on_file is not None:
                    on_file(row.path, row.size or 0)
            if repair:
                await _repair(dest, config, [row for j, row in bad if j is journal], journal, report,
                              sink or NullSink())
            else:
                for _, row in bad:
                    journal.mark_failed(row.path, VERIFY_FAILURE)
        finally:
            journal.close()
    return report


async def _repair(dest: Path, config: Config, rows: list[FileRow], journal: Journal, report: VerifyReport,
                  sink: ProgressSink) -> None:
    """Fetch ``rows`` again, each from the instance its mirror ran against (the token goes there only)."""
    by_base: dict[str, list[tuple[FileRow, str]]] = {}
    for row in rows:
        api_url = journal.record_api_url(row.record_id) or invenio.record_url(config.base_url, row.record_id)
        by_base.setdefault(invenio.base_of(api_url), []).append((row, api_url))
    for base, items in by_base.items():
        await _repair_from(dest, dataclasses.replace(config, base_url=base), items, journal, report, sink)


async def _repair_from(dest: Path, config: Config, items: list[tuple[FileRow, str]], journal: Journal,
                       report: VerifyReport, sink: ProgressSink) -> None:
    async with Client(config) as client:
        transfer = Transfer(client, config, dest, sink=sink)
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
                journal.mark_failed(row.path, result.reason)
