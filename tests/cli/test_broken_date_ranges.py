"""The seed notebook's failure, as a server produced it: sliced searches (``... AND created:[A TO B}``) that match
nothing although the first page stated 10,666 hits. asyncdl must fall back to paging without slices and
return every record, or, beyond what paging can reach (twice the 10,000 window), write what it has and exit 1
with both numbers. Never 0 rows and exit 0."""

from __future__ import annotations

import csv
import dataclasses
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.emulator.flavor import FlavorName
from tests.datasets import many

Start = Callable[..., RunningEmulator]
OWNER = "88403"


def owned(count: int, *, files_every: int = 1000) -> Dataset:
    """``count`` records of the owner; one in ``files_every`` keeps its file (the rest have none, so a mirror
    of them is about the crawl, not about ten thousand downloads)."""
    records = many(count, owner=OWNER).records.values()
    return Dataset([r if i % files_every == 0 else dataclasses.replace(r, files=[]) for i, r in enumerate(records)])


def broken(start_emulator: Start, dataset: Dataset, flavor: FlavorName = "zenodo") -> RunningEmulator:
    return start_emulator(EmulatorConfig(flavor=flavor, rate_limits=False,
                                         faults=FaultConfig(broken_date_ranges=True)), dataset=dataset)


def asyncdl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncdl", *args], capture_output=True, text=True, timeout=300)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_list_falls_back_and_returns_every_record(start_emulator: Start, tmp_path: Path) -> None:
    emu = broken(start_emulator, owned(10_666))
    result = asyncdl("list", "--base-url", emu.url, "--owner", OWNER, "-o", str(tmp_path / "l.csv"))
    assert result.returncode == 0, result.stderr
    assert "matched nothing although the search stated 10,666 hits" in result.stderr
    assert "without date slices" in result.stderr
    listed = rows(tmp_path / "l.csv")
    assert len(listed) == 10_666 and len({r["id"] for r in listed}) == 10_666


def test_mirror_falls_back_and_gets_every_record(start_emulator: Start, tmp_path: Path) -> None:
    dataset = owned(10_666)
    emu = broken(start_emulator, dataset, "invenio")
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", OWNER, str(tmp_path), "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "without date slices" in result.stderr
    with_files = [r for r in dataset.records.values() if r.files]
    got = sorted(p.name for p in tmp_path.rglob("*.txt"))
    assert got == sorted(r.files[0].key for r in with_files) and len(got) == 11
    with sqlite3.connect(tmp_path / ".asyncdl" / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM records").fetchone() == (10_666,)


def test_beyond_what_paging_reaches_list_writes_what_it_has_and_exits_1(start_emulator: Start,
                                                                        tmp_path: Path) -> None:
    emu = broken(start_emulator, owned(20_500), "invenio")
    result = asyncdl("list", "--base-url", emu.url, "--owner", OWNER, "-o", str(tmp_path / "l.csv"))
    assert result.returncode == 1
    assert "stated 20500 records, its pages gave 20000" in result.stderr
    assert len({r["id"] for r in rows(tmp_path / "l.csv")}) == 20_000


def test_beyond_what_paging_reaches_mirror_exits_1_with_both_numbers(start_emulator: Start, tmp_path: Path) -> None:
    emu = broken(start_emulator, owned(20_500, files_every=5000))
    result = asyncdl("mirror", "--base-url", emu.url, "--token", "emulator-token", "--owner", OWNER, str(tmp_path),
                     "--progress", "none")
    assert result.returncode == 1
    assert "stated 20500 records, its pages gave 20000" in result.stderr
