"""asyncdl's local InvenioRDM/Zenodo server, for tests, benchmarks and the demo.

Names are imported on first use, so ``asyncdl --help`` does not pay for the server's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncdl.emulator.config import EmulatorConfig
    from asyncdl.emulator.dataset import Dataset, DatasetSpec, FileSpec, RecordSpec
    from asyncdl.emulator.faults import FaultConfig
    from asyncdl.emulator.server import Emulator, EmulatorStats, EmulatorThread, RunningEmulator

_WHERE = {
    "EmulatorConfig": "config", "Dataset": "dataset", "DatasetSpec": "dataset", "FileSpec": "dataset",
    "RecordSpec": "dataset", "FaultConfig": "faults", "Emulator": "server", "EmulatorStats": "server",
    "EmulatorThread": "server", "RunningEmulator": "server",
}

__all__ = ["Dataset", "DatasetSpec", "Emulator", "EmulatorConfig", "EmulatorStats", "EmulatorThread",
           "FaultConfig", "FileSpec", "RecordSpec", "RunningEmulator"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'asyncdl.emulator' has no attribute {name!r}")
    return getattr(importlib.import_module(f"asyncdl.emulator.{_WHERE[name]}"), name)
