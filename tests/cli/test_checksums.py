"""Checksums beyond md5, through `asyncdl mirror`, `get` and `verify` as subprocesses against the emulator:
multipart ETags, sha256, none stated, and files the server has not completed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, FileSpec, RecordSpec, RunningEmulator
from asyncdl.emulator.content import ContentSource
from tests.cli.test_mirror import asyncdl

Start = Callable[..., RunningEmulator]
PART = 100_000
WHEN = datetime(2021, 3, 4, tzinfo=UTC)


def spec(record_id: int, key: str, size: int, kind: Any = "md5", **extra: Any) -> FileSpec:
    return FileSpec(key=key, size=size, offset=ContentSource.offset_for(f"{record_id}/{key}", 0),
                    file_id=f"f{record_id}-{key}", checksum_kind=kind, **extra)


def one_record(*files: FileSpec, record_id: int = 11) -> Dataset:
    return Dataset([RecordSpec(id=record_id, conceptrecid=record_id - 1, title="Checksums", created=WHEN,
                               updated=WHEN, publication_date="2021-03-04", version_index=0, owners=("42",),
                               communities=(), files=list(files))])


def kinds() -> Dataset:
    return one_record(
        spec(11, "three.bin", 2 * PART + 50_000, "multipart", part_size=PART),
        spec(11, "single.bin", 50_000, "multipart", part_size=PART),
        spec(11, "exact.bin", 2 * PART, "multipart", part_size=PART),
        spec(11, "sha.bin", 70_000, "sha256"),
        spec(11, "plain.bin", 1_000),
        spec(11, "none.bin", 3_000, "none"),
        spec(11, "later.bin", 4_000, "sha256", status="pending"))


def events(result: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    finished = {e["path"]: e for e in lines if e["event"] == "FileFinished"}
    return finished, lines[-1]


def test_every_checksum_kind_is_verified_or_said_to_be_size_checked(start_emulator: Start, tmp_path: Path) -> None:
    # search hits without files: asyncdl asks each record's native listing, which states each file's status
    emu = start_emulator(EmulatorConfig(rate_limits=False, search_files_limit=0), dataset=kinds())
    dest = tmp_path / "m"
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest), "--progress", "json",
                     "--archive", "never")
    finished, summary = events(result)
    told = {path: (e["outcome"], e["verified"], e["reason"]) for path, e in finished.items()}
    assert told == {
        "11/three.bin": ("ok", True, f"multipart checksum verified (3 parts of {PART} bytes)"),
        "11/single.bin": ("ok", True, f"multipart checksum verified (1 part of {PART} bytes)"),
        "11/exact.bin": ("ok", True, f"multipart checksum verified (2 parts of {PART} bytes)"),
        "11/sha.bin": ("ok", True, "sha256 verified"),
        "11/plain.bin": ("ok", True, ""),
        "11/none.bin": ("ok", False, "size checked only; the record gives no checksum"),
    }
    # the pending file: not downloaded, not a failure, but the run does not claim to be complete (exit 5)
    assert summary["failed"] == 0 and summary["exit_code"] == 5 and result.returncode == 5
    assert summary["unavailable"] == [{"path": "11/later.bin", "record": "11", "key": "later.bin",
                                       "reason": 'skipped: the server says the file is "pending", not completed'}]
    assert not (dest / "11" / "later.bin").exists()
    for name in ("three", "single", "exact", "sha", "plain", "none"):
        file = next(f for f in emu.dataset.records[11].files if f.key == f"{name}.bin")
        assert (dest / "11" / file.key).read_bytes() == b"".join(emu.dataset.iter_file(file, 0, file.size, 1 << 20))
    with sqlite3.connect(dest / ".asyncdl" / "journal.sqlite") as db:
        stated = dict(db.execute("SELECT path, checksum FROM files"))
        outcome = db.execute("SELECT outcome FROM runs").fetchone()[0]
    assert stated["11/sha.bin"].startswith("sha256:") and stated["11/none.bin"] is None
    assert stated["11/three.bin"].startswith("multipart:") and stated["11/three.bin"].endswith(f"-3-{PART}")
    assert "11/later.bin" not in stated and outcome == "complete except unavailable"

    plain = asyncdl("mirror", "--base-url", emu.url, "--owner", "42", str(dest))
    assert plain.returncode == 5 and "0 ok, 6 already there" in plain.stderr and "0 failed" in plain.stderr
    assert 'not downloaded: 11/later.bin: skipped: the server says the file is "pending", not completed' \
        in plain.stderr

    verified = asyncdl("verify", str(dest))
    assert verified.returncode == 0, verified.stderr
    assert "size checked only; the record gives no checksum: 11/none.bin" in verified.stderr
    assert "verified 6 files: 6 ok (1 by size only), 0 mismatched" in verified.stderr
    damaged = bytearray((dest / "11" / "sha.bin").read_bytes())
    damaged[12_345] ^= 0x01
    (dest / "11" / "sha.bin").write_bytes(bytes(damaged))
    again = asyncdl("verify", str(dest))
    assert again.returncode == 1
    assert "mismatch: 11/sha.bin: sha256 " in again.stderr and "differs from the record's" in again.stderr
    assert "verified 6 files: 5 ok (1 by size only), 1 mismatched" in again.stderr


def test_a_corrupt_body_never_reaches_its_final_name(start_emulator: Start, tmp_path: Path) -> None:
    dataset = one_record(spec(11, "sha.bin", 70_000, "sha256"), spec(11, "parts.bin", 250_000, "multipart",
                                                                      part_size=PART))
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(corrupt=1.0)), dataset=dataset)
    result = asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--max-attempts", "2")
    assert result.returncode == 1
    assert "failed: 11/sha.bin: corrupt: sha256 " in result.stderr
    assert "failed: 11/parts.bin: corrupt: multipart checksum " in result.stderr
    assert not (tmp_path / "11" / "sha.bin").exists() and not (tmp_path / "11" / "parts.bin").exists()
    assert list(tmp_path.rglob("*.asyncdl-part*")) == []


def test_a_segmented_download_of_a_multipart_file_verifies(start_emulator: Start, tmp_path: Path) -> None:
    size = 3 * 1024 * 1024 + 12_345
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"),
                         dataset=one_record(spec(11, "big.bin", size, "multipart", part_size=1024 * 1024)))
    result = asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--segments", "4",
                     "--segment-threshold", "1000000", "--progress", "json")
    assert result.returncode == 0, result.stderr
    finished, _ = events(result)
    assert (finished["11/big.bin"]["outcome"], finished["11/big.bin"]["verified"]) == ("ok", True)
    assert finished["11/big.bin"]["reason"] == "multipart checksum verified (4 parts of 1048576 bytes)"
    assert emu.stats.requests["content"] > 1  # in segments, not one stream


def test_bodies_cut_short_resume_and_still_verify(start_emulator: Start, tmp_path: Path) -> None:
    # every first request of a file ends early: the resume hashes the bytes kept, then the rest, in order
    dataset = one_record(spec(11, "sha.bin", 300_000, "sha256"), spec(11, "parts.bin", 350_000, "multipart",
                                                                       part_size=PART))
    faults = FaultConfig(truncate=1.0, first_attempts=1)
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=faults), dataset=dataset)
    result = asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--progress", "json")
    assert result.returncode == 0, result.stderr
    finished, _ = events(result)
    assert {path: (e["outcome"], e["verified"]) for path, e in finished.items()} == {
        "11/sha.bin": ("ok", True), "11/parts.bin": ("ok", True)}
    assert emu.stats.faults["truncate"] >= 2


def test_a_part_left_by_an_earlier_run_is_rehashed_and_resumed(start_emulator: Start, tmp_path: Path) -> None:
    dataset = one_record(spec(11, "sha.bin", 300_000, "sha256"), spec(11, "parts.bin", 350_000, "multipart",
                                                                       part_size=PART))
    emu = start_emulator(EmulatorConfig(rate_limits=False, range_mode="both"), dataset=dataset)
    kept = 123_457  # not on a part boundary
    for file in emu.dataset.records[11].files:
        part = tmp_path / "11" / f"{file.key}.asyncdl-part"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"".join(emu.dataset.iter_file(file, 0, kept, 1 << 20)))
    result = asyncdl("get", "--base-url", emu.url, "11", "-o", str(tmp_path), "--progress", "json")
    assert result.returncode == 0, result.stderr
    finished, _ = events(result)
    assert {path: (e["outcome"], e["verified"]) for path, e in finished.items()} == {
        "11/sha.bin": ("ok", True), "11/parts.bin": ("ok", True)}
    assert sorted(emu.stats.file_bytes.values()) == [300_000 - kept, 350_000 - kept]
