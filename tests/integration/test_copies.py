"""Files fetched once per mirror: the same stored file planned twice (by file id, or by md5 and size) is
fetched once and linked into its other places, within a run, across runs and across shards; a linked file
deleted or changed by hand is repaired."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.emulator import Dataset, DatasetSpec, EmulatorConfig, FileSpec, RunningEmulator
from asyncdl.pipeline import mirror
from asyncdl.shard import Shard
from asyncdl.status import read_status, verify
from asyncdl.store.journal import Journal
from asyncdl.store.names import journal_path
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio
SHARED = b"the same bytes in three places\n" * 100
NEVER = RunOptions(archive="never")  # one request per file fetched: the counts below are exact


def dataset() -> Dataset:
    """Record 11 holds SHARED under two names; record 21 holds it again (by md5: other file ids)."""
    return Dataset([record(11, files={"a.bin": SHARED, "copy/a.bin": SHARED, "own.txt": b"eleven\n"}, owners=("9",)),
                    record(21, files={"a.bin": SHARED, "other.txt": b"twenty-one\n"}, owners=("9",))])


def content_requests(emu: RunningEmulator) -> int:
    return emu.stats.requests["content"]


def sources(dest: Path, shard: str = "") -> dict[str, str | None]:
    journal = Journal(journal_path(dest, shard))
    try:
        return dict(journal.reader.execute("SELECT path, source FROM files").fetchall())
    finally:
        journal.close()


async def test_a_file_planned_three_times_is_fetched_once(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    summary = await mirror(Selection(owner="9"), tmp_path, Config(base_url=emu.url), NEVER)
    assert summary.exit_code == 0
    assert summary.counts["ok"] == 3 and summary.counts["linked"] == 2
    assert content_requests(emu) == 3  # a.bin once, own.txt, other.txt
    first = tmp_path / "11" / "a.bin"
    for path in ("11/copy/a.bin", "21/a.bin"):
        assert (tmp_path / path).read_bytes() == SHARED
        assert os.path.samefile(tmp_path / path, first)  # a hard link: no second copy of the bytes on disk
    linked = {r.path: (r.source, r.verified, r.reason) for r in summary.linked}
    assert linked == {path: ("11/a.bin", True, "hard link of 11/a.bin") for path in ("11/copy/a.bin", "21/a.bin")}
    assert sources(tmp_path) == {"11/a.bin": None, "11/copy/a.bin": "11/a.bin", "11/own.txt": None,
                                 "21/a.bin": "11/a.bin", "21/other.txt": None}
    status = read_status(tmp_path)
    assert (status.states["done"].files, status.linked.files, status.linked.bytes) == (5, 2, 2 * len(SHARED))
    report = await verify(tmp_path, config=Config(base_url=emu.url))
    assert (report.checked, report.ok, report.mismatched) == (5, 5, [])


async def test_the_same_file_id_is_one_stored_file(start_emulator: Start, tmp_path: Path) -> None:
    """Versions of a concept that keep their files (the same file id), with --all-versions: the unique files
    are fetched, each once, and every version's folder is complete."""
    spec = DatasetSpec(seed=3, records=6, multi_version_fraction=1.0, max_versions=4, version_keeps=0.8,
                       files_per_record=(3, 5), file_size=(100, 5000), restricted_fraction=0,
                       files_restricted_fraction=0, embargoed_fraction=0, deleted_fraction=0)
    data = Dataset.generate(spec)
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=data)
    summary = await mirror(Selection(query="*", all_versions=True), tmp_path,
                           Config(base_url=emu.url), NEVER)
    planned = [(r, f) for r in data.records.values() for f in r.files]
    unique = {f.file_id: f.size for _, f in planned}
    assert summary.exit_code == 0 and summary.counts["linked"] == len(planned) - len(unique) > 0
    assert content_requests(emu) == len(unique) and emu.stats.bytes_served == sum(unique.values())
    for rec, spec_file in planned:
        assert hashlib.md5((tmp_path / str(rec.id) / spec_file.key).read_bytes()).hexdigest() == \
            data.file_md5(spec_file)


async def test_a_copy_finished_in_an_earlier_run_is_linked(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(identifiers=("11",)), tmp_path, config, NEVER)
    before = content_requests(emu)
    summary = await mirror(Selection(identifiers=("21",)), tmp_path, config, NEVER)
    assert content_requests(emu) == before + 1  # other.txt only
    assert [(r.path, r.source) for r in summary.linked] == [("21/a.bin", "11/a.bin")]


async def test_a_copy_finished_by_another_shard_is_linked(start_emulator: Start, tmp_path: Path) -> None:
    first, second = Shard(1, 2), Shard(2, 2)
    holder = first if first.includes("11") else second
    other = second if holder is first else first
    elsewhere = next(i for i in range(21, 999, 2) if other.includes(str(i)))  # a record of the other shard
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([
        record(11, files={"a.bin": SHARED}, owners=("9",)),
        record(elsewhere, files={"a.bin": SHARED, "other.txt": b"other\n"}, owners=("9",))]))
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config, RunOptions(archive="never", shard=holder))
    assert content_requests(emu) == 1
    summary = await mirror(Selection(owner="9"), tmp_path, config, RunOptions(archive="never", shard=other))
    assert content_requests(emu) == 2  # other.txt only: a.bin came from the other shard's copy
    assert [(r.path, r.source) for r in summary.linked] == [(f"{elsewhere}/a.bin", "11/a.bin")]
    assert sources(tmp_path, other.suffix)[f"{elsewhere}/a.bin"] == "11/a.bin"


