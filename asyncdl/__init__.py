"""asyncdl: mirror files from Zenodo and other InvenioRDM repositories, fast, resumable and verified.

The Python API::

    from asyncdl import Config, RunOptions, Selection, list_records, mirror_sync
    records = list_records(Selection(owner="88403"), Config())
    summary = mirror_sync(Selection(owner="88403"), "iodp", Config(), RunOptions(include=("*.csv",)))
"""

from __future__ import annotations

import anyio

from asyncdl._version import __version__
from asyncdl.accounting import Accounting, RunSummary
from asyncdl.config import Config
from asyncdl.crawl import crawl_records
from asyncdl.errors import (
    AccessDeniedError,
    AsyncdlError,
    AuthenticationError,
    BadResponseError,
    BlockedError,
    ConfigError,
    ConnectError,
    DiskFullError,
    FormatError,
    GoneError,
    IntegrityError,
    JournalError,
    LocalError,
    LockedError,
    NoProgressError,
    NotFoundError,
    RateLimitedError,
    RemoteError,
    RequestCeilingError,
    ServerError,
    ShortBodyError,
    ShortCrawlError,
    SignedLinkError,
    StalledError,
    TransportError,
    UnsafePathError,
    UsageError,
)
from asyncdl.events import (
    ArchiveUsed,
    CrawlDone,
    CrawlShort,
    Display,
    Event,
    Fanout,
    FaultMet,
    FileAdvanced,
    FileFiltered,
    FileFinished,
    FileQueued,
    FileStarted,
    FileUnavailable,
    ListSink,
    Notice,
    NullSink,
    PageFetched,
    PathNote,
    ProgressSink,
    RateLimitPaused,
    RecordInaccessible,
    RecordPlanned,
    RequestSent,
)
from asyncdl.invenio import Selection
from asyncdl.models import Checksum, FileEntry, Record, RecordStats
from asyncdl.options import RunOptions
from asyncdl.pipeline import mirror, mirror_sync
from asyncdl.shard import Shard


def list_records(selection: Selection, config: Config | None = None) -> list[Record]:
    """Every record of ``selection`` (the synchronous form of :func:`crawl_records`)."""
    return anyio.run(crawl_records, selection, config or Config())


__all__ = [
    "AccessDeniedError", "Accounting", "ArchiveUsed", "AsyncdlError", "AuthenticationError", "BadResponseError",
    "BlockedError", "Checksum", "Config", "ConfigError", "ConnectError", "CrawlDone", "CrawlShort", "DiskFullError",
    "Display",
    "Event", "Fanout", "FaultMet", "FileAdvanced", "FileEntry", "FileFiltered", "FileFinished", "FileQueued",
    "FileStarted", "FileUnavailable", "FormatError", "GoneError", "IntegrityError", "JournalError", "ListSink",
    "LocalError",
    "LockedError", "NoProgressError", "NotFoundError", "Notice", "NullSink", "PageFetched", "PathNote", "ProgressSink",
    "RateLimitPaused", "RateLimitedError", "Record", "RecordInaccessible", "RecordPlanned", "RecordStats",
    "RemoteError", "RequestCeilingError", "RequestSent", "RunOptions", "RunSummary", "Selection", "ServerError",
    "Shard", "ShortBodyError", "ShortCrawlError", "SignedLinkError", "StalledError", "TransportError",
    "UnsafePathError", "UsageError", "__version__", "crawl_records", "list_records", "mirror", "mirror_sync",
]
