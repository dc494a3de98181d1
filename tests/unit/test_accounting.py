"""The one accounting: counts from events, speed and time left over a moving window."""

from __future__ import annotations

from dataclasses import dataclass

from asyncdl.accounting import Accounting
from asyncdl.errors import RateLimitedError, fault_kind
from asyncdl.events import (
    CrawlDone,
    FaultMet,
    FileAdvanced,
    FileFinished,
    FileQueued,
    FileStarted,
    PlanDone,
    RatePaced,
    RecordPlanned,
    RequestSent,
)
from asyncdl.governor import BucketStats, GovernorStats
from tests.fake_clock import Clock


def test_speed_is_over_the_window_not_since_the_start() -> None:
    clock = Clock()
    acc = Accounting(clock, window=10.0)
    acc.emit(RecordPlanned("1"))
    acc.emit(FileQueued("a", 1000))
    acc.emit(CrawlDone(records=1, pages=1))
    acc.emit(PlanDone())
    clock.now += 100  # a long crawl or a rate-limit pause: nothing arrived
    acc.emit(FileStarted("a", 1000, 0))
    for _ in range(10):  # then 10 bytes a second for 10 s
        clock.now += 1
        acc.emit(FileAdvanced("a", 10))
    assert 9.0 <= acc.speed() <= 11.0  # an average since the start would say under 1
    eta = acc.eta()
    assert eta is not None and 85 <= eta <= 100  # 900 bytes left at 10 a second
    clock.now += 30  # nothing more arrives: the speed falls to 0; the file's rate over its longer window
    assert acc.speed() == 0.0  # (a minute, the rate limits' window) still tells, and longer
    later = acc.eta()
    assert later is not None and later > 300  # 0.9 of the file left, 0.1 came in 40 s
    clock.now += 100  # nothing at all over the files' window either: no time left to tell
    assert acc.eta() is None


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


@dataclass
class Files:
    """Feeds an accounting planned files (a record each) and their downloads, on a clock of its own."""

    acc: Accounting
    clock: Clock

    def plan(self, sizes: list[int], *, done: bool = True) -> None:
        for i, size in enumerate(sizes):
            self.acc.emit(RecordPlanned(str(i)))
            self.acc.emit(FileQueued(f"f{i}", size))
        if done:
            self.acc.emit(CrawlDone(records=len(sizes), pages=1))
            self.acc.emit(PlanDone())

    def fetch(self, path: str, size: int, seconds: float, host: str = "zenodo.org:443") -> None:
        """One file, requested and received whole over ``seconds``."""
        self.acc.emit(RequestSent(host, "file"))
        self.acc.emit(FileStarted(path, size, 0))
        self.clock.now += seconds
        self.acc.emit(FileAdvanced(path, size))
        self.acc.emit(FileFinished(path, "ok", "", size, bytes_received=size))


def test_eta_is_the_bytes_left_at_the_speed_when_bytes_bind() -> None:
    clock = Clock()
    files = Files(Accounting(clock), clock)
    files.plan([1_000_000, 30_000_000, 30_000_000])
    files.fetch("f0", 1_000_000, 1.0)  # 1 MB/s
    files.acc.emit(FileStarted("f1", 30_000_000, 0))
    clock.now += 15
    files.acc.emit(FileAdvanced("f1", 15_000_000))
    assert 0.08 <= files.acc.file_rate() <= 0.1  # 1.5 files in 16 s: 1.5 left would take 16 s
    eta = files.acc.eta()
    assert eta is not None and 43 <= eta <= 47  # 45 MB left at 1 MB/s


def test_eta_is_the_files_left_at_their_rate_when_requests_bind() -> None:
    clock = Clock()
    files = Files(Accounting(clock), clock)
    files.plan([10_000] * 100 + [10] * 100)  # many small files, and few bytes among those left
    for i in range(100):  # one every 0.5 s
        files.fetch(f"f{i}", 10_000, 0.5)
    acc = files.acc
    assert (acc.queued_bytes - acc.done_bytes) / acc.speed() < 0.1  # what the bytes alone would say
    eta = acc.eta()
    assert eta is not None and 45 <= eta <= 55  # 100 files at 2 a second


def test_eta_is_held_up_by_the_request_budget_left() -> None:
    clock = Clock()
    acc = Accounting(clock)
    files = Files(acc, clock)
    files.plan([100] * 300)
    for i in range(60):  # a burst: 60 files in 6 s, the budget of a minute spent
        files.fetch(f"f{i}", 100, 0.1)
    burst = acc.eta()
    assert burst is not None and burst < 30  # 240 files at 10 a second, by the rate of the burst
    acc.governors = lambda: {"zenodo.org:443": GovernorStats({
        "default": BucketStats(60, 0, 0.0, 60, 0, 60.0), "search": BucketStats(5, 0, 0.0, 30, 30, 60.0)})}
    eta = acc.eta()
    assert eta is not None and 235 <= eta <= 245  # 240 requests at 60 a minute, nothing left now
    acc.governors = lambda: {"zenodo.org:443": GovernorStats({"default": BucketStats(60, 0, 0.0, 60, 60, 60.0)})}
    fresh = acc.eta()
    assert fresh is not None and 175 <= fresh <= 185  # 60 go at once, 180 at 60 a minute
    acc.emit(RatePaced("zenodo.org:443", "default", 500.0, 0, 60))  # (an hour's limit, say) the next in 500 s
    held = acc.eta()
    assert held is not None and 495 <= held <= 500


def test_no_time_left_and_no_final_total_until_every_record_found_is_planned() -> None:
    clock = Clock()
    acc = Accounting(clock)
    files = Files(acc, clock)
    files.plan([100] * 10, done=False)
    files.fetch("f0", 100, 1.0)
    assert not acc.plan_final and acc.eta() is None  # the crawl goes on
    acc.emit(CrawlDone(records=12, pages=1))  # it found 12 records; the plan has 10 of them so far
    assert acc.crawl_done and not acc.plan_final and acc.eta() is None
    acc.emit(RecordPlanned("10"))
    acc.emit(RecordPlanned("11"))
    acc.emit(FileQueued("f10", 100))
    assert not acc.plan_final  # every record found is planned, but only the run knows it has no more
    acc.emit(PlanDone())
    assert acc.plan_final and acc.queued == 11 and acc.eta() is not None


def test_a_shard_knows_its_plan_final_when_its_plan_says_so() -> None:
    acc = Accounting(Clock())
    acc.emit(RecordPlanned("1"))  # its one record of the 12 the crawl found
    acc.emit(CrawlDone(records=12, pages=1))
    assert not acc.plan_final  # the crawl is done, but the plan may still hold records
    acc.emit(PlanDone())
    assert acc.plan_final
