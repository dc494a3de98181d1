"""The displays' words: retries with their number and wait, pauses that count down, the counters' line at a
narrow width, and the plain mode's status lines while nothing happens."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from asyncdl.accounting import Accounting
from asyncdl.events import (
    CrawlDone,
    FaultMet,
    FileFinished,
    FileQueued,
    PlanDone,
    RateLimitPaused,
    RatePaced,
    RecordPlanned,
)
from asyncdl.governor import BucketStats, GovernorStats
from asyncdl.progress import Counters, LogProgress, StatusLine, describe_retry, format_eta
from tests.fake_clock import Clock


def test_a_retry_says_which_of_how_many_and_the_wait_left() -> None:
    event = FaultMet("connect", "cannot connect to 127.0.0.1:8765: connection refused", 3, 8, 4.0)
    assert describe_retry(event) == "retrying 3/8 in 4 s: cannot connect to 127.0.0.1:8765: connection refused"
    assert describe_retry(event, 3.5).startswith("retrying 3/8 in 0.5 s: ")
    assert describe_retry(event, 5.0).startswith("retrying 3/8: ")  # the wait is over: the try is under way
    assert describe_retry(FaultMet("429", "rate limited")) == "fault met: rate limited"  # no budget's retry


def test_the_status_line_counts_down_and_then_says_the_latest_retry() -> None:
    clock = Clock()
    status = StatusLine(clock)
    status.retried(FaultMet("5xx", "server error 503 at /x", 1, 8, 2.0))
    status.paused(RatePaced("h:1", "default", 4.0, 0, 133))
    assert status.text() == "paced by the server's rate limit: 0/133 left (default), next request in 4 s"
    clock.now += 2.5
    assert status.text().endswith("next request in 2 s")
    clock.now += 2.0  # the pacing is over: the retry is what is left to say, for a while
    assert status.text() == "retrying 1/8: server error 503 at /x"
    clock.now += StatusLine.SHOWN
    assert status.text() == ""
    status.paused(RateLimitPaused("h:1", "search", 30.0, 0, 30))
    assert re.fullmatch(r"paused by the server's rate limit: 0/30 left \(search\), resumes \d\d:\d\d:\d\d",
                        status.text())


def test_time_left_reads_as_hours_minutes_seconds() -> None:
    assert [format_eta(s) for s in (None, 0, 59.6, 85, 3725)] == ["-:--:--", "0:00:00", "0:01:00", "0:01:25",
                                                                "1:02:05"]


def render(renderable: object, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


def test_the_counters_leave_out_whole_parts_when_narrow() -> None:
    acc = Accounting(Clock())
    acc.governors = lambda: {"zenodo.org:443": GovernorStats({"default": BucketStats(412, 0, 0.0, 133, 87, 60.0)})}
    for i in range(40):
        acc.emit(RecordPlanned(str(i)))
        acc.emit(FileQueued(f"f{i}", 10))
    acc.emit(CrawlDone(records=40, pages=2))
    acc.emit(PlanDone())
    acc.emit(FileFinished("f0", "failed", "not found (404)", 10))
    acc.emit(FileFinished("f1", "skipped", "already there", 10))
    acc.emit(FaultMet("connection", "reset"))
    wide, = render(Counters(acc), 200)
    assert wide == ("crawl done, 40 records · requests 0 · budget zenodo.org 87/133 · faults 1 · failed 1 · checks 1 "
                    "· transfers 1/39")
    narrow, = render(Counters(acc), 60)
    assert len(narrow) <= 60 and narrow.endswith(" …")
    parts = narrow.removesuffix(" …").split(" · ")
    assert parts[0] == "crawl done, 40 records" and "failed 1" in parts  # the most telling stay
    assert set(parts) < set(wide.split(" · "))  # each part shown whole: no number cut


def test_plain_mode_writes_status_lines_while_nothing_happens() -> None:
    acc = Accounting()
    acc.emit(FileQueued("f", 10))
    stream = io.StringIO()
    with LogProgress(stream, acc, interval=0.05) as display:
        display.emit(RateLimitPaused("h:1", "default", 60.0, 0, 133))  # then nothing, for a while
        deadline = time.monotonic() + 10
        while stream.getvalue().count("| paused by") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    lines = stream.getvalue().splitlines()
    status = [line for line in lines if " files 0/1+ " in line]
    assert len(status) >= 3, lines  # the timer wrote them: no event came after the pause
    assert all(re.search(r"\| paused by the server's rate limit: 0/133 left \(default\), resumes \d\d:\d\d:\d\d$",
                         line) for line in status), status
    assert sum(1 for line in lines if "paused 60 s: rate limit" in line) == 1  # the pause itself: once, at once
