"""The most requests one file may cost, whatever happens: a backstop behind the retry budgets."""

from __future__ import annotations

from asyncdl.config import Config
from asyncdl.errors import RequestCeilingError

PIECES_PER_SEGMENT = 4  # a segmented file is cut in segments x 4 pieces so its md5 can follow the download
PROGRESS_UNIT = 8 * 1024 * 1024  # the ceiling allows one try that progresses per this many bytes


class RequestCeiling:
    """``ceiling.spend(path)`` before each request for the file; RequestCeilingError past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    @classmethod
    def for_file(cls, size: int | None, config: Config) -> RequestCeiling:
        """Per download from zero (``max_attempts`` of them): every piece's retry budget, one progressing try
        per PROGRESS_UNIT of the file, and the two URLs tried for Range."""
        pieces = config.segment_count * PIECES_PER_SEGMENT if size and size >= config.segment_threshold else 1
        progressing = -(-(size or 0) // PROGRESS_UNIT) or 1
        return cls(config.max_attempts * (pieces * (config.retries + 1) + progressing + 2))

    def spend(self, path: str) -> None:
        if self.spent >= self.limit:
            raise RequestCeilingError(f"gave up after {self.spent} requests for {path}, the most one file of its "
                                      "size may cost with these retry and segment settings")
        self.spent += 1
