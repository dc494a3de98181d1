"""Pure parts of the emulator: content windows, rate-limit windows, queries, ZIP stream; and size units."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncdl.emulator import Dataset
from asyncdl.emulator.content import MAX_CHUNK, PERIOD, ContentSource
from asyncdl.emulator.faults import FaultConfig, FaultPlan
from asyncdl.emulator.query import QueryError, parse_query
from asyncdl.emulator.ratelimit import Limit, MovingWindowLimiter, headers_for
from asyncdl.emulator.zipstream import zip_stream
from asyncdl.units import format_size, parse_size
from tests.datasets import record

SOURCE = ContentSource(0)


@given(offset=st.integers(0, PERIOD - 1), start=st.integers(0, 3 * PERIOD), length=st.integers(0, 3 * MAX_CHUNK),
       chunk=st.sampled_from([1000, 65536, MAX_CHUNK]))
def test_chunks_agree_with_any_other_chunking(offset: int, start: int, length: int, chunk: int) -> None:
    whole = b"".join(SOURCE.iter_range(offset, start, start + length, MAX_CHUNK))
    assert len(whole) == length
    assert b"".join(SOURCE.iter_range(offset, start, start + length, chunk)) == whole


def test_content_period_is_not_a_power_of_two_multiple() -> None:
    first = bytes(SOURCE.chunk(0, 0, 4096))
    assert bytes(SOURCE.chunk(0, 2**20, 4096)) != first  # a 1 MiB shift gives other bytes
    assert bytes(SOURCE.chunk(0, PERIOD, 4096)) == first
    assert SOURCE.md5(5, 3 * 2**20) == hashlib.md5(b"".join(SOURCE.iter_range(5, 0, 3 * 2**20, 2**20))).hexdigest()


def test_moving_window() -> None:
    now = [0.0]
    limiter = MovingWindowLimiter(clock=lambda: now[0])
    limits = [Limit.per(3, "minute", unit_seconds=10)]
    verdicts = []
    for t in (0, 1, 2, 3):
        now[0] = t
        verdicts.append(limiter.hit("ua|ip", limits))
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].reset_in == pytest.approx(7)  # the first hit leaves the window at t=10
    now[0] = 10.0
    assert limiter.hit("ua|ip", limits).allowed
    assert limiter.hit("other|ip", limits).remaining == 2
    headers = headers_for(verdicts[3], wall_now=1000.2)
    assert headers == {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1008",
                       "Retry-After": "7"}


def test_most_constrained_limit_is_reported() -> None:
    limiter = MovingWindowLimiter(clock=lambda: 0.0)
    hourly, minutely = Limit.per(100, "hour", unit_seconds=3600), Limit.per(2, "minute", unit_seconds=60)
    assert limiter.hit("k", [hourly, minutely]).limit == minutely
    limiter.hit("k", [hourly, minutely])
    refused = limiter.hit("k", [hourly, minutely])
    assert not refused.allowed and refused.limit.label == "2 per 1 minute"


@pytest.mark.parametrize("text", ["(unbalanced", "title:[a TO]", "created:[notadate TO 2020-01-01]", ")"])
def test_bad_queries_are_errors(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text).match(record(1))


def test_range_bounds_inclusive_and_exclusive() -> None:
    at_midnight = record(1, created="2020-02-01")
    assert parse_query("created:[2020-01-01 TO 2020-02-01]").match(at_midnight)
    assert not parse_query("created:[2020-01-01 TO 2020-02-01}").match(at_midnight)
    assert parse_query('created:["2020-02-01T00:00:00" TO *]').match(at_midnight)
    assert not parse_query("created:{2020-02-01 TO *]").match(at_midnight)


def test_zip_stream_is_a_valid_archive() -> None:
    data = b"".join(zip_stream([("a.txt", [b"x" * 10, b"y"]), ("d/é.bin", [bytes(range(256)) * 40])]))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.read("a.txt") == b"x" * 10 + b"y"
    assert archive.namelist() == ["a.txt", "d/é.bin"]


@pytest.mark.parametrize(("text", "value"), [("100", 100), ("16KiB", 16384), ("300MB", 300_000_000),
                                             ("5GB", 5_000_000_000), ("1.5GiB", 1610612736), ("2 mib", 2097152)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_parse_size_rejects_garbage_and_format() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size("five gigs")
    assert format_size(1536) == "1.50 KiB" and format_size(12) == "12 B"


def test_429_bursts_take_the_end_of_every_period() -> None:
    plan = FaultPlan(FaultConfig(burst_every=10.0, burst_seconds=2.0))
    assert [plan.burst_left(t) for t in (0.0, 7.9, 8.0, 9.5, 10.0, 18.5)] == [0.0, 0.0, 2.0, 0.5, 0.0, 1.5]
    assert FaultPlan(FaultConfig()).burst_left(8.0) == 0.0  # off by default


def test_a_dataset_file_states_checksum_kinds_and_statuses(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"records": [{"id": 5, "files": [
        {"key": "m.bin", "size": 3000, "checksum": "multipart", "part_size": 1024},
        {"key": "p.txt", "content": "later", "status": "pending"}]}]}), encoding="utf-8")
    multipart, pending = Dataset.from_json(path).records[5].files
    assert (multipart.checksum_kind, multipart.part_size, multipart.status) == ("multipart", 1024, "completed")
    assert (pending.checksum_kind, pending.status) == ("md5", "pending")


def test_a_dataset_file_with_an_unknown_checksum_is_one_line_from_the_command(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"records": [{"id": 5, "files": [{"key": "a", "size": 1, "checksum": "crc"}]}]}',
                    encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "asyncdl", "emulate", "--dataset", str(path), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: --dataset {path}: record 5, file 'a': checksum must be one of md5, sha256, multipart, none, "
        "not 'crc'"]
