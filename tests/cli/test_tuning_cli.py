"""-j auto and --segments auto on real runs against the emulator: the levels move and are told, stay within
--connections-per-host, a fixed -j still means that many, and a large file alone takes the free slots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.cli.test_inputs import asyncdl
from tests.datasets import record

Start = Callable[..., RunningEmulator]


def capped(start_emulator: Start, files: dict[int, int], cap: int) -> RunningEmulator:
    """Records id -> one file of that size, each connection held to ``cap`` bytes a second."""
    return start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=cap)),
                          dataset=Dataset([record(i, owners=("5",), files={"f.bin": size})
                                           for i, size in files.items()]))


def summary_of(emu: RunningEmulator, dest: Path, *flags: str) -> dict[str, Any]:
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(dest), "--archive", "never",
                     "--progress", "json", *flags)
    assert result.returncode == 0, result.stderr
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["event"] == "RunSummary"
    return last


def test_auto_climbs_while_more_pays_and_never_past_the_host_limit(start_emulator: Start, tmp_path: Path) -> None:
    emu = capped(start_emulator, {100 + i: 300_000 for i in range(30)}, cap=300_000)
    summary = summary_of(emu, tmp_path / "m", "--connections-per-host", "6")
    levels = [files for _, files in summary["concurrency"]]
    assert levels[0] == 4 and max(levels) == 6  # each connection is capped: more files, more bytes
    assert summary["ok"] == 30
    assert 4 < emu.stats.bodies_peak <= 6


def test_a_fixed_level_is_kept_and_no_levels_are_told(start_emulator: Start, tmp_path: Path) -> None:
    emu = capped(start_emulator, {100 + i: 200_000 for i in range(12)}, cap=400_000)
    summary = summary_of(emu, tmp_path / "m", "-j", "3")
    assert summary["concurrency"] == [] and summary["ok"] == 12
    assert emu.stats.bodies_peak == 3


def test_a_large_file_alone_takes_the_free_slots(start_emulator: Start, tmp_path: Path) -> None:
    emu = capped(start_emulator, {100: 3_000_000}, cap=500_000)
    summary_of(emu, tmp_path / "a", "--segment-threshold", "1MB")
    alone = emu.stats.bodies_peak
    emu.stats.reset()
    summary_of(emu, tmp_path / "b", "--segment-threshold", "1MB", "-j", "2")
    assert alone >= 4 and emu.stats.bodies_peak == 2  # -j auto starts at 4 slots; -j 2 lends only 2
