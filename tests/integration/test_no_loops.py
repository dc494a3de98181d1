"""No file can cost unbounded requests: bodies that end early, Range ignored or answered wrongly, drips,
archives that break off, and a run whose every request fails. Each case ends in a counted number of
requests with the right outcome."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.accounting import RunSummary
from asyncdl.errors import NoProgressError
from asyncdl.pipeline import mirror
from asyncdl.transfer import RequestCeiling
from tests.scripted import Script, ScriptedServer

pytestmark = pytest.mark.anyio
RETRIES = 3
BODY = b"0123456789"
BIG = os.urandom(64 * 1024)  # 8 pieces of 8 KiB with 2 segments at a 16 KiB threshold


def settings(server: ScriptedServer, **overrides: object) -> Config:
    values: dict[str, object] = {"base_url": server.base, "retries": RETRIES, "backoff_base": 0.001,
                                 "backoff_max": 0.005, "read_timeout": 5.0, "concurrency": 2}
    return Config(**{**values, **overrides})  # type: ignore[arg-type]


async def mirror_one(script: Script, tmp_path: Path, **overrides: object) -> tuple[RunSummary, ScriptedServer]:
    server = ScriptedServer({1: script})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), tmp_path, settings(server, **overrides))
    return summary, server


def outcome(summary: RunSummary) -> tuple[str, str]:
    (result,) = summary.results
    return result.outcome, result.reason


@pytest.mark.parametrize("md5", [True, False])
async def test_short_bodies_and_range_ignored_fail_after_the_retries(tmp_path: Path, md5: bool) -> None:
    summary, server = await mirror_one(Script(end_at=5, md5=md5), tmp_path)
    assert outcome(summary) == ("failed", f"the server ended the body at byte 5 of 10, {RETRIES + 1} times "
                                          "without getting further")
    # the first try brings 5 bytes; asking from byte 5 teaches that neither URL honours Range (2 requests,
    # not tries); then each try brings the same 5 bytes again, and the budget is spent
    assert server.file_requests(1) == 1 + 2 + (RETRIES + 1)
    assert not (tmp_path / "1" / "a.bin").exists()
    assert summary.faults["short"] == RETRIES + 2


async def test_short_bodies_with_range_honoured_end_at_the_same_place(tmp_path: Path) -> None:
    summary, server = await mirror_one(Script(ranges=True, end_at=5), tmp_path)
    assert outcome(summary)[0] == "failed" and "at byte 5 of 10" in outcome(summary)[1]
    assert server.file_requests(1) == 1 + (RETRIES + 1)  # every 206 from byte 5 is empty
    assert (tmp_path / "1" / "a.bin.asyncdl-part").read_bytes() == BODY[:5]  # kept for a later resume


async def test_short_206s_that_progress_complete_the_file(tmp_path: Path) -> None:
    summary, server = await mirror_one(Script(ranges=True, per_answer=3), tmp_path)
    assert outcome(summary) == ("ok", "")
    assert summary.results[0].verified
    assert server.file_requests(1) == 4  # 0-2, 3-5, 6-8, 9
    assert (tmp_path / "1" / "a.bin").read_bytes() == BODY


async def test_a_short_body_is_the_file_when_the_record_gives_no_size(tmp_path: Path) -> None:
    summary, server = await mirror_one(Script(end_at=5, md5=False, size=False), tmp_path)
    assert outcome(summary) == ("ok", "not verified: the record gives no size and no checksum")
    assert server.file_requests(1) == 1


async def test_a_drip_is_stopped_by_the_request_ceiling(tmp_path: Path) -> None:
    """One more byte per try is progress every time; only the ceiling ends it."""
    body = bytes(range(200))
    summary, server = await mirror_one(Script(body=body, ranges=True, per_answer=1), tmp_path, max_attempts=1)
    ceiling = RequestCeiling.for_file(len(body), settings(server, max_attempts=1)).limit
    assert ceiling == 1 * (RETRIES + 1) + 1 + 2
    assert outcome(summary) == ("failed", f"gave up after {ceiling} requests for 1/a.bin, the most one file of "
                                          "its size may cost with these retry and segment settings")
    assert server.file_requests(1) == ceiling


@pytest.mark.parametrize("script", [Script(body=BIG, ranges=True, per_answer=3000)], ids=["short-206s"])
async def test_segments_with_short_206s_complete(tmp_path: Path, script: Script) -> None:
    summary, server = await mirror_one(script, tmp_path, segments=2, segment_threshold=16 * 1024)
    assert outcome(summary) == ("ok", "") and summary.results[0].verified
    assert server.file_requests(1) == 8 * 3  # each 8 KiB piece in three short answers
    assert (tmp_path / "1" / "a.bin").read_bytes() == BIG


async def test_segments_whose_bodies_end_early_fail_in_bounded_requests(tmp_path: Path) -> None:
    summary, server = await mirror_one(Script(body=BIG, ranges=True, end_at=40_000), tmp_path, segments=2,
                                       segment_threshold=16 * 1024)
    result, reason = outcome(summary)
    assert result == "failed" and "times without getting further" in reason
    assert server.file_requests(1) <= 8 * (1 + RETRIES + 1)
    assert not (tmp_path / "1" / "a.bin").exists()


async def test_an_archive_that_breaks_off_is_asked_for_once_more_then_its_files_one_by_one(tmp_path: Path) -> None:
    extra = {"b.bin": b"b" * 1000, "c.bin": b"c" * 2000}
    summary, server = await _archive_run(Script(extra_files=extra, archive_cut=100), tmp_path, "never")
    assert summary.counts["ok"] == 3 and all(r.verified for r in summary.results)
    assert server.served["/api/records/1/files-archive"] == 0  # never: not asked for
    summary, server = await _archive_run(Script(extra_files=extra, archive_cut=100), tmp_path / "z", "auto")
    assert summary.counts["ok"] == 3 and all(r.verified for r in summary.results)
    assert server.served["/api/records/1/files-archive"] == 2  # once more, then no more
    assert server.file_requests(1) == 1 and server.served["/api/records/1/files/b.bin/content"] == 1
    assert (summary.archives, summary.requests_saved) == (0, -2)  # the two wasted requests are told
    for key, body in {"a.bin": BODY, **extra}.items():
        assert (tmp_path / "z" / "1" / key).read_bytes() == body


async def _archive_run(script: Script, dest: Path, archive: str) -> tuple[RunSummary, ScriptedServer]:
    server = ScriptedServer({1: script})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), dest, settings(server),
                               options=RunOptions(archive=archive))
    return summary, server


def failing(count: int) -> ScriptedServer:
    return ScriptedServer({rid: Script(status=503, body=f"file {rid}".encode()) for rid in range(1, count + 1)})


async def test_the_brake_stops_a_run_whose_requests_all_fail(tmp_path: Path) -> None:
    server = failing(60)
    async with server.running():
        config = settings(server, retries=0, token="t", no_progress_requests=10, no_progress_seconds=0)
        with pytest.raises(NoProgressError, match=r"stopped after 10 requests in \d+ s brought no new bytes, no "
                                                  r"finished file and no record; the last problem: server error 503"):
            await mirror(Selection(query="*"), tmp_path, config)
    assert server.served["search"] == 1  # one page of 60 (a token's page size): that was progress
    assert sum(server.file_requests(rid) for rid in range(1, 61)) == 10


async def test_the_brake_is_a_one_line_error_on_the_command_line(tmp_path: Path) -> None:
    server = failing(20)  # one guest page: its answer is the only progress, so exactly 5 file requests follow
    async with server.running():
        env = {**os.environ, "ASYNCDL_NO_PROGRESS_REQUESTS": "5", "ASYNCDL_NO_PROGRESS_SECONDS": "0"}
        done = await anyio.run_process([sys.executable, "-m", "asyncdl", "mirror", "--query", "*", "--base-url",
                                        server.base, "--retries", "0", "-q", str(tmp_path / "m")], env=env,
                                       check=False)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.startswith("error: stopped after 5 requests") and stderr.count("\n") == 1, stderr
    assert sum(server.file_requests(rid) for rid in range(1, 21)) == 5


async def test_the_brake_lets_definitive_answers_through(tmp_path: Path) -> None:
    """403s and 404s are answers: a selection of many restricted files is not a storm."""
    server = ScriptedServer({rid: Script(status=403) for rid in range(1, 31)})
    async with server.running():
        config = settings(server, retries=0, token="t", no_progress_requests=5, no_progress_seconds=0)
        summary = await mirror(Selection(query="*"), tmp_path, config)
    assert summary.counts["failed"] == 30 and all("restricted (403)" in r.reason for r in summary.failed)


async def test_the_brake_counts_progress_as_progress(tmp_path: Path) -> None:
    """A tight brake (two requests without progress) lets through downloads that get further with each
    request: short 206s that each bring bytes, and a segmented file of eight pieces."""
    summary, server = await mirror_one(Script(ranges=True, per_answer=3), tmp_path / "a", no_progress_requests=2,
                                       no_progress_seconds=0)
    assert outcome(summary) == ("ok", "") and server.file_requests(1) == 4
    assert summary.bytes_received == len(BODY)  # each short answer's bytes counted once
    summary, server = await mirror_one(Script(body=BIG, ranges=True), tmp_path / "b", no_progress_requests=2,
                                       no_progress_seconds=0, segments=2, segment_threshold=16 * 1024)
    assert outcome(summary) == ("ok", "") and server.file_requests(1) == 8


@pytest.mark.parametrize("status", [403, 404, 400])
async def test_an_archive_refused_for_good_is_asked_for_once(tmp_path: Path, status: int) -> None:
    extra = {"b.bin": b"b" * 1000, "c.bin": b"c" * 2000}
    summary, server = await _archive_run(Script(extra_files=extra, archive_status=status), tmp_path, "auto")
    assert summary.counts["ok"] == 3 and all(r.verified for r in summary.results)
    assert server.served["/api/records/1/files-archive"] == 1  # a definitive answer is not asked again
    assert summary.faults == {} and summary.requests_saved == -1
