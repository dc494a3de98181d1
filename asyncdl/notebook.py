"""Progress in a Jupyter cell: one block of text that is replaced in place (IPython's display handles, no
widgets needed), so an hour-long mirror leaves a few lines in the cell, not thousands.

The block is the run's status line (files, bytes, speed, time left, crawl), the latest pause or retry, and
the first failures and warnings (at most ``SHOWN``, then a count). It is redrawn at most every
``interval`` seconds and once at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from asyncdl.accounting import Accounting
from asyncdl.events import Display, Event, FaultMet, FileFinished, Notice, RateLimitPaused
from asyncdl.progress import describe_pause, describe_retry, status_line
from asyncdl.units import plural

SHOWN = 10  # failures and warnings listed in the cell; the rest are counted


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's kernel shell, not a terminal IPython)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class NotebookProgress(Display):
    """The run's progress as one text block of the cell, updated in place."""

    def __init__(self, accounting: Accounting, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounting, self.interval, self.clock = accounting, interval, clock
        self.latest = ""  # the latest pause or retry
        self.told: list[str] = []  # failures and warnings, the first SHOWN of them
        self.untold = 0
        self._handle: Any = None
        self._drawn = 0.0

    def __enter__(self) -> NotebookProgress:
        from IPython.display import Pretty, display

        self._handle = display(Pretty(self.text()), display_id=True)  # type: ignore[no-untyped-call]
        self._drawn = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw()

    def emit(self, event: Event) -> None:
        if isinstance(event, FileFinished) and event.outcome == "failed":
            self._tell(f"failed {event.path}: {event.reason}")
        elif isinstance(event, Notice) and event.level != "info":
            self._tell(f"{event.level}: {event.message}")
        elif isinstance(event, RateLimitPaused):
            self.latest = describe_pause(event)
        elif isinstance(event, FaultMet):
            self.latest = describe_retry(event)
        if self.clock() - self._drawn >= self.interval:
            self._draw()

    def text(self) -> str:
        lines = [status_line(self.accounting)]
        if self.latest:
            lines.append(self.latest)
        lines += self.told
        if self.untold:
            lines.append(f"... and {plural(self.untold, 'more failure or warning', 'more failures or warnings')}")
        return "\n".join(lines)

    def _tell(self, line: str) -> None:
        if len(self.told) < SHOWN:
            self.told.append(line)
        else:
            self.untold += 1

    def _draw(self) -> None:
        from IPython.display import Pretty

        self._drawn = self.clock()
        if self._handle is not None:
            self._handle.update(Pretty(self.text()))  # type: ignore[no-untyped-call]
