"""The one accounting: counts from events, speed and time left over a moving window."""

from __future__ import annotations

from asyncdl.accounting import Accounting
from asyncdl.errors import RateLimitedError, fault_kind
from asyncdl.events import (
    CrawlDone,
    FaultMet,
    FileAdvanced,
    FileFinished,
    FileQueued,
    FileStarted,
    RequestSent,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_speed_is_over_the_window_not_since_the_start() -> None:
    clock = Clock()
    acc = Accounting(clock, window=10.0)
    acc.emit(FileQueued("a", 1000))
    acc.emit(CrawlDone(records=1, pages=1))
    clock.now += 100  # a long crawl or a rate-limit pause: nothing arrived
    acc.emit(FileStarted("a", 1000, 0))
    for _ in range(10):  # then 10 bytes a second for 10 s
        clock.now += 1
        acc.emit(FileAdvanced("a", 10))
    assert 9.0 <= acc.speed() <= 11.0  # an average since the start would say under 1
    eta = acc.eta()
    assert eta is not None and 85 <= eta <= 100  # 900 bytes left at 10 a second
    clock.now += 30  # nothing more arrives: the speed falls to 0 and there is no time left to tell
    assert acc.speed() == 0.0 and acc.eta() is None


def test_no_time_left_before_the_crawl_is_done() -> None:
    clock = Clock()
    acc = Accounting(clock)
    acc.emit(FileQueued("a", 100))
    acc.emit(FileStarted("a", 100, 0))
    clock.now += 1
    acc.emit(FileAdvanced("a", 50))
    assert acc.speed() > 0 and acc.eta() is None  # more files may still be found


def test_each_429_and_each_request_is_counted_once() -> None:
    acc = Accounting(Clock())
    for _ in range(3):
        acc.emit(RequestSent("zenodo.org:443"))
    acc.emit(FaultMet(fault_kind(RateLimitedError("429")), "rate limited"))
    acc.emit(FaultMet("connection", "reset"))
    summary = acc.summary
    assert summary.requests == 3 and summary.rate_limited == 1 and summary.faults == {"429": 1, "connection": 1}


def test_results_come_from_the_events() -> None:
    acc = Accounting(Clock())
    acc.emit(FileQueued("a", 10))
    acc.emit(FileStarted("a", 10, 0))
    acc.emit(FileAdvanced("a", 10))
    acc.emit(FileFinished("a", "ok", "", 10, "1", "a.bin", 10, True))
    acc.emit(FileFinished("b", "failed", "not found (404)", 5, "1", "b.bin"))
    summary = acc.summary
    assert summary.counts["ok"] == 1 and summary.bytes_received == 10 and summary.exit_code == 1
    assert [(r.path, r.reason) for r in summary.failed] == [("b", "not found (404)")]
    assert acc.done_bytes == 10 and acc.active == {}


def test_files_already_there_are_done_but_no_speed() -> None:
    now = [0.0]
    acc = Accounting(clock=lambda: now[0])
    acc.emit(FileQueued("a", 1000))
    acc.emit(FileQueued("b", 1000))
    now[0] = 1.0
    acc.emit(FileFinished("a", "skipped", "already present, md5 verified", 1000, "1", "a"))
    assert acc.done_bytes == 1000 and acc.speed() == 0.0  # nothing crossed the network
    acc.emit(FileStarted("b", 1000, 0))
    now[0] = 2.0
    acc.emit(FileAdvanced("b", 500))
    assert acc.speed() > 0
