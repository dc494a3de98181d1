"""asyncdl: mirror files from Zenodo and other InvenioRDM repositories, fast, resumable and verified.

The Python API::

    from asyncdl import Config, Selection, list_records
    records = list_records(Selection(owner="88403"), Config())
"""

from __future__ import annotations

import anyio

from asyncdl._version import __version__
from asyncdl.config import Config
from asyncdl.crawl import crawl_records
from asyncdl.errors import AsyncdlError
from asyncdl.invenio import Selection
from asyncdl.models import Checksum, FileEntry, Record, RecordStats
from asyncdl.pipeline import RunSummary, mirror, mirror_sync
from asyncdl.shard import Shard


def list_records(selection: Selection, config: Config | None = None) -> list[Record]:
    """Every record of ``selection`` (the synchronous form of :func:`crawl_records`)."""
    return anyio.run(crawl_records, selection, config or Config())


__all__ = ["AsyncdlError", "Checksum", "Config", "FileEntry", "Record", "RecordStats", "RunSummary", "Selection",
           "Shard", "__version__", "crawl_records", "list_records", "mirror", "mirror_sync"]
