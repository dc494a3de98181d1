"""How a file ended, and the words for it."""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.errors import AsyncdlError
from asyncdl.models import FileEntry
from asyncdl.plan import PlannedFile


@dataclass(frozen=True, slots=True)
class TransferResult:
    """How one file ended: ``outcome`` ok, skipped or failed; ``verified`` when its md5 was checked."""

    path: str
    record_id: str
    key: str
    outcome: str
    reason: str = ""
    size: int | None = None
    bytes_received: int = 0
    verified: bool = False

    @classmethod
    def of(cls, planned: PlannedFile, outcome: str, reason: str, *, received: int = 0,
           verified: bool = False) -> TransferResult:
        """The result for a planned file."""
        return cls(planned.path, planned.record.id, planned.entry.key, outcome, reason, planned.entry.size,
                   received, verified)


def unverified_reason(entry: FileEntry) -> str:
    """What was checked of a file whose record gives no md5."""
    stated = f"a {entry.checksum.algorithm} checksum" if entry.checksum else "no checksum"
    if entry.size is None:
        return f"not verified: the record gives no size and {stated}"
    return f"size checked; the record gives {stated}, not an md5"


def failure_reason(error: AsyncdlError, planned: PlannedFile) -> str:
    """A short reason for the summary: restricted, embargoed, deleted, blocked, not found..."""
    return error.reason(access="embargoed" if planned.record.access_right == "embargoed" else "restricted")