async def test_a_linked_file_deleted_or_changed_by_hand_is_repaired(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset())
    config = Config(base_url=emu.url)
    await mirror(Selection(owner="9"), tmp_path, config, NEVER)
    (tmp_path / "21" / "a.bin").unlink()
    before = content_requests(emu)
    again = await mirror(Selection(owner="9"), tmp_path, config, NEVER)
    assert content_requests(emu) == before and [r.path for r in again.linked] == ["21/a.bin"]
    with (tmp_path / "11" / "copy" / "a.bin").open("r+b") as changed:  # written in place: every link sees it
        changed.write(b"THE")
    report = await verify(tmp_path, config=config)
    assert sorted(report.mismatched) == ["11/a.bin", "11/copy/a.bin", "21/a.bin"]
    repaired = await mirror(Selection(owner="9"), tmp_path, config, NEVER)
    assert content_requests(emu) == before + 1  # fetched once more, linked again
    assert repaired.counts["ok"] == 1 and repaired.counts["linked"] == 2
    for path in ("11/a.bin", "11/copy/a.bin", "21/a.bin"):
        assert (tmp_path / path).read_bytes() == SHARED


async def test_a_source_that_fails_leaves_its_copies_to_be_fetched(start_emulator: Start, tmp_path: Path) -> None:
    """Record 11 states SHARED's md5 but serves other bytes: its download fails, and record 21's copy of
    the file, which waited for it, is fetched itself."""
    damaged = record(11, files={"a.bin": SHARED}, owners=("9",))
    damaged.files[0] = FileSpec(key="a.bin", size=len(SHARED), content=b"Y" * len(SHARED),
                                _md5=hashlib.md5(SHARED).hexdigest())
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([damaged, record(21, files={"a.bin": SHARED}, owners=("9",))]))
    summary = await mirror(Selection(identifiers=("11", "21")), tmp_path,
                           Config(base_url=emu.url, max_attempts=1), NEVER)
    assert [(r.path, r.reason.split(":")[0]) for r in summary.failed] == [("11/a.bin", "corrupt")]
    assert [r.path for r in summary.ok] == ["21/a.bin"] and summary.counts["linked"] == 0
    assert (tmp_path / "21" / "a.bin").read_bytes() == SHARED and content_requests(emu) == 2


def test_a_copy_is_made_when_hard_links_are_refused(tmp_path: Path) -> None:
    """Where a hard link cannot be made (another file system), the bytes are copied and md5-checked; a
    source that is not the record's file any more gives nothing."""
    from asyncdl.models import Checksum, FileEntry
    from asyncdl.transfer import copies

    origin = tmp_path / "origin.bin"
    origin.write_bytes(SHARED)
    entry = FileEntry(key="a.bin", size=len(SHARED), url="http://x",
                      checksum=Checksum("md5", hashlib.md5(SHARED).hexdigest()))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", refuse)
        made = copies.make_copy(origin, tmp_path / "part", entry, origin.stat().st_mtime)
    assert made in ("reflink copy", "copy") and (tmp_path / "part").read_bytes() == SHARED
    assert not os.path.samefile(origin, tmp_path / "part")
    assert copies.make_copy(origin, tmp_path / "part2", entry, origin.stat().st_mtime + 1) is None  # changed since
    origin.write_bytes(b"X" * len(SHARED))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", refuse)
        assert copies.make_copy(origin, tmp_path / "part3", entry, None) is None  # another md5
    assert not (tmp_path / "part3").exists()


async def test_a_part_that_is_a_hard_link_is_never_written_into(start_emulator: Start, tmp_path: Path) -> None:
    """A link killed before its commit leaves a part that is another file's hard link. The next run must not
    resume or truncate it (that would change the other file): the part is removed and the file fetched."""
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([
        record(11, files={"a.bin": SHARED}, owners=("9",)),
        record(21, files={"a.bin": b"shorter\n"}, owners=("9",))]))  # a longer part is cut to zero and resumed
    config = Config(base_url=emu.url)
    await mirror(Selection(identifiers=("11",)), tmp_path, config, NEVER)
    (tmp_path / "21").mkdir()
    os.link(tmp_path / "11" / "a.bin", tmp_path / "21" / "a.bin.asyncdl-part")
    summary = await mirror(Selection(identifiers=("21",)), tmp_path, config, NEVER)
    assert [r.path for r in summary.ok] == ["21/a.bin"]
    assert (tmp_path / "11" / "a.bin").read_bytes() == SHARED  # untouched
    assert (tmp_path / "21" / "a.bin").read_bytes() == b"shorter\n"
