"""asyncdl's local InvenioRDM/Zenodo server, for tests, benchmarks and the demo."""

from asyncdl.emulator.config import EmulatorConfig
from asyncdl.emulator.dataset import Dataset, DatasetSpec, FileSpec, RecordSpec
from asyncdl.emulator.faults import FaultConfig
from asyncdl.emulator.server import Emulator, EmulatorStats, EmulatorThread, RunningEmulator

__all__ = ["Dataset", "DatasetSpec", "Emulator", "EmulatorConfig", "EmulatorStats", "EmulatorThread",
           "FaultConfig", "FileSpec", "RecordSpec", "RunningEmulator"]
