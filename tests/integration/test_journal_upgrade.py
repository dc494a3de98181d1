"""A mirror started by release 0.1.0 resumes under this one: its journal (no schema version) is migrated,
its part files and segment sidecar (no version field) are resumed from the bytes on disk. Formats newer
than this release knows are refused with a clear error, never guessed at."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asyncdl import Config, Selection
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import JournalError
from asyncdl.pipeline import mirror
from asyncdl.store import schema
from asyncdl.store.schema import SCHEMA_VERSION
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio
FIXTURE = Path(__file__).parents[1] / "fixtures" / "journal-v0" / "dest"
KEPT = {"11/big.bin": 150_000, "13/a.csv": 65_536, "13/sub/b.csv": 65_536, "15/c.txt": 5_000}  # see its README


def dataset() -> Dataset:
    return Dataset([record(11, concept=10, files={"big.bin": 400_000}),
                    record(13, concept=12, files={"a.csv": 120_000, "sub/b.csv": 90_000}),
                    record(15, concept=14, files={"c.txt": 5_000})])


def old_destination(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    shutil.copytree(FIXTURE, dest)
    return dest


def settings(emu: RunningEmulator) -> Config:
    return Config(base_url=emu.url, segment_threshold=200_000, segments=2)  # as the fixture was made


async def test_a_mirror_of_release_0_1_0_is_migrated_and_resumed(start_emulator: Start, tmp_path: Path) -> None:
    dest = old_destination(tmp_path)
    with sqlite3.connect(dest / ".asyncdl" / "journal.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (0,)
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"), dataset=dataset())
    summary = await mirror(Selection(query="*"), dest, settings(emu))
    outcomes = {r.path: r.outcome for r in summary.results}
    assert outcomes == {"11/big.bin": "ok", "13/a.csv": "ok", "13/sub/b.csv": "ok", "15/c.txt": "skipped"}
    sizes = {f"{r.id}/{f.key}": f.size for r in emu.dataset.records.values() for f in r.files}
    served = emu.stats.file_bytes
    assert {path: served.get(path, 0) for path in sizes} == {path: sizes[path] - KEPT[path] for path in sizes}
    for r in emu.dataset.records.values():
        for f in r.files:
            assert hashlib.md5((dest / str(r.id) / f.key).read_bytes()).hexdigest() == emu.dataset.file_md5(f)
    with sqlite3.connect(dest / ".asyncdl" / "journal.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert [row[0] for row in db.execute("SELECT outcome FROM runs ORDER BY id")] == ["interrupted", "complete"]
        stated = list(db.execute("SELECT checksum, md5 FROM files"))
    assert len(stated) == 4 and all(checksum == f"md5:{md5}" for checksum, md5 in stated)  # kept, or filled in
    assert list(dest.rglob("*.asyncdl-part*")) == []


async def test_a_journal_of_a_newer_release_is_refused(start_emulator: Start, tmp_path: Path) -> None:
    dest = old_destination(tmp_path)
    with sqlite3.connect(dest / ".asyncdl" / "journal.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    with pytest.raises(JournalError, match=rf"was written by a newer asyncdl \(schema {SCHEMA_VERSION + 1}; this "
                                           rf"one knows up to {SCHEMA_VERSION}\)"):
        await mirror(Selection(query="*"), dest, settings(emu))
    assert emu.stats.requests["content"] == 0


async def test_a_sidecar_of_a_newer_release_fails_its_file_and_keeps_its_part(start_emulator: Start,
                                                                           tmp_path: Path) -> None:
    dest = old_destination(tmp_path)
    sidecar = dest / "11" / "big.bin.asyncdl-part.segments"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "version": 2}))
    part = (dest / "11" / "big.bin.asyncdl-part").read_bytes()
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"), dataset=dataset())
    summary = await mirror(Selection(query="*"), dest, settings(emu))
    reasons = {r.path: (r.outcome, r.reason) for r in summary.results}
    outcome, reason = reasons["11/big.bin"]
    assert outcome == "failed" and "is of version 2, which this asyncdl does not know" in reason
    assert (dest / "11" / "big.bin.asyncdl-part").read_bytes() == part  # nothing guessed, nothing lost
    assert emu.stats.file_bytes.get("11/big.bin", 0) == 0
    assert reasons["13/a.csv"][0] == "ok"


async def test_a_new_journal_carries_the_schema_version(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    summary = await mirror(Selection(identifiers=("15",)), tmp_path, settings(emu))
    assert summary.counts["ok"] == 1
    with sqlite3.connect(tmp_path / ".asyncdl" / "journal.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) and SCHEMA_VERSION >= 1


def test_a_migration_that_fails_leaves_the_journal_as_it_was(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step is one transaction: a step that breaks half-way is rolled back whole (no table of it stays,
    the version is not raised), the error reaches the caller, and the connection is usable again."""
    monkeypatch.setitem(schema.MIGRATIONS, 1, schema.MIGRATIONS[1] + ";\nINSERT INTO no_such_table VALUES (1)")
    db = sqlite3.connect(tmp_path / "journal.sqlite", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        schema.migrate(db, tmp_path / "journal.sqlite")
    assert not db.in_transaction
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()


def test_a_journal_migrated_by_another_process_meanwhile_is_not_migrated_twice(tmp_path: Path) -> None:
    """Shards read each other's journals, so two processes may find one journal unmigrated at once. Here
    another connection migrates it between this one's reading of the version and its first step: each step
    is then seen as taken (before, the second ALTER TABLE failed with 'duplicate column name')."""
    path = tmp_path / "journal-1-of-2.sqlite"

    class Raced(sqlite3.Connection):
        raced = False

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "BEGIN IMMEDIATE" and not Raced.raced:
                Raced.raced = True
                other = sqlite3.connect(path, isolation_level=None)
                schema.migrate(other, path)
                other.close()
            return super().execute(sql, *args)

    db = sqlite3.connect(path, timeout=30, isolation_level=None, factory=Raced)
    schema.migrate(db, path)
    assert Raced.raced and db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()
