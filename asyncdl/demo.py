"""``asyncdl demo``: a real mirror, with the live display, from the emulator started in this process."""

from __future__ import annotations

from asyncdl.emulator.config import EmulatorConfig
from asyncdl.emulator.dataset import DatasetSpec
from asyncdl.emulator.server import EmulatorThread, RunningEmulator

DEMO_RECORDS = 6
DEMO_LARGE_FILE = 300_000_000


def demo_config() -> EmulatorConfig:
    """A few records of many small files, one of 300 MB; Zenodo's rate limits and Range quirks included."""
    spec = DatasetSpec(seed=2026, records=DEMO_RECORDS, files_per_record=(12, 20), file_size=(2_000, 400_000),
                       large_files=(DEMO_LARGE_FILE,), multi_version_fraction=0.0, iodp_fraction=0.5,
                       restricted_fraction=0.0, files_restricted_fraction=0.0, embargoed_fraction=0.0,
                       deleted_fraction=0.0)
    return EmulatorConfig(port=0, dataset=spec)


def start_demo_server() -> tuple[EmulatorThread, RunningEmulator]:
    thread = EmulatorThread(demo_config())
    return thread, thread.start()
