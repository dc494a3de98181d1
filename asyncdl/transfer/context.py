"""What every step of a transfer shares: the client, the settings, the progress sink, what was learned of
each host (its Range routes, its archive cap)."""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.config import Config
from asyncdl.events import ProgressSink
from asyncdl.http import Client
from asyncdl.transfer.archive_choice import ArchiveChoice
from asyncdl.transfer.ranges import RangeRoutes


@dataclass
class Context:
    client: Client
    config: Config
    sink: ProgressSink
    routes: RangeRoutes
    archives: ArchiveChoice
