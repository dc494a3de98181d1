"""The journal: reconciling with the disk, status, verify and repair, since-last, saved metadata."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.emulator import Dataset, EmulatorConfig, EmulatorThread, RunningEmulator
from asyncdl.errors import LockedError, UsageError
from asyncdl.events import FileFinished, FileStarted
from asyncdl.pipeline import mirror
from asyncdl.status import read_status, verify
from asyncdl.store.journal import Journal, JournalRecorder, Planned
from asyncdl.store.lock import RunLock
from asyncdl.store.names import journal_path
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio


def dataset() -> Dataset:
    return Dataset([record(11, concept=10, files={"a.txt": b"alpha\n", "b.txt": b"beta\n"}, owners=("9",)),
                    record(21, concept=20, files={"c.txt": b"gamma\n"}, owners=("9",))])


async def test_reconcile_deleted_resized_and_orphans(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    assert (await mirror(Selection(owner="9"), tmp_path, config)).counts["ok"] == 3
    (tmp_path / "11" / "a.txt").unlink()  # deleted by hand: fetched again
    (tmp_path / "11" / "b.txt").write_bytes(b"beta\nand more\n")  # changed by hand: verified, replaced
    orphan = tmp_path / "99" / "stray.bin.asyncdl-part"  # a part no journal row knows: removed
    orphan.parent.mkdir()
    orphan.write_bytes(b"junk")
    summary = await mirror(Selection(owner="9"), tmp_path, config)
    assert sorted(r.path for r in summary.ok) == ["11/a.txt", "11/b.txt"]
    assert [r.path for r in summary.skipped] == ["21/c.txt"]
    assert (tmp_path / "11" / "b.txt").read_bytes() == b"beta\n"
    assert not orphan.exists()
    assert emu.stats.requests["search"] == 1  # the second run used the journal's records


async def test_reconcile_tells_the_journal_what_changed_on_disk(start_emulator: Start, tmp_path: Path) -> None:
    """What a run sees at its start: a finished file deleted, resized or touched by hand is pending again
    (and said so); an untouched one stays done; rows not done are left alone."""
    four = Dataset([record(11, concept=10, files={"a.txt": b"alpha\n", "b.txt": b"beta\n"}, owners=("9",)),
                    record(21, concept=20, files={"c.txt": b"gamma\n", "d.txt": b"delta\n"}, owners=("9",))])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=four)
    await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url))
    (tmp_path / "11" / "a.txt").unlink()
    (tmp_path / "11" / "b.txt").write_bytes(b"beta, longer\n")
    touched = tmp_path / "21" / "c.txt"
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 5))  # same size, another mtime
    journal = Journal(journal_path(tmp_path))
    try:
        changes = journal.reconcile(tmp_path)
        states = {row.path: row.state for row in journal.files()}
    finally:
        journal.close()
    assert changes == ["11/a.txt: gone from disk, will be fetched again",
                       "11/b.txt: changed on disk, will be verified again",
                       "21/c.txt: changed on disk, will be verified again"]
    assert states == {"11/a.txt": "pending", "11/b.txt": "pending", "21/c.txt": "pending", "21/d.txt": "done"}
    journal = Journal(journal_path(tmp_path))
    try:
        assert journal.reconcile(tmp_path) == []  # pending rows are not looked at again
    finally:
        journal.close()


async def test_a_finished_file_is_trusted_while_the_disk_and_the_record_agree(start_emulator: Start,
                                                                             tmp_path: Path) -> None:
    """A re-run takes a finished file from the journal without hashing it ("done in an earlier run"); a file
    touched by hand is hashed again ("already present"), one whose record changed is fetched again."""
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config)
    again = await mirror(Selection(owner="9"), tmp_path, config)
    assert {(r.path, r.reason, r.verified) for r in again.skipped} == {
        (path, "done in an earlier run", True) for path in ("11/a.txt", "11/b.txt", "21/c.txt")}
    touched = tmp_path / "11" / "a.txt"
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 5))
    emu.dataset.records[21].files[0] = replace(emu.dataset.records[21].files[0], content=b"GAMMA\n",
                                                 _md5=None)
    third = await mirror(Selection(owner="9"), tmp_path, config, RunOptions(refresh=True))
    assert {(r.path, r.reason) for r in third.skipped} == {
        ("11/a.txt", "already present, md5 verified"), ("11/b.txt", "done in an earlier run")}
    assert [r.path for r in third.ok] == ["21/c.txt"] and (tmp_path / "21" / "c.txt").read_bytes() == b"GAMMA\n"


async def test_the_journal_keeps_failures_and_the_bytes_of_unfinished_files(tmp_path: Path) -> None:
    """What `asyncdl status` reads: a failed file with its reason, and the bytes on disk of each partial file
    (a part of 5 bytes; none at all)."""
    (tmp_path / ".asyncdl").mkdir()
    journal = Journal(journal_path(tmp_path))
    recorder = JournalRecorder(journal, tmp_path)
    for path in ("a.bin", "b.bin", "c.bin"):
        journal.send(Planned(path, "1", path, 10, None, "http://x"))
    for path in ("a.bin", "b.bin"):
        recorder.emit(FileStarted(path, 10, 0))
    recorder.emit(FileFinished("c.bin", "failed", "corrupt: md5 differs", 10))
    journal.close_writer()
    await journal.run_writer()
    (tmp_path / "a.bin.asyncdl-part").write_bytes(b"12345")
    journal.note_partials(tmp_path)
    rows = {row.path: (row.state, row.bytes_done, row.last_error) for row in journal.files()}
    journal.close()
    assert rows == {"a.bin": ("partial", 5, None), "b.bin": ("partial", 0, None),
                    "c.bin": ("failed", 0, "corrupt: md5 differs")}
    status = read_status(tmp_path)
    assert status.bytes_left == 30 - 5 and status.failures == [("c.bin", "corrupt: md5 differs", 1)]


async def test_status_verify_and_repair(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config)
    status = read_status(tmp_path)
    assert status.states["done"].files == 3 and status.bytes_left == 0
    assert status.runs[0]["outcome"] == "complete" and status.runs[0]["ok"] == 3
    (tmp_path / "21" / "c.txt").write_bytes(b"gamma!")  # same size, other bytes: only a hash can tell
    report = await verify(tmp_path, config=config)
    assert (report.checked, report.ok, report.mismatched) == (3, 2, ["21/c.txt"])
    assert read_status(tmp_path).states["failed"].files == 1
    repaired = await verify(tmp_path, config=config, repair=True)
    assert repaired.repaired == ["21/c.txt"] and (tmp_path / "21" / "c.txt").read_bytes() == b"gamma\n"
    assert (await verify(tmp_path, config=config)).mismatched == []


async def test_status_without_a_journal_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no asyncdl journal"):
        read_status(tmp_path)


async def test_manifest_and_saved_metadata(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url), options=RunOptions(save_metadata=True))
    lines = (tmp_path / "manifest.csv").read_text().splitlines()
    assert lines[0] == "record,key,path,size,md5,state" and len(lines) == 4
    alpha = hashlib.md5(b"alpha\n").hexdigest()
    assert f"11,a.txt,11/a.txt,6,{alpha},done" in lines
    saved = json.loads((tmp_path / "11" / "zenodo-record-11.json").read_text())
    assert saved["id"] == 11 and saved["doi"] == "10.5281/zenodo.11"


async def test_since_last_crawls_only_updated_records(start_emulator: Start, tmp_path: Path) -> None:
    data = dataset()
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=data)
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config)
    searches = emu.stats.requests["search"]
    summary = await mirror(Selection(owner="9"), tmp_path, config, options=RunOptions(since_last=True))
    assert emu.stats.requests["search"] == searches + 1  # one search, for updates only
    assert summary.counts["skipped"] == 3 and summary.counts["ok"] == 0


async def test_since_last_fetches_new_records_and_new_files(tmp_path: Path) -> None:
    """The README's promise for --since-last: new records and records updated since the last complete crawl
    are found with one search. The server is restarted on the same address with the newer content."""
    first = EmulatorThread(EmulatorConfig(rate_limits=False), dataset=dataset())
    port = first.start().port
    try:
        await mirror(Selection(owner="9"), tmp_path, Config(base_url=f"http://127.0.0.1:{port}"))
    finally:
        first.stop()
    now = datetime.now(UTC).isoformat()
    newer = Dataset([*dataset().records.values(), record(31, concept=30, files={"new.txt": b"new\n"}, owners=("9",),
                                                             created=now)])
    newer.records[21].files.append(record(21, files={"d.txt": b"delta\n"}).files[0])
    newer.records[21].updated = datetime.now(UTC) + timedelta(hours=1)
    second = EmulatorThread(EmulatorConfig(rate_limits=False, port=port), dataset=newer)
    emu = second.start()
    try:
        summary = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url),
                               options=RunOptions(since_last=True))
    finally:
        second.stop()
    assert emu.stats.requests["search"] == 1  # one search, for updates only
    assert sorted(r.path for r in summary.ok) == ["21/d.txt", "31/new.txt"]
    assert (tmp_path / "31" / "new.txt").read_bytes() == b"new\n" and summary.counts["skipped"] == 3


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with RunLock(tmp_path, "mirror one"), pytest.raises(LockedError, match="mirror one"):
        RunLock(tmp_path, "mirror two").acquire()
    with RunLock(tmp_path, "mirror three"):
        pass


async def test_saved_metadata_is_written_again_from_the_journal_without_a_request(start_emulator: Start,
                                                                                  tmp_path: Path) -> None:
    """Records read back from the journal carry their API JSON only when --save-metadata needs it."""
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config, options=RunOptions(save_metadata=True))
    first = (tmp_path / "11" / "zenodo-record-11.json").read_text()
    (tmp_path / "11" / "zenodo-record-11.json").unlink()
    sent = sum(emu.stats.requests.values())
    await mirror(Selection(owner="9"), tmp_path, config, options=RunOptions(save_metadata=True))
    assert sum(emu.stats.requests.values()) == sent
    assert (tmp_path / "11" / "zenodo-record-11.json").read_text() == first
    journal = Journal(journal_path(tmp_path))
    try:
        ids = journal.selection_ids(next(iter(_selection_keys(journal))))
        assert ids is not None and sorted(ids) == ["11", "21"]
        bare, full = journal.stored_records(ids), journal.stored_records(ids, raw=True)
        assert [r.id for r in bare] == ids and all(r.metadata == {} for r in bare)
        assert [r.id for r in full] == ids and all(r.metadata["id"] == int(r.id) for r in full)
        assert [r.files for r in bare] == [r.files for r in full]
    finally:
        journal.close()


def _selection_keys(journal: Journal) -> list[str]:
    return [key for (key,) in journal.reader.execute("SELECT key FROM selections")]


async def test_a_no_op_rerun_writes_nothing_per_file(start_emulator: Start, tmp_path: Path) -> None:
    """A finished mirror run again: no request, and no file's row is written again (their ``updated``
    stamps stay as they were)."""
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config)

    def stamps() -> list[tuple[str, float]]:
        journal = Journal(journal_path(tmp_path))
        try:
            return journal.reader.execute("SELECT path, updated FROM files ORDER BY path").fetchall()
        finally:
            journal.close()

    before, sent = stamps(), sum(emu.stats.requests.values())
    summary = await mirror(Selection(owner="9"), tmp_path, config)
    assert summary.counts["skipped"] == 3 and sum(emu.stats.requests.values()) == sent
    assert stamps() == before
