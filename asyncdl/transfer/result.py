"""How a file ended, and the words for it."""

from __future__ import annotations

from asyncdl.digests import Check
from asyncdl.errors import AsyncdlError
from asyncdl.events import FileFinished
from asyncdl.models import FileEntry
from asyncdl.plan import PlannedFile

TransferResult = FileFinished  # a file's result is the event that reports it


def finished(planned: PlannedFile, outcome: str, reason: str, *, received: int = 0,
             verified: bool = False, source: str = "", journaled: bool = False) -> FileFinished:
    """The result of a planned file: ok, skipped, linked (from ``source``) or failed, with the reason
    (``journaled``: the journal has it already)."""
    return FileFinished(planned.path, outcome, reason, planned.entry.size, planned.record.id, planned.entry.key,
                        received, verified, source, journaled)


def what_was_checked(entry: FileEntry) -> str:
    """What was checked of a file downloaded whole: the checksum verified (an md5 goes without saying), or
    only its size, and why."""
    check = Check(entry.checksum)
    return check.describe() if check.verifiable else check.unverified(entry.size)


def adopted(planned: PlannedFile) -> FileFinished:
    """A file found at its final name with the record's checksum (see ``Transfer.adopt``)."""
    return finished(planned, "skipped", f"already present, {Check(planned.entry.checksum).describe()}", verified=True)


def failure_reason(error: AsyncdlError, planned: PlannedFile) -> str:
    """A short reason for the summary: restricted, embargoed, deleted, blocked, not found..."""
    return error.reason(access="embargoed" if planned.record.access_right == "embargoed" else "restricted")


def unavailable_reason(status: str | None) -> str:
    """Why a file the server lists is not downloaded: its ``status`` is not ``completed``."""
    return f'skipped: the server says the file is "{status}", not completed'
