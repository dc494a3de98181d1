"""`asyncdl get` and `asyncdl mirror` as subprocesses: files, exit codes, plain logs, JSON events."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.datasets import record

Start = Callable[..., RunningEmulator]


def asyncdl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=300)


def dataset() -> Dataset:
    return Dataset([
        record(11, concept=10, title="IODP Expedition 374 Alkalinity and pH", owners=("88403",),
               files={"a.csv": b"a,b\n1,2\n", "data/b.bin": 200_000}),
        record(21, concept=20, title="IODP Expedition 385 Thin section images", owners=("88403",),
               files={"c.zip": 50_000}),
        record(31, concept=30, title="Embargoed", owners=("88403",), files={"x.bin": 10}, access="embargoed"),
    ])


def test_mirror_downloads_verifies_and_logs_plainly(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dest = tmp_path / "iodp"
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", "--title-regex", "Alkalinity", str(dest))
    assert result.returncode == 0, result.stderr
    assert (dest / "11" / "a.csv").read_bytes() == b"a,b\n1,2\n"
    spec = emu.dataset.records[11].files[1]
    assert hashlib.md5((dest / "11" / "data" / "b.bin").read_bytes()).hexdigest() == emu.dataset.file_md5(spec)
    assert not (dest / "21").exists()
    assert "\x1b[" not in result.stderr and "done: 2 ok" in result.stderr
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", "--title-regex", "Alkalinity", str(dest))
    assert again.returncode == 0 and "0 ok, 2 already there" in again.stderr


def test_get_with_json_events(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    result = asyncdl("get", "--base-url", emu.url, "11", "21", "-o", str(tmp_path), "--progress", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    finished = {e["path"]: e["outcome"] for e in events if e["event"] == "FileFinished"}
    assert finished == {"11/a.csv": "ok", "11/data/b.bin": "ok", "21/c.zip": "ok"}
    assert {e["event"] for e in events} >= {"FileQueued", "FileStarted", "FileAdvanced", "CrawlDone"}
    names = [e["event"] for e in events]
    assert names.count("PlanDone") == 1  # the totals are final from here: no file is queued after it
    assert max(i for i, name in enumerate(names) if name == "FileQueued") < names.index("PlanDone")


def test_failures_exit_1_with_reasons(start_emulator: Start, tmp_path: Path) -> None:
    faults = FaultConfig(corrupt=1.0)  # every body is damaged: the file can never verify
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=faults), dataset=dataset())
    result = asyncdl("get", "--base-url", emu.url, "21", "31", "-o", str(tmp_path), "--max-attempts", "2")
    assert result.returncode == 1
    assert "failed: 21/c.zip: corrupt: md5" in result.stderr
    assert "31" in result.stderr and "embargoed" in result.stderr
    assert not (tmp_path / "21" / "c.zip").exists()  # nothing corrupt under a final name
    assert list(tmp_path.rglob("*.asyncdl-part")) == []


def test_dry_run_and_usage_errors(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    dry = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", "--layout", "{year}/{key}", "--dry-run",
                  str(tmp_path / "out"))
    assert dry.returncode == 0 and "2020/a.csv" in dry.stdout and not (tmp_path / "out").exists()
    real = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(tmp_path / "m"), "--archive", "never")
    assert real.returncode in (0, 5), real.stderr
    done = sorted(p for p in (tmp_path / "m").rglob("*") if p.is_file() and ".asyncdl" not in p.parts
                  and p.name != "manifest.csv")
    done[0].unlink()
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", str(tmp_path / "m"), "--dry-run")
    actions = {line.split("\t")[0]: line.split("\t")[3] for line in again.stdout.splitlines()}
    assert actions[done[0].relative_to(tmp_path / "m").as_posix()] == "download"
    assert sorted(actions.values()).count("there") == len(done) - 1  # the dry run says what a real run would fetch
    assert "1 to download" in again.stderr and f"{len(done) - 1} already there by size" in again.stderr
    bad = asyncdl("mirror", "--base-url", emu.url, "--owner", "88403", "--layout", "{nope}/{key}", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: unknown layout placeholder(s) nope")


def test_j_means_that_many_transfers_unless_connections_are_set_lower(start_emulator: Start, tmp_path: Path) -> None:
    """-j 12 with the default --connections-per-host (0: follow -j) has 12 bodies in flight at once, not 8;
    a limit set lower holds it (the server counts the bodies it sends at once)."""
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=1_000_000)),
                         dataset=Dataset([record(100 + i, owners=("5",), files={"f.bin": 400_000}) for i in range(24)]))
    args = ["mirror", "--base-url", emu.url, "--owner", "5", "--archive", "never", "--segments", "1", "-q"]
    followed = asyncdl(*args, str(tmp_path / "a"), "-j", "12")
    assert followed.returncode == 0, followed.stderr
    assert emu.stats.bodies_peak == 12
    emu.stats.reset()
    held = asyncdl(*args, str(tmp_path / "b"), "-j", "12", "--connections-per-host", "3")
    assert held.returncode == 0, held.stderr
    assert emu.stats.bodies_peak == 3
