"""The transfer engine against the emulator: faults, Range quirks, resume, segments, safe paths."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.accounting import RunSummary
from asyncdl.emulator import Dataset, DatasetSpec, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.errors import BlockedError
from asyncdl.events import FileFiltered, FileFinished, ListSink
from asyncdl.pipeline import mirror
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio


def config_for(emu: RunningEmulator, **overrides: object) -> Config:
    return Config(base_url=emu.url, backoff_base=0.02, backoff_max=0.2, read_timeout=2.0,
                  **overrides)  # type: ignore[arg-type]


def expected_files(emu: RunningEmulator) -> dict[str, str]:
    """relative path -> md5 for every file a guest can download (default layout)."""
    out = {}
    for r in emu.dataset.records.values():
        if r.is_latest and r.searchable and r.files_public:
            for f in r.files:
                out[f"{r.id}/{f.key}"] = emu.dataset.file_md5(f)
    return out


def on_disk(dest: Path) -> dict[str, str]:
    """The downloaded files (the journal folder and the manifest aside)."""
    found = {}
    for p in dest.rglob("*"):
        relative = p.relative_to(dest).as_posix()
        if p.is_file() and not relative.startswith(".asyncdl/") and relative != "manifest.csv":
            found[relative] = hashlib.md5(p.read_bytes()).hexdigest()
    return found


def assert_complete(summary: RunSummary, emu: RunningEmulator, dest: Path) -> None:
    assert [f.reason for f in summary.failed] == []
    assert on_disk(dest) == expected_files(emu)  # every file, verified; no part files, nothing else


@pytest.mark.parametrize("archive", ["never", "auto"])
async def test_faults_everywhere_and_every_file_verified(start_emulator: Start, tmp_path: Path, archive: str) -> None:
    faults = FaultConfig(seed=11, reset=0.1, error_5xx=0.05, corrupt=0.03, stall=0.01, truncate=0.03,
                         error_429=0.02, stall_seconds=20)
    spec = DatasetSpec(records=90, seed=5, files_per_record=(2, 6), file_size=(100, 400_000))
    emu = start_emulator(EmulatorConfig(minute=2.0, faults=faults, dataset=spec))
    summary = await mirror(Selection(query="*"), tmp_path, config_for(emu, concurrency=8),
                           options=RunOptions(archive=archive))
    assert len(summary.ok) > 200
    assert_complete(summary, emu, tmp_path)
    met = emu.stats.faults
    assert met["reset"] and met["corrupt"] and met["truncate"] and met["http_429"]
    assert all(r.verified for r in summary.ok)
    if archive == "never":
        assert met["stall"] and emu.stats.requests["archive"] == 0
    else:  # archives broke too, and were asked for again or gave way to their files
        assert summary.archives > 10 and summary.requests_saved > 0


@pytest.mark.parametrize("mode", ["none", "ui", "api", "both"])
async def test_range_quirks_end_correct(start_emulator: Start, tmp_path: Path, mode: str) -> None:
    faults = FaultConfig(seed=3, reset=0.5, first_attempts=2)
    dataset = Dataset([record(11, concept=10, files={"a.bin": 3_000_000, "b.bin": 2_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode=mode, faults=faults),  # type: ignore[arg-type]
                         dataset=dataset)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu, chunk_size=65536))
    assert_complete(summary, emu, tmp_path)
    assert emu.stats.faults["reset"] >= 1
    if mode == "none":
        assert emu.stats.range_requests == 0  # every resume had to start again from byte 0
    else:
        assert emu.stats.range_requests >= 1


async def test_resume_from_a_part_file_fetches_only_the_rest(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"big.bin": 5_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="ui"), dataset=dataset)
    spec = dataset.records[11].files[0]
    whole = b"".join(dataset.iter_file(spec, 0, spec.size, 1 << 20))
    part = tmp_path / "11" / "big.bin.asyncdl-part"
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[:3_000_000])
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu))
    assert_complete(summary, emu, tmp_path)
    assert emu.stats.file_bytes["11/big.bin"] == 2_000_000
    assert summary.bytes_received == 2_000_000


async def test_200_to_range_truncates_and_starts_over(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"big.bin": 1_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="none"), dataset=dataset)
    part = tmp_path / "11" / "big.bin.asyncdl-part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 400_000)  # garbage a range-ignoring server must not be appended to
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu))
    assert_complete(summary, emu, tmp_path)


async def test_corrupt_part_prefix_is_caught_and_refetched(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"big.bin": 1_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"), dataset=dataset)
    part = tmp_path / "11" / "big.bin.asyncdl-part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\1" * 300_000)  # wrong bytes: the md5 after resuming cannot match
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu))
    assert_complete(summary, emu, tmp_path)
    assert emu.stats.file_bytes["11/big.bin"] == 700_000 + 1_000_000


async def test_segments_under_a_bandwidth_cap(start_emulator: Start, tmp_path: Path) -> None:
    faults = FaultConfig(seed=4, bandwidth=8_000_000, reset=0.3, first_attempts=1)
    dataset = Dataset([record(11, concept=10, files={"big.bin": 12_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="ui", faults=faults), dataset=dataset)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path,
                           config_for(emu, segments=4, segment_threshold=4_000_000, chunk_size=65536))
    assert_complete(summary, emu, tmp_path)
    assert emu.stats.range_requests >= 4


async def test_segmented_part_resumes_from_its_sidecar(start_emulator: Start, tmp_path: Path) -> None:
    import json

    dataset = Dataset([record(11, concept=10, files={"big.bin": 4_000_000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"), dataset=dataset)
    spec = dataset.records[11].files[0]
    whole = b"".join(dataset.iter_file(spec, 0, spec.size, 1 << 20))
    part = tmp_path / "11" / "big.bin.asyncdl-part"
    part.parent.mkdir(parents=True)
    image = bytearray(4_000_000)
    image[0:500_000] = whole[0:500_000]
    image[2_000_000:2_100_000] = whole[2_000_000:2_100_000]
    part.write_bytes(bytes(image))
    sidecar = part.with_name(part.name + ".segments")
    sidecar.write_text(json.dumps({"size": 4_000_000, "segments": [[0, 2_000_000, 500_000],
                                                                   [2_000_000, 4_000_000, 100_000]]}))
    summary = await mirror(Selection(identifiers=("11",)), tmp_path,
                           config_for(emu, segments=2, segment_threshold=1_000_000))
    assert_complete(summary, emu, tmp_path)
    assert emu.stats.file_bytes["11/big.bin"] == 4_000_000 - 600_000


async def test_restricted_deleted_blocked_are_reasons_not_data(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"ok.txt": b"fine\n"}),
                       record(21, concept=20, files={"secret.bin": 100}, access="files-restricted"),
                       record(31, concept=30, files={"later.bin": 100}, access="embargoed")])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    summary = await mirror(Selection(identifiers=("11", "21", "31")), tmp_path, config_for(emu))
    assert [r.path for r in summary.ok] == ["11/ok.txt"]
    assert sorted(summary.inaccessible) == [("21", "files not accessible (restricted)"),
                                            ("31", "files not accessible (embargoed)")]
    assert on_disk(tmp_path) == {"11/ok.txt": hashlib.md5(b"fine\n").hexdigest()}


async def test_blocked_html_page_is_never_saved(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"data.csv": 5000})])
    emu = start_emulator(EmulatorConfig(rate_limits=False, block_generic_user_agents=True), dataset=dataset)
    with pytest.raises(BlockedError, match="unusual traffic"):
        await mirror(Selection(query="*"), tmp_path, config_for(emu, user_agent="Wget/1.21", retries=1))
    assert on_disk(tmp_path) == {}
    summary = await mirror(Selection(query="*"), tmp_path, config_for(emu))  # a descriptive User-Agent is served
    assert len(summary.ok) == 1


async def test_html_page_with_status_200_is_refused(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"data.csv": b"<html>login</html>", "page.html": b"<p>ok</p>"})])
    for spec in dataset.records[11].files:
        spec.mimetype = "text/html"
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu))
    assert [r.path for r in summary.ok] == ["11/page.html"]  # an HTML file is data when it is the file
    assert [r.path for r in summary.failed] == ["11/data.csv"]
    assert "HTML page instead of the file" in summary.failed[0].reason
    assert on_disk(tmp_path) == {"11/page.html": hashlib.md5(b"<p>ok</p>").hexdigest()}


async def test_hostile_keys_stay_inside_dest(start_emulator: Start, tmp_path: Path) -> None:
    spec = DatasetSpec(records=1, seed=2, hostile_keys=True, restricted_fraction=0, files_restricted_fraction=0,
                       embargoed_fraction=0, deleted_fraction=0, multi_version_fraction=0)
    emu = start_emulator(EmulatorConfig(rate_limits=False, dataset=spec))
    dest = tmp_path / "dest"
    before = set(tmp_path.iterdir())
    summary = await mirror(Selection(query="*"), dest, config_for(emu))
    assert summary.failed == []
    assert set(tmp_path.iterdir()) == before | {dest}  # nothing written beside DEST
    written = [dest / p for p in on_disk(dest)]
    assert len(written) == len(summary.ok) == 14
    for path in written:
        assert dest.resolve() in path.resolve().parents
        assert all(len(part.encode()) <= 255 for part in path.relative_to(dest).parts)
        assert not any(c in path.name for c in "\\\x00\x01")
    folded = [p.relative_to(dest).as_posix().casefold() for p in written]
    assert len(set(folded)) == len(folded)  # case and Unicode twins got distinct names
    assert any("saved as" in n or "renamed" in n for n in summary.notes)


async def test_symlink_out_of_dest_is_not_followed(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"data.txt": b"payload\n"})])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "11")
    summary = await mirror(Selection(identifiers=("11",)), dest, config_for(emu))
    assert len(summary.failed) == 1 and "symlink" in summary.failed[0].reason
    assert list(outside.iterdir()) == []


async def test_existing_files_are_adopted_or_replaced(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, files={"good.txt": b"good\n", "bad.txt": b"right\n"})])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    (tmp_path / "11").mkdir()
    (tmp_path / "11" / "good.txt").write_bytes(b"good\n")
    (tmp_path / "11" / "bad.txt").write_bytes(b"wrong\n")
    summary = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu))
    assert [r.path for r in summary.skipped] == ["11/good.txt"]
    assert [r.path for r in summary.ok] == ["11/bad.txt"]
    assert (tmp_path / "11" / "bad.txt").read_bytes() == b"right\n"
    assert emu.stats.requests["content"] == 1


async def test_filters_layout_and_dry_run(start_emulator: Start, tmp_path: Path) -> None:
    dataset = Dataset([record(11, concept=10, title="IODP Expedition 374 Alkalinity and pH", created="2019-08-10",
                              files={"a.csv": b"1\n", "b.zip": 50_000, "README.txt": b"r\n"})])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    planned: list[str] = []
    await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu),
                 options=RunOptions(dry_run=True, exclude=("*.zip",), layout="{year}/{title}_{id}/{key}"),
                 on_plan=lambda item: planned.append(item.path))
    assert planned == ["2019/IODP Expedition 374 Alkalinity and pH_11/README.txt",
                                             "2019/IODP Expedition 374 Alkalinity and pH_11/a.csv"]
    assert on_disk(tmp_path) == {} and "content" not in emu.stats.requests
    events = ListSink()
    real = await mirror(Selection(identifiers=("11",)), tmp_path, config_for(emu),
                        options=RunOptions(include=("*.csv", "*.zip"), max_file_size=10_000), sink=events)
    assert [r.path for r in real.ok] == ["11/a.csv"] and real.counts["filtered"] == 2
    reasons = sorted(e.reason for e in events.events if isinstance(e, FileFiltered))
    assert reasons == ["larger than --max-file-size (50000 bytes)", "not matched by --include"]


async def test_hashing_a_file_already_there_holds_no_download_slot(start_emulator: Start, tmp_path: Path) -> None:
    """With one download at a time, files keep downloading while a large file already at its name is hashed
    (the checkers have a limit of their own)."""
    dataset = Dataset([record(11, concept=10, files={"big.bin": 150_000_000}),
                       record(13, concept=12, files={f"s{i}.txt": 100 + i for i in range(5)})])
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=dataset)
    spec = dataset.records[11].files[0]
    (tmp_path / "11").mkdir()
    with (tmp_path / "11" / "big.bin").open("wb") as stream:
        for block in dataset.iter_file(spec, 0, spec.size, 1 << 22):
            stream.write(block)
    events = ListSink()
    summary = await mirror(Selection(query="*"), tmp_path, config_for(emu, concurrency=1, checkers=1), sink=events)
    assert summary.counts["ok"] == 5 and summary.counts["skipped"] == 1
    order = [e.path for e in events.events if isinstance(e, FileFinished)]
    assert order.index("11/big.bin") > 0, order  # small files finished while the big one was being hashed
    assert "11/big.bin" not in emu.stats.file_bytes
