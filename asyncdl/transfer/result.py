"""How a file ended, and the words for it."""

from __future__ import annotations

from asyncdl.errors import AsyncdlError
from asyncdl.events import FileFinished
from asyncdl.models import FileEntry
from asyncdl.plan import PlannedFile

TransferResult = FileFinished  # a file's result is the event that reports it


def finished(planned: PlannedFile, outcome: str, reason: str, *, received: int = 0,
             verified: bool = False, source: str = "") -> FileFinished:
    """The result of a planned file: ok, skipped, linked (from ``source``) or failed, with the reason."""
    return FileFinished(planned.path, outcome, reason, planned.entry.size, planned.record.id, planned.entry.key,
                        received, verified, source)


def unverified_reason(entry: FileEntry) -> str:
    """What was checked of a file whose record gives no md5."""
    stated = f"a {entry.checksum.algorithm} checksum" if entry.checksum else "no checksum"
    if entry.size is None:
        return f"not verified: the record gives no size and {stated}"
    return f"size checked; the record gives {stated}, not an md5"


def failure_reason(error: AsyncdlError, planned: PlannedFile) -> str:
    """A short reason for the summary: restricted, embargoed, deleted, blocked, not found..."""
    return error.reason(access="embargoed" if planned.record.access_right == "embargoed" else "restricted")
