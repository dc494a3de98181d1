r"""asyncdl: mirror files from Zenodo and other InvenioRDM repositories, fast, resumable and verified.

The Python API (the synchronous forms work in a Jupyter cell too)::

    from asyncdl import Config, RunOptions, Selection, list_records, mirror_sync, records_table
    records = list_records(Selection(owner="88403"), Config())
    table = records_table(Selection(owner="88403"), extract=r"Expedition\s(?P<expedition>\w+)", group_by="expedition")
    frame = table.to_pandas()
    summary = mirror_sync(Selection(owner="88403"), "iodp", Config(), RunOptions(include=("*.csv",)))
"""

from __future__ import annotations

from asyncdl._version import __version__
from asyncdl.accounting import Accounting, RunSummary
from asyncdl.api import list_records, mirror_sync, records_table, records_table_async, run_sync
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
    ConcurrencyChanged,
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
    PlanDone,
    ProgressSink,
    RateLimitPaused,
    RecordInaccessible,
    RecordPlanned,
    RequestSent,
)
from asyncdl.export import RecordsTable
from asyncdl.invenio import Selection
from asyncdl.models import Checksum, FileEntry, Record, RecordStats
from asyncdl.options import RunOptions
from asyncdl.pipeline import mirror
from asyncdl.shard import Shard

__all__ = [
    "AccessDeniedError",
    "Accounting",
    "ArchiveUsed",
    "AsyncdlError",
    "AuthenticationError",
    "BadResponseError",
    "BlockedError",
    "Checksum",
    "ConcurrencyChanged",
    "Config",
    "ConfigError",
    "ConnectError",
    "CrawlDone",
    "CrawlShort",
    "DiskFullError",
    "Display",
    "Event",
    "Fanout",
    "FaultMet",
    "FileAdvanced",
    "FileEntry",
    "FileFiltered",
    "FileFinished",
    "FileQueued",
    "FileStarted",
    "FileUnavailable",
    "FormatError",
    "GoneError",
    "IntegrityError",
    "JournalError",
    "ListSink",
    "LocalError",
    "LockedError",
    "NoProgressError",
    "NotFoundError",
    "Notice",
    "NullSink",
    "PageFetched",
    "PathNote",
    "PlanDone",
    "ProgressSink",
    "RateLimitPaused",
    "RateLimitedError",
    "Record",
    "RecordInaccessible",
    "RecordPlanned",
    "RecordStats",
    "RecordsTable",
    "RemoteError",
    "RequestCeilingError",
    "RequestSent",
    "RunOptions",
    "RunSummary",
    "Selection",
    "ServerError",
    "Shard",
    "ShortBodyError",
    "ShortCrawlError",
    "SignedLinkError",
    "StalledError",
    "TransportError",
    "UnsafePathError",
    "UsageError",
    "__version__",
    "crawl_records",
    "list_records",
    "mirror",
    "mirror_sync",
    "records_table",
    "records_table_async",
    "run_sync",
]
