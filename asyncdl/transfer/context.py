"""What every step of a transfer shares: the client, the settings, the progress sink, what was learned of
each host (its Range routes, its archive cap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from asyncdl.config import Config
from asyncdl.events import ProgressSink
from asyncdl.http import Client
from asyncdl.transfer.archive_choice import ArchiveChoice
from asyncdl.transfer.ranges import RangeRoutes


class SpareSlots(Protocol):
    """The run's download slots, lent to a large file's extra connections (``--segments auto``): one for each
    piece it fetches, and only a slot that no file waits for."""

    def lend(self) -> object | None:
        """A free slot (its token), or None (and the run learns that one more would be used)."""

    def give_back(self, token: object) -> None:
        """Return a slot lent."""


@dataclass
class Context:
    client: Client
    config: Config
    sink: ProgressSink
    routes: RangeRoutes
    archives: ArchiveChoice
    spare: SpareSlots | None = None  # with --segments auto: the slots a large file's extra connections use
