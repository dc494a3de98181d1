"""asyncdl: mirror files from Zenodo and other InvenioRDM repositories, fast, resumable and verified."""

from asyncdl.errors import AsyncdlError
from asyncdl.models import Checksum, FileEntry, Record, RecordStats

__version__ = "0.1.0"

__all__ = ["AsyncdlError", "Checksum", "FileEntry", "Record", "RecordStats", "__version__"]
