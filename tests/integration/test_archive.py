"""--archive never|auto|always: one files-archive request per record when it saves requests, every member
checked against the record's md5; the rules of auto, the cap learned per host, archives that break off."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.accounting import RunSummary
from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.pipeline import mirror
from asyncdl.plan import PlannedFile
from asyncdl.transfer.archive import unpack_member
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio
FILES = {f"part{i}.csv": f"row,{i}\n".encode() * (i + 1) for i in range(5)}


def files_of(record_id: int) -> dict[str, bytes | int]:
    """FILES with bytes of this record's own (the same bytes in two records would be fetched once)."""
    return {key: f"{record_id}:".encode() + value for key, value in FILES.items()}


async def test_one_request_per_record(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, concept=10, files=dict(FILES))]))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, Config(base_url=emu.url),
                           options=RunOptions(archive="always"))
    assert summary.counts["ok"] == 5 and summary.exit_code == 0
    assert all("ZIP archive; md5 verified" in r.reason for r in summary.ok)
    assert emu.stats.requests.get("archive") == 1 and "content" not in emu.stats.requests
    for key, body in FILES.items():
        assert (tmp_path / "11" / key).read_bytes() == body
    assert list((tmp_path / ".asyncdl" / "tmp").iterdir()) == []  # the ZIP is gone once unpacked


async def test_over_the_cap_falls_back_to_files(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, archive_limit=10),
                         dataset=Dataset([record(11, concept=10, files=dict(FILES))]))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, Config(base_url=emu.url),
                           options=RunOptions(archive="always"))
    assert summary.counts["ok"] == 5
    assert emu.stats.statuses[400] == 1 and emu.stats.requests["content"] == 5


def test_a_member_that_does_not_match_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"tampered\n")
        archive.writestr("b.txt", b"good\n")
    source = Record(id="1", title="t")

    def planned(key: str, body: bytes) -> PlannedFile:
        entry = FileEntry(key=key, size=len(body), checksum=Checksum("md5", hashlib.md5(body).hexdigest()), url="x")
        return PlannedFile(source, entry, f"1/{key}")

    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert unpack_member(archive, planned("a.txt", b"original\n"), tmp_path / "a.txt") is None
        assert unpack_member(archive, planned("missing.txt", b"x"), tmp_path / "m.txt") is None
        part = unpack_member(archive, planned("b.txt", b"good\n"), tmp_path / "b.txt")
    assert part is not None and part.read_bytes() == b"good\n"
    assert not (tmp_path / "a.txt.asyncdl-part").exists()


async def run(emu: RunningEmulator, dest: Path, *ids: str, archive: str = "auto",
              **config: object) -> RunSummary:
    settings = Config(base_url=emu.url, backoff_base=0.001, backoff_max=0.005, **config)  # type: ignore[arg-type]
    return await mirror(Selection(identifiers=ids), dest, settings, options=RunOptions(archive=archive))


def each_file_intact(dest: Path, rid: int, files: dict[str, bytes]) -> bool:
    return all((dest / str(rid) / key).read_bytes() == body for key, body in files.items())


async def test_auto_takes_the_archive_of_a_record_of_small_files(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([record(11, files=dict(FILES))]))
    summary = await run(emu, tmp_path, "11")  # auto is the default
    assert summary.counts["ok"] == 5 and each_file_intact(tmp_path, 11, FILES)
    assert emu.stats.requests["archive"] == 1 and emu.stats.requests["content"] == 0
    assert (summary.archives, summary.archive_files, summary.requests_saved) == (1, 5, 4)


@pytest.mark.parametrize(("why", "files", "include", "config"), [
    ("two files", {"a.csv": b"a" * 10, "b.csv": b"b" * 10}, (), {}),
    ("the wanted bytes under half", {**FILES, "big.bin": b"x" * 5000}, ("*.csv",), {}),
    ("a file at the segment threshold", {**FILES, "big.bin": b"x" * 5000}, (), {"segment_threshold": 4096}),
])
async def test_auto_leaves_the_archive_when_it_would_not_pay(start_emulator: Start, tmp_path: Path, why: str,
                                                            files: dict[str, bytes], include: tuple[str, ...],
                                                            config: dict[str, object]) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([record(11, files=dict(files))]))
    settings = Config(base_url=emu.url, **config)  # type: ignore[arg-type]
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, settings, options=RunOptions(include=include))
    assert summary.counts["failed"] == 0 and summary.counts["ok"] >= 2, why
    assert emu.stats.requests["archive"] == 0, why
    assert emu.stats.requests["content"] >= summary.counts["ok"], why  # one each (segments for a large file)
    assert summary.archives == 0 and summary.requests_saved == 0


