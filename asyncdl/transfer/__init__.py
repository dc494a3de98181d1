"""The transfer engine, read as its steps:

- :mod:`.engine`: :class:`Transfer`, one file (or one record's archive) from the server to its final name;
- :mod:`.single`: a single stream into the part file, resumed with Range;
- :mod:`.segmented`: a large file in segments at once, with its durable sidecar;
- :mod:`.archive`: a record's files through one files-archive request, every member md5-checked;
- :mod:`.archive_choice`: when that archive is worth a request, and each host's archive cap;
- :mod:`.ranges`: the pure Range decisions, and which URL of a host honours Range;
- :mod:`.ceiling`: the most requests one file may cost;
- :mod:`.writer`: the one writer thread of a download (writes and hashing, in order);
- :mod:`.commit`: fsync and rename, batched;
- :mod:`.result`: how a file ended.
"""

from asyncdl.transfer.archive import PlannedRecord
from asyncdl.transfer.archive_choice import ZENODO_ARCHIVE_CAP
from asyncdl.transfer.ceiling import PIECES_PER_SEGMENT, PROGRESS_UNIT, RequestCeiling
from asyncdl.transfer.commit import Committer
from asyncdl.transfer.engine import Transfer
from asyncdl.transfer.ranges import check_content_range, range_answer
from asyncdl.transfer.result import TransferResult

__all__ = [
           "PIECES_PER_SEGMENT",
           "PROGRESS_UNIT",
           "ZENODO_ARCHIVE_CAP",
           "Committer",
           "PlannedRecord",
           "RequestCeiling",
           "Transfer",
           "TransferResult",
           "check_content_range",
           "range_answer",
]
