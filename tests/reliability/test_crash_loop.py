"""Crash loop: a mixed mirror SIGKILLed at random moments, many times, then resumed to the end.

After every kill, before anything repairs it: the journal passes SQLite's integrity check and
``asyncdl status`` reads it, and every file under a final name is byte-for-byte the record's file
(a kill can leave part files, never a wrong final file). The last run completes and ``verify`` agrees.
"""

from __future__ import annotations

import json
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.cli.test_resume import downloaded, expected
from tests.datasets import record

Start = Callable[..., RunningEmulator]
KILLS = 15


def mixed() -> Dataset:
    """Small files in many records, mid-size single streams, and files big enough to go in segments."""
    records = [record(11, concept=10, files={"seg1.bin": 24_000_000, "seg2.bin": 12_000_000})]
    records += [record(13, concept=12, files={"one.bin": 3_000_000, "nested/two.bin": 1_500_000})]
    records += [record(21 + 2 * i, concept=20 + 2 * i, files={f"d{i}/s{j}.csv": 3_000 + 211 * j * i
                                                               for j in range(10)}) for i in range(60)]
    return Dataset(records)


def command(emu: RunningEmulator, dest: Path) -> list[str]:
    return [sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*", str(dest),
            "--progress", "none", "-j", "6", "--segment-threshold", "8MiB", "--segments", "3",
            "--chunk-size", "256KiB", "--save-metadata"]


def assert_consistent(dest: Path, want: dict[str, str]) -> None:
    """What a kill may leave: part files and an unfinished journal; never a damaged one, never a wrong file."""
    journals = sorted((dest / ".asyncdl").glob("journal*.sqlite"))
    for journal in journals:
        with sqlite3.connect(journal) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), journal
    if journals:
        status = subprocess.run([sys.executable, "-m", "asyncdl", "status", str(dest)], capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stderr
    for path, md5 in downloaded(dest).items():
        if ".asyncdl-part" in path:
            continue
        if path.split("/")[-1].startswith("zenodo-record-"):  # --save-metadata's record JSON
            json.loads((dest / path).read_text())
        else:
            assert want.get(path) == md5, f"{path} is under its final name but is not the record's file"


class Watched:
    """A mirror run whose JSON events are read as they come, to SIGKILL it at a chosen moment."""

    def __init__(self, emu: RunningEmulator, dest: Path) -> None:
        self.process = subprocess.Popen([*command(emu, dest), "--progress", "json"], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.events: queue.SimpleQueue[dict[str, object] | None] = queue.SimpleQueue()
        self.finished = 0  # FileFinished events so far: every file of the selection gets one per run
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def kill_when(self, ready: Callable[[Watched], bool], *, poll: float = 0.001) -> bool:
        """SIGKILL as soon as ``ready`` holds; False when the run ended first."""
        deadline = time.monotonic() + 120
        while not ready(self):
            try:
                event = self.events.get(timeout=poll)
            except queue.Empty:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    break
                continue
            if event is None:
                break
            self.seen.append(str(event["event"]))
            self.finished += event["event"] == "FileFinished"
        landed = self.process.poll() is None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return landed


def test_sigkill_many_times_during_a_mixed_mirror(start_emulator: Start, tmp_path: Path) -> None:
    """Kills placed on purpose, by what the run reports: at start-up (the journal just opened, no event
    yet), in the crawl (its first page), mid-transfer (after a random share of the files), during the last
    commits (two files to go) and in the end-of-run bookkeeping (every file reported, the run not ended)."""
    faults = FaultConfig(seed=4, latency=0.02, bandwidth=2_000_000, reset=0.03)
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both", faults=faults), dataset=mixed())
    want = expected(emu)
    total = len(want)
    dest = tmp_path / "mirror"
    journal = dest / ".asyncdl" / "journal.sqlite"
    rng = random.Random(20261122)
    done_before = 0

    def mid() -> Callable[[Watched], bool]:
        """After a random share (up to a third) of the files this run has left."""
        target = done_before + 1 + rng.randrange(max(1, (total - done_before) // 3))
        return lambda w: w.finished >= target

    moments: list[tuple[str, Callable[[], Callable[[Watched], bool]]]] = [
        ("start-up", lambda: lambda w: journal.exists()), ("crawl", lambda: lambda w: "PageFetched" in w.seen)]
    moments += [("mid-transfer", mid)] * (KILLS - 4)
    moments += [("last commits", lambda: lambda w: w.finished >= total - 2),
                ("end of run", lambda: lambda w: w.finished == total)]
    landed: list[tuple[str, int, bool]] = []  # moment, files done before the run, whether the kill landed
    for moment, trigger in moments:
        watched = Watched(emu, dest)
        hit = watched.kill_when(trigger())
        if moment == "start-up":
            hit = hit and not watched.seen  # killed before the run reported anything
        landed.append((moment, done_before, hit))
        assert_consistent(dest, want)
        done_before = len([p for p in downloaded(dest) if p in want])
    print(f"{KILLS} kills (moment, files done before, landed): {landed}")
    assert all(hit for _, _, hit in landed), landed  # every kill came at its moment, the run still going
    final = subprocess.run(command(emu, dest), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    files = {p: m for p, m in downloaded(dest).items() if "/zenodo-record-" not in p}
    assert files == want
    assert len(downloaded(dest)) - len(files) == len(emu.dataset.records)  # and one record JSON each
    assert list(dest.rglob("*.asyncdl-part*")) == []
    verified = subprocess.run([sys.executable, "-m", "asyncdl", "verify", str(dest)], capture_output=True,
                              text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sigkill_two_shards_at_once_many_times(start_emulator: Start, tmp_path: Path) -> None:
    """Two shards of one DEST, both killed at random moments mid-write (their journals use SQLite's rollback
    journal, not WAL): every journal stays intact and the shards finish the whole selection between them."""
    faults = FaultConfig(seed=5, latency=0.02, bandwidth=2_000_000, reset=0.03)
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both", faults=faults), dataset=mixed())
    want = expected(emu)
    dest = tmp_path / "mirror"
    rng = random.Random(9)
    for _ in range(6):
        shards = [subprocess.Popen([*command(emu, dest), "--shard", f"{k}/2"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for k in (1, 2)]
        time.sleep(rng.uniform(0.3, 1.6))
        for process in shards:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert_consistent(dest, want)
    for k in (1, 2):
        final = subprocess.run([*command(emu, dest), "--shard", f"{k}/2"], capture_output=True, text=True,
                               timeout=300)
        assert final.returncode == 0, final.stderr
    files = {p: m for p, m in downloaded(dest).items() if "/zenodo-record-" not in p}
    assert files == want
    assert sorted(p.name for p in (dest / ".asyncdl").glob("journal*.sqlite")) == [
        "journal-1-of-2.sqlite", "journal-2-of-2.sqlite"]
    verified = subprocess.run([sys.executable, "-m", "asyncdl", "verify", str(dest)], capture_output=True,
                              text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
