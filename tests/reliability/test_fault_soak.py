"""Fault soak: 1,000+ files through every fault the emulator injects; every file ends verified.

The run is the command a user types (``asyncdl mirror``, a subprocess) against an emulator that resets
10% of bodies, answers 5% of requests with a 5xx and 2% with a 429 (on top of its scaled rate limits, and of
a 0.8 s burst of 429s for everyone every 5.3 s),
corrupts 2%, stalls 1%, truncates 2% and adds latency. Nothing corrupt may reach a final name, and the
summary must count the faults the server says it injected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import DatasetSpec, EmulatorConfig, FaultConfig, RunningEmulator
from tests.integration.test_transfer import expected_files, on_disk

Start = Callable[..., RunningEmulator]
SOAK_FAULTS = FaultConfig(seed=2026, latency=0.005, reset=0.10, error_5xx=0.05, error_429=0.02, corrupt=0.02,
                          stall=0.01, truncate=0.02, stall_seconds=30, burst_every=5.3, burst_seconds=0.8)
SOAK_DATA = DatasetSpec(records=300, seed=8, files_per_record=(3, 5), file_size=(100, 200_000),
                        large_files=(3_000_000, 6_000_000, 9_000_000), restricted_fraction=0,
                        files_restricted_fraction=0, embargoed_fraction=0, deleted_fraction=0)
SETTINGS = """
[requests]
backoff_base = 0.05
backoff_max = 0.5
read_timeout = 1.5
"""


def mirror(emu: RunningEmulator, dest: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*", str(dest),
               "--config", str(config), "--progress", "json", "-j", "16", "--segment-threshold", "2MiB",
               "--chunk-size", "256KiB", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def run_summary(stdout: str) -> dict[str, object]:
    last = json.loads(stdout.strip().splitlines()[-1])
    assert last["event"] == "RunSummary"
    return dict(last)


def test_a_thousand_files_through_every_fault(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(minute=1.0, faults=SOAK_FAULTS, dataset=SOAK_DATA))
    expected = expected_files(emu)
    assert len(expected) >= 1000
    config = tmp_path / "soak.toml"
    config.write_text(SETTINGS)
    dest = tmp_path / "dest"

    done = mirror(emu, dest, config)

    assert done.returncode == 0, done.stderr[-3000:]
    summary = run_summary(done.stdout)
    assert summary["ok"] == len(expected) and summary["failed"] == 0
    assert on_disk(dest) == expected  # every file, each with the record's md5; no part file left
    injected = emu.stats.faults
    met = summary["faults"]
    assert isinstance(met, dict)
    # every body the server broke was noticed: a reset or a truncation loses the connection, a stall
    # times out (on a loaded machine a client may time out before the reset that was coming, so the two
    # are summed), a corrupt body fails its md5 (two in one download count once), a 5xx or 429 is answered
    broken = injected["reset"] + injected["truncate"] + injected["stall"]
    assert met.get("connection", 0) + met.get("timeout", 0) + met.get("short", 0) >= broken
    assert injected["reset"] and injected["truncate"] and injected["stall"] and met.get("timeout", 0)
    assert 0 < met.get("corrupt", 0) <= injected["corrupt"]
    assert met.get("5xx", 0) == sum(n for kind, n in injected.items() if kind.startswith("http_5")) > 0
    assert met.get("429", 0) >= injected["http_429"] + injected["burst_429"]
    assert injected["http_429"] > 0 and injected["burst_429"] > 0  # lone 429s and whole bursts of them
    print(f"soak: {len(expected)} files; injected {dict(injected)}; met {met}; {summary['seconds']} s")

    verified = subprocess.run([sys.executable, "-m", "asyncdl", "verify", str(dest)], capture_output=True,
                              text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout + verified.stderr
