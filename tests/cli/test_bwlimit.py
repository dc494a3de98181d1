"""--bwlimit and --bwlimit-file on a real run: the bytes take at least as long as the cap says (a lower bound
only: a slow machine cannot make it fail), and every file is complete and verified."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.cli.test_inputs import asyncdl
from tests.datasets import record

Start = Callable[..., RunningEmulator]
SIZE = 300_000
CAP = 200_000
BURST = 0.25  # the pacer's credit after an idle spell, in seconds of the cap


def timed_mirror(start_emulator: Start, tmp_path: Path, *flags: str) -> float:
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(100 + i, owners=("5",), files={"f.bin": SIZE}) for i in range(2)]))
    began = time.monotonic()
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "m"), "--archive", "never",
                     "-j", "2", "--progress", "none", *flags)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert sorted(p.stat().st_size for p in (tmp_path / "m").glob("*/f.bin")) == [SIZE, SIZE]
    return elapsed


def test_the_total_cap_holds_every_download_together(start_emulator: Start, tmp_path: Path) -> None:
    elapsed = timed_mirror(start_emulator, tmp_path, "--bwlimit", str(CAP))
    assert elapsed >= (2 * SIZE / CAP - BURST) * 0.95


def test_the_file_cap_holds_each_file(start_emulator: Start, tmp_path: Path) -> None:
    elapsed = timed_mirror(start_emulator, tmp_path, "--bwlimit-file", str(CAP))
    assert elapsed >= (SIZE / CAP - BURST) * 0.95
