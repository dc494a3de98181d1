"""When a record's files come as one files-archive request (``--archive never|auto|always``).

Under a request budget (zenodo.org: 133 requests a minute for guests, every file counted) one archive
request for a record of ten small files is nine requests saved. ``auto`` takes the archive only when it
saves requests and wastes little, judged by what is still to fetch, not by the record:

- at least :data:`AUTO_MIN_FILES` files still to fetch;
- the record's total within the host's archive cap (the archive always carries every file);
- the wanted bytes at least half of the archive's (filters can leave most of a record out);
- no file of the record at the segment threshold (a large file is better fetched in resumable segments).

``always`` takes it whenever two or more files are still to fetch and the record is within the cap.
A host's cap starts at Zenodo's 300,000,000 bytes and is learned from the server: a 400 over the cap
lowers it (to the figure the message gives, else below that record's total), a 404 or 405 (no archive
endpoint) makes it 0; the same host is not asked again for a record over what it refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from asyncdl import invenio
from asyncdl.errors import RemoteError
from asyncdl.models import Record
from asyncdl.options import check_archive
from asyncdl.plan import PlannedFile

ZENODO_ARCHIVE_CAP = 300_000_000  # bytes: Zenodo answers 400 for records over this total (2026-05)
AUTO_MIN_FILES = 3
NO_ARCHIVE_STATUSES = (404, 405, 501)  # the host has no files-archive at all
_CAP_IN_MESSAGE = re.compile(r"up to (\d+) bytes")


def record_total(record: Record) -> int | None:
    """The record's bytes, as its archive would carry them (None when a size is unknown)."""
    sizes = [f.size for f in record.files]
    return None if any(size is None for size in sizes) else sum(s for s in sizes if s is not None)


class ArchiveChoice:
    """The ``--archive`` rules and what each host's files-archive was found to serve."""

    def __init__(self, mode: str, *, base_url: str, segment_threshold: int) -> None:
        self.mode = check_archive(mode)
        self.base_url = base_url
        self.segment_threshold = segment_threshold
        self._caps: dict[str, int] = {}  # host -> the largest record total its archive serves

    def url(self, record: Record) -> str:
        host = invenio.base_of(record.api_url) or self.base_url
        return f"{invenio.record_url(host, record.id)}/files-archive"

    def cap(self, record: Record) -> int:
        return self._caps.get(self._host(record), ZENODO_ARCHIVE_CAP)

    def worth_it(self, record: Record, wanted: Sequence[PlannedFile]) -> bool:
        """Whether ``wanted`` (the record's files still to fetch) should come through the archive."""
        if self.mode == "never" or len(wanted) < 2:
            return False
        total = record_total(record)
        if total is None or total > self.cap(record):
            return False
        if self.mode == "always":
            return True
        wanted_bytes = sum(p.entry.size or 0 for p in wanted)
        largest = max((f.size or 0 for f in record.files), default=0)
        return (len(wanted) >= AUTO_MIN_FILES and 2 * wanted_bytes >= total
                and largest < self.segment_threshold)

    def refused(self, record: Record, error: RemoteError) -> bool:
        """Learn from the archive's refusal; True when it was about the archive (fetch the files instead)."""
        host = self._host(record)
        if error.status in NO_ARCHIVE_STATUSES:
            self._caps[host] = 0
            return True
        if error.status != 400:
            return False
        found = _CAP_IN_MESSAGE.search(str(error))
        total = record_total(record) or 1
        learned = int(found.group(1)) if found and int(found.group(1)) < total else total - 1
        self._caps[host] = min(self.cap(record), learned)
        return True

    def _host(self, record: Record) -> str:
        return urlsplit(invenio.base_of(record.api_url) or self.base_url).netloc
