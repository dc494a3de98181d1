"""--archive: one files-archive request per record, every member checked against the record's md5."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.pipeline import mirror
from asyncdl.plan import PlannedFile
from asyncdl.transfer.archive import unpack_member
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio
FILES = {f"part{i}.csv": f"row,{i}\n".encode() * (i + 1) for i in range(5)}


async def test_one_request_per_record(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, concept=10, files=dict(FILES))]))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, Config(base_url=emu.url),
                           options=RunOptions(archive=True))
    assert summary.counts["ok"] == 5 and summary.exit_code == 0
    assert all("ZIP archive; md5 verified" in r.reason for r in summary.ok)
    assert emu.stats.requests.get("archive") == 1 and "content" not in emu.stats.requests
    for key, body in FILES.items():
        assert (tmp_path / "11" / key).read_bytes() == body
    assert not (tmp_path / ".asyncdl" / "tmp").exists()  # the ZIP is gone once unpacked


async def test_over_the_cap_falls_back_to_files(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, archive_limit=10),
                         dataset=Dataset([record(11, concept=10, files=dict(FILES))]))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, Config(base_url=emu.url),
                           options=RunOptions(archive=True))
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
