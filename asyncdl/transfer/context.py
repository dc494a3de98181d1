"""What every step of a transfer shares: the client, the settings, the progress sink, the Range routes."""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.config import Config
from asyncdl.events import ProgressSink
from asyncdl.http import Client
from asyncdl.transfer.ranges import RangeRoutes


@dataclass
class Context:
    client: Client
    config: Config
    sink: ProgressSink
    routes: RangeRoutes
