"""Shards' journals in one destination: read as one, written each by its own shard, never in each other's way."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.api import mirror_sync
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import LockedError, UsageError
from asyncdl.events import ListSink, Notice
from asyncdl.pipeline import mirror
from asyncdl.shard import Shard
from asyncdl.status import read_status, verify
from asyncdl.store.lock import RunLock
from asyncdl.store.merged import remove_orphans
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio


def dataset() -> Dataset:
    return Dataset([record(rid, concept=rid - 1, files={"a.txt": 100 + rid, "b.txt": 200 + rid}, owners=("9",))
                    for rid in range(11, 31, 2)])


def rows(dest: Path, name: str) -> dict[str, tuple[str, str | None]]:
    """path -> (state, last error) in one journal."""
    with sqlite3.connect(dest / ".asyncdl" / name) as db:
        return {path: (state, error) for path, state, error in db.execute("SELECT path, state, last_error FROM files")}


async def mirror_in_shards(emu: RunningEmulator, dest: Path, count: int) -> None:
    for k in range(1, count + 1):
        summary = await mirror(Selection(owner="9"), dest, Config(base_url=emu.url),
                               options=RunOptions(shard=Shard(k, count)))
        assert summary.exit_code == 0


async def test_a_path_in_several_journals_counts_once(start_emulator: Start, tmp_path: Path) -> None:
    """Mirrored whole, then again as two shards: the shards adopt the files (hashing them), and status
    counts each file once although two journals know it."""
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url))
    await mirror_in_shards(emu, tmp_path, 2)
    assert emu.stats.requests["content"] == 20  # adopted, not fetched again
    status = read_status(tmp_path)
    total = sum(300 + 2 * rid for rid in range(11, 31, 2))
    assert (status.states["done"].files, status.states["done"].bytes) == (20, total)
    first, second = (len(rows(tmp_path, f"journal-{k}-of-2.sqlite")) for k in (1, 2))
    assert first and second and first + second == 20
    assert [(s.shard, s.done) for s in status.shards] == [("1/2", first), ("2/2", second), (None, 20)]
    report = await verify(tmp_path, config=Config(base_url=emu.url))
    assert (report.checked, report.ok) == (20, 20)
    modes = {}
    for name in ("journal.sqlite", "journal-1-of-2.sqlite"):
        with sqlite3.connect(tmp_path / ".asyncdl" / name) as db:
            modes[name] = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert modes == {"journal.sqlite": "wal", "journal-1-of-2.sqlite": "delete"}  # shards: no shared memory


def test_status_names_the_shards_that_have_not_started(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    mirror_sync(Selection(owner="9"), tmp_path, Config(base_url=emu.url), options=RunOptions(shard=Shard(2, 3)))
    status = read_status(tmp_path)
    assert [(s.shard, s.started, s.last_outcome) for s in status.shards] == [
        ("2/3", True, "complete"), ("1/3", False, None), ("3/3", False, None)]
    shown = subprocess.run([sys.executable, "-m", "asyncdl", "status", str(tmp_path)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "200"})
    assert "not started: shard 1/3, 3/3 (their files are not counted yet)" in shown.stdout
    assert shown.stdout.count("not started") == 3  # two rows of the shards table, and the line


async def test_verify_marks_and_repairs_in_the_shards_own_journal(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    await mirror_in_shards(emu, tmp_path, 3)
    second = sorted(rows(tmp_path, "journal-2-of-3.sqlite"))
    bad = second[0]
    size = (tmp_path / bad).stat().st_size
    (tmp_path / bad).write_bytes(b"x" * size)  # same size, other bytes
    others = {name: rows(tmp_path, name) for name in ("journal-1-of-3.sqlite", "journal-3-of-3.sqlite")}
    report = await verify(tmp_path, config=Config(base_url=emu.url))
    assert report.mismatched == [bad] and report.checked == 20
    assert rows(tmp_path, "journal-2-of-3.sqlite")[bad][0] == "failed"
    assert {name: rows(tmp_path, name) for name in others} == others  # the other shards' journals untouched
    repaired = await verify(tmp_path, config=Config(base_url=emu.url), repair=True)
    assert repaired.repaired == [bad] and rows(tmp_path, "journal-2-of-3.sqlite")[bad] == ("done", None)
    again = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url),
                         options=RunOptions(shard=Shard(2, 3)))
    assert again.counts["ok"] == 0 and again.counts["skipped"] == len(second)


async def test_orphan_removal_spares_parts_other_journals_know_and_fresh_ones(start_emulator: Start,
                                                                             tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    await mirror_in_shards(emu, tmp_path, 2)
    theirs = sorted(rows(tmp_path, "journal-1-of-2.sqlite"))[0]
    known = tmp_path / f"{theirs}.asyncdl-part"  # e.g. shard 1 interrupted while fetching it again
    stray = tmp_path / "99" / "gone.bin.asyncdl-part"  # no journal knows it
    fresh = tmp_path / "98" / "new.bin.asyncdl-part"  # a shard running now may not have recorded it yet
    for part in (known, stray, fresh):
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(b"partial")
    since = time.time() - 60
    for part in (known, stray):
        os.utime(part, (since - 10, since - 10))
    changes = remove_orphans(tmp_path, since=since)
    assert changes == ["99/gone.bin.asyncdl-part: no journal row knows this partial file; removed"]
    assert known.exists() and fresh.exists() and not stray.exists()
    summary = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url),
                           options=RunOptions(shard=Shard(2, 2)))
    assert summary.exit_code == 0 and known.exists()  # a shard's run leaves another shard's part alone


async def test_a_layout_without_record_folders_cannot_be_sharded(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"the layout must have \{id\} in a folder"):
        await mirror(Selection(owner="9"), tmp_path, Config(),
                     options=RunOptions(layout="{title}_{key}", shard=Shard(1, 2)))
    with pytest.raises(UsageError, match=r"the layout must have \{id\} in a folder"):
        await mirror(Selection(owner="9"), tmp_path, Config(),
                     options=RunOptions(layout="{key}_{id}", shard=Shard(1, 2)))


def test_shards_share_a_destination_but_not_a_shard(tmp_path: Path) -> None:
    with RunLock(tmp_path, "shard 1", shared=True), RunLock(tmp_path, "shard 1", "lock-1-of-2"):
        with RunLock(tmp_path, "shard 2", shared=True), RunLock(tmp_path, "shard 2", "lock-2-of-2"):
            pass  # two shards at once
        with pytest.raises(LockedError, match="in use by another asyncdl run"):
            RunLock(tmp_path, "shard 1 again", "lock-1-of-2").acquire()
        with pytest.raises(LockedError, match="in use by another asyncdl run"):
            RunLock(tmp_path, "a whole run").acquire()  # not beside shards
    with RunLock(tmp_path, "a whole run"), pytest.raises(LockedError, match="a whole run"):
        RunLock(tmp_path, "shard 1", shared=True).acquire()  # and shards not beside a whole run



async def test_a_file_system_without_locks_runs_unguarded(start_emulator: Start, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Lustre mounted without flock answers ENOSYS: a shard still runs, and warns that it is unguarded."""
    import errno
    import fcntl

    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    monkeypatch.setattr(fcntl, "flock", refuse)
    sink = ListSink()
    summary = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url), sink=sink,
                           options=RunOptions(shard=Shard(1, 2)))
    assert summary.exit_code == 0 and summary.counts["ok"] > 0
    warnings = [e.message for e in sink.events if isinstance(e, Notice) and e.level == "warning"]
    assert any("refuses locks (flock)" in message for message in warnings)
    monkeypatch.undo()
    with RunLock(tmp_path / ".asyncdl", "shard 1", "lock-1-of-2") as held:
        assert held.supported


async def test_another_shards_broken_journal_does_not_fail_this_shard(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    broken = tmp_path / ".asyncdl" / "journal-1-of-2.sqlite"
    broken.parent.mkdir()
    broken.write_bytes(b"not a database, whatever it was" * 100)
    sink = ListSink()
    summary = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url), sink=sink,
                           options=RunOptions(shard=Shard(2, 2)))
    assert summary.exit_code == 0 and summary.counts["ok"] > 0
    warnings = [e.message for e in sink.events if isinstance(e, Notice) and e.level == "warning"]
    assert any(m.startswith("manifest.csv not written: the journal") and "journal-1-of-2" in m for m in warnings)