async def test_always_takes_it_for_two_files_and_never_not_at_all(start_emulator: Start, tmp_path: Path) -> None:
    two = {"a.csv": b"a" * 10, "b.csv": b"b" * 10}
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, files=dict(two)), record(13, files=dict(FILES))]))
    summary = await run(emu, tmp_path / "always", "11", archive="always")
    assert summary.counts["ok"] == 2 and emu.stats.requests["archive"] == 1 and emu.stats.requests["content"] == 0
    summary = await run(emu, tmp_path / "never", "13", archive="never")
    assert summary.counts["ok"] == 5 and emu.stats.requests["archive"] == 1 and emu.stats.requests["content"] == 5


async def test_files_already_there_are_not_fetched_again_through_an_archive(start_emulator: Start,
                                                                            tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([record(11, files=dict(FILES))]))
    (tmp_path / "11").mkdir()
    for key in list(FILES)[:3]:  # put there by hand: adopted after hashing, so two files are left to fetch
        (tmp_path / "11" / key).write_bytes(FILES[key])
    summary = await run(emu, tmp_path, "11")
    assert (summary.counts["skipped"], summary.counts["ok"]) == (3, 2) and each_file_intact(tmp_path, 11, FILES)
    assert emu.stats.requests["archive"] == 0 and emu.stats.requests["content"] == 2


async def test_a_cap_learned_from_a_400_is_not_asked_again(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, archive_limit=50),
                         dataset=Dataset([record(rid, files=files_of(rid)) for rid in (11, 13, 15)]))
    summary = await run(emu, tmp_path, "11", "13", "15", concurrency=1)
    assert summary.counts["ok"] == 15 and summary.counts["failed"] == 0
    assert emu.stats.statuses[400] == 1 and emu.stats.requests["archive"] == 1  # the host's cap: 50 bytes
    assert emu.stats.requests["content"] == 15 and summary.requests_saved == -1


@pytest.mark.parametrize("fault", ["reset", "truncate", "corrupt"])
async def test_an_archive_that_breaks_once_is_asked_for_once_more(start_emulator: Start, tmp_path: Path,
                                                                   fault: str) -> None:
    rates: dict[str, Any] = {fault: 1.0}
    faults = FaultConfig(seed=3, first_attempts=1, **rates)  # the first answer at each URL is broken
    files = {f"f{i}.bin": bytes([i]) * 4000 for i in range(4)}
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=faults),
                         dataset=Dataset([record(11, files=dict[str, bytes | int](files))]))
    summary = await run(emu, tmp_path, "11")
    assert summary.counts["ok"] == 4 and all(r.verified for r in summary.ok) and each_file_intact(tmp_path, 11, files)
    if fault == "corrupt":  # the ZIP came whole; the damaged member alone is fetched again (its md5 or CRC)
        assert emu.stats.requests["archive"] == 1 and emu.stats.requests["content"] >= 1
    else:
        assert emu.stats.requests["archive"] == 2 and emu.stats.requests["content"] == 0
        assert summary.requests_saved == 2
    assert not list(tmp_path.rglob("*.asyncdl-part"))


async def test_a_zip_left_by_a_killed_run_costs_no_request(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset([record(11, files=dict(FILES))]))
    (tmp_path / ".asyncdl" / "tmp").mkdir(parents=True)
    (tmp_path / ".asyncdl" / "tmp" / "11.zip").write_bytes(b"PK half a zip")
    summary = await run(emu, tmp_path, "11")
    assert summary.counts["ok"] == 5 and each_file_intact(tmp_path, 11, FILES)
    assert emu.stats.requests["archive"] == 1 and summary.requests_saved == 4
