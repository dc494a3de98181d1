"""Range requests: what to do with an answer (pure), and which URL of a host honours Range (learnt).

InvenioRDM serves a file at two URLs: the UI download URL (``/records/ID/files/KEY?download=1``), where
Zenodo honours Range, and the API content URL, where it may not. A resume asks the download URL first;
a 200 (Range ignored) or a 404 there (no such route on this instance) moves the host on to the API URL;
when both ignore Range, a resume starts the file again from byte 0.
"""

from __future__ import annotations

import re

from asyncdl import invenio
from asyncdl.errors import NotFoundError, TransportError
from asyncdl.plan import PlannedFile
from asyncdl.redact import redact

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def range_answer(offset: int, status: int, encoding: str, kind: str | None) -> str:
    """What to do with a 2xx answer to a request for bytes ``offset``- from a URL of ``kind`` (None: the
    last URL there is): "append" it at ``offset`` (its Content-Range is checked next), try the "next-url",
    "restart-with-body" (a 200 is the whole file: truncate and take it), or "restart" (truncate, ask again
    from byte 0). Ranges of an encoded (e.g. gzip) body are not ranges of the file: never appended."""
    if not offset:
        return "append"
    encoded = encoding.strip().lower() not in ("", "identity")
    if (status == 206 and not encoded) or status not in (200, 206):
        return "append"  # a 206 of the file's own bytes; any other status fails the Content-Range check
    if kind is not None:
        return "next-url"
    return "restart-with-body" if status == 200 else "restart"


def check_content_range(header: str, offset: int, size: int | None, url: str) -> None:
    """A 206 must start where we asked and describe the whole file we expect."""
    found = _CONTENT_RANGE.match(header.strip())
    if not found or int(found.group(1)) != offset or (size is not None and found.group(3) != str(size)):
        raise TransportError(f"unexpected Content-Range {header!r} for bytes={offset}- at {redact(url)}")


class RangeRoutes:
    """Per host, the URL kinds still believed to honour Range, and whether one has been seen to."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._kinds: dict[str, list[str]] = {}  # host -> URL kinds left, best first
        self._honoured: set[str] = set()  # hosts whose first kind answered a Range with a good 206

    def host(self, planned: PlannedFile) -> str:
        return invenio.base_of(planned.record.api_url) or self.base_url

    def url(self, planned: PlannedFile) -> tuple[str, str | None]:
        """The URL for a Range request and its kind ("ui" download URL first, then "api"); kind None
        when the host ignored Range on both (then the plain URL, whose 200 is taken from byte 0)."""
        record, entry = planned.record, planned.entry
        host = self.host(planned)
        kinds = self._kinds.setdefault(host, ["ui", "api"])
        if not kinds:
            return entry.url, None
        if kinds[0] == "ui":
            return invenio.download_url(base_url=host, record_id=record.id, key=entry.key), "ui"
        return entry.url, "api"

    def ignored(self, planned: PlannedFile, kind: str) -> None:
        """This host's ``kind`` URL does not honour Range."""
        kinds = self._kinds.setdefault(self.host(planned), ["ui", "api"])
        if kind in kinds:
            kinds.remove(kind)

    def honoured(self, planned: PlannedFile) -> None:
        """A Range answer of this host was a good 206."""
        self._honoured.add(self.host(planned))

    def known_to_work(self, planned: PlannedFile) -> bool:
        return self.host(planned) in self._honoured

    def missing(self, planned: PlannedFile, kind: str | None, error: NotFoundError) -> None:
        """A 404 from the UI download URL: the instance has no such route, so the API URL is tried; any
        other 404 is the file's own."""
        if kind != "ui":
            raise error
        self.ignored(planned, "ui")
