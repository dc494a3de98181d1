"""``--log-file FILE``: the run's events as log lines in a file (Python's logging), beside whatever the
terminal shows. ``--log-level``: ``debug`` adds every request and every fault met before its retry,
``info`` (the default) every file's result, rate-limit pauses and notices, ``warning`` only failures and
warnings. Messages are the ones the displays show: tokens and signed URL parameters are masked in them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asyncdl.errors import LocalError
from asyncdl.events import (
    CrawlDone,
    Display,
    Event,
    FaultMet,
    FileFinished,
    Notice,
    PageFetched,
    RateLimitPaused,
    RequestSent,
)
from asyncdl.progress import describe_pause

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
FORMAT = "%(asctime)s %(levelname)s %(message)s"


class LogFile(Display):
    """A progress sink that writes log lines to ``path`` (appended) at ``level`` and above."""

    def __init__(self, path: Path, level: str = "info") -> None:
        self.path = path
        self.logger = logging.getLogger(f"asyncdl.run.{id(self)}")
        self.logger.propagate = False  # to the file only, never to a root handler a library set up
        self.logger.setLevel(LEVELS[level])
        self.debug = LEVELS[level] <= logging.DEBUG
        self._handler: logging.FileHandler | None = None

    def __enter__(self) -> LogFile:
        try:
            self._handler = logging.FileHandler(self.path, encoding="utf-8")
        except OSError as exc:
            raise LocalError(f"cannot write the log file {self.path}: {exc.strerror or exc}") from exc
        self._handler.setFormatter(logging.Formatter(FORMAT))
        self.logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def line(self, level: int, message: str) -> None:
        self.logger.log(level, message)

    def emit(self, event: Event) -> None:
        log = self.logger.log
        match event:
            case FileFinished(path=path, outcome="failed", reason=reason):
                log(logging.WARNING, f"failed {path}: {reason}")
            case FileFinished(path=path, outcome=outcome, reason=reason):
                log(logging.INFO, f"{outcome} {path}{': ' + reason if reason else ''}")
            case RateLimitPaused():
                log(logging.INFO, f"{describe_pause(event)} at {event.host}")
            case FaultMet(kind=kind, detail=detail) if self.debug:
                log(logging.DEBUG, f"fault {kind}: {detail}")
            case RequestSent(host=host, kind=kind) if self.debug:  # every request: no words made for nothing
                log(logging.DEBUG, f"request {kind or 'other'} to {host}")
            case Notice(message=message, level=level):
                log(logging.INFO if level == "info" else logging.WARNING, message)
            case PageFetched(records=records, pages_done=done, pages_planned=planned) if self.debug:
                log(logging.DEBUG, f"search page {done}/{planned or '?'}: {records} records")
            case CrawlDone(records=records, pages=pages):
                log(logging.INFO, f"crawl done: {records} records in {pages} pages")
