"""``asyncdl verify``: whether the disk agrees with the journals in DEST (``asyncdl status``, what they say,
is :mod:`asyncdl.store.status`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from asyncdl import bag, invenio
from asyncdl.config import Config
from asyncdl.digests import Check, md5_of
from asyncdl.errors import UsageError
from asyncdl.events import NullSink, ProgressSink
from asyncdl.http import Client
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.store.journal import FileRow, Journal
from asyncdl.store.merged import finished_files, journal_paths
from asyncdl.store.names import STATE_DIR
from asyncdl.store.status import ShardState, StateCount, Status, read_status
from asyncdl.transfer import Transfer

VERIFY_FAILURE = "checksum mismatch or missing at verify"
EARLIER_FAILURES = (VERIFY_FAILURE, "md5 mismatch or missing at verify")  # the latter: before checksums of any kind
__all__ = ["ShardState", "StateCount", "Status", "VerifyReport", "read_status", "verify", "verify_bag"]


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    size_only: list[tuple[str, str]] = field(default_factory=list)  # ok by size: no checksum asyncdl can compute
    problems: dict[str, str] = field(default_factory=dict)  # path -> how it differs
    repaired: list[str] = field(default_factory=list)
    still_bad: list[tuple[str, str]] = field(default_factory=list)


async def verify(dest: Path, *, config: Config, repair: bool = False, sink: ProgressSink | None = None,
                 on_file: Callable[[str, int], None] | None = None,
                 on_total: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-hash every finished file against the checksum in the journal (any kind :mod:`asyncdl.digests`
    computes; the size alone for the others); with ``repair``, download the bad ones again.
    ``on_total`` is told the bytes to hash before the first file, ``on_file`` each file as it is checked.

    Every journal in DEST is read (each path once); a bad file is marked failed, or repaired, in the
    journal of the shard it belongs to, so that shard's next run fetches it.
    """
    if bag.is_bag(dest) and not (dest / STATE_DIR).is_dir():  # a bag made --into NEW: no journal, a manifest
        if repair:
            raise UsageError(f"{dest} is a bag without a journal (asyncdl bag --into made it): repair the mirror it "
                             "was made from, then bag it again")
        return await verify_bag(dest, on_file=on_file, on_total=on_total)
    report = VerifyReport()
    paths = journal_paths(dest)
    bad: dict[int, list[FileRow]] = {}
    with finished_files(paths) as (total, found):
        if on_total is not None:
            on_total(total)
        for row, number in found:
            if row.state == "failed":
                if repair and (row.last_error or "").startswith(EARLIER_FAILURES):  # an earlier verify's: too
                    report.checked += 1
                    (report.mismatched if (dest / row.path).is_file() else report.missing).append(row.path)
                    bad.setdefault(number, []).append(row)
                continue
            report.checked += 1
            target = dest / row.path
            if not target.is_file():
                report.missing.append(row.path)
                bad.setdefault(number, []).append(row)
            elif (problem := await anyio.to_thread.run_sync(_problem, row, target)) is not None:
                report.mismatched.append(row.path)
                report.problems[row.path] = problem
                bad.setdefault(number, []).append(row)
            else:
                report.ok += 1
                check = row_check(row)
                if not check.verifiable:
                    report.size_only.append((row.path, check.unverified(row.size)))
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


async def verify_bag(root: Path, *, on_file: Callable[[str, int], None] | None = None,
                     on_total: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-hash every file a bag's manifest-md5.txt lists; a payload file it does not list is a mismatch."""
    report = VerifyReport()
    entries = await anyio.to_thread.run_sync(bag.manifest_entries, root)
    on_disk = set(await anyio.to_thread.run_sync(bag.payload_files, root))
    if on_total is not None:
        on_total(sum((root / path).stat().st_size for path, _ in entries if path in on_disk))
    for path, md5 in entries:
        report.checked += 1
        if path not in on_disk:
            report.missing.append(path)
            continue
        on_disk.discard(path)
        found = await anyio.to_thread.run_sync(md5_of, root / path)
        if found != md5:
            report.mismatched.append(path)
            report.problems[path] = f"md5 {found} differs from the manifest's {md5}"
        else:
            report.ok += 1
        if on_file is not None:
            on_file(path, (root / path).stat().st_size)
    for path in sorted(on_disk):
        report.mismatched.append(path)
        report.problems[path] = f"in {bag.PAYLOAD}/ but not in {bag.MANIFEST_MD5}"
    return report


def row_check(row: FileRow) -> Check:
    """What can be verified of a finished file, from the checksum its journal row keeps."""
    text = row.checksum or (f"md5:{row.md5}" if row.md5 else None)
    try:
        return Check(Checksum.parse(text) if text else None)
    except ValueError:  # a row edited by hand: nothing to check it against
        return Check(None)


def _problem(row: FileRow, target: Path) -> str | None:
    """How the file at ``target`` differs from its row (blocking): its size, then its checksum."""
    size = target.stat().st_size
    if row.size is not None and size != row.size:
        return f"size {size} differs from the record's {row.size}"
    check = row_check(row)
    return check.of_file(target).problem() if check.verifiable else None


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
            entry = FileEntry(key=row.key, size=row.size, url=row.url, checksum=row_check(row).checksum)
            result = await transfer.fetch(PlannedFile(record, entry, row.path))
            if result.outcome in ("ok", "skipped"):
                report.repaired.append(row.path)
                journal.mark_done(row.path, str(dest / row.path))
            else:
                report.still_bad.append((row.path, result.reason))
                journal.mark_failed(row.path, f"{VERIFY_FAILURE}; repair failed: {result.reason}")
