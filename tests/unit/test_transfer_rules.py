"""The pure rules of the transfer engine, case by case: what to do with a Range answer, how many
requests a file may cost, and how the one retry policy counts, waits and gives up."""

from __future__ import annotations

from typing import Any

import pytest

from asyncdl import Config
from asyncdl.brake import Brake
from asyncdl.errors import AsyncdlError, BadResponseError, ServerError, ShortBodyError, TransportError
from asyncdl.http import Retry, retry
from asyncdl.transfer import PIECES_PER_SEGMENT, PROGRESS_UNIT, RequestCeiling, range_answer

pytestmark = pytest.mark.anyio

# (offset, status, Content-Encoding, URL kind) -> decision
RANGE_ANSWERS = [
    ((0, 200, "", "ui"), "append"),  # no Range asked: the body is the file from byte 0
    ((0, 200, "gzip", None), "append"),
    ((5, 206, "", "ui"), "append"),  # the file's own bytes from 5 (its Content-Range is checked next)
    ((5, 206, "identity", "api"), "append"),
    ((5, 206, "", None), "append"),
    ((5, 416, "", "ui"), "append"),  # not 2xx: left to the Content-Range check, which refuses it
    ((5, 200, "", "ui"), "next-url"),  # Range ignored: try the other URL
    ((5, 200, "", "api"), "next-url"),
    ((5, 206, "gzip", "ui"), "next-url"),  # a range of the encoded body is not a range of the file
    ((5, 200, "", None), "restart-with-body"),  # no URL left: the 200 is the whole file
    ((5, 206, "gzip", None), "restart"),  # no URL left and nothing usable: from byte 0 again
    ((5, 206, " GZIP ", None), "restart"),
]


@pytest.mark.parametrize(("answer", "decision"), RANGE_ANSWERS, ids=[str(a) for a, _ in RANGE_ANSWERS])
def test_range_answer(answer: tuple[int, int, str, str | None], decision: str) -> None:
    assert range_answer(*answer) == decision


CONFIG = Config(retries=8, max_attempts=5, segments=4, segment_threshold=100 * 2**20)
SINGLE = 8 + 1  # a piece's retry budget: retries + 1 tries


@pytest.mark.parametrize(("size", "limit"), [
    (None, 5 * (SINGLE + 1 + 2)),  # no size: one progressing try allowed, two URLs tried for Range
    (0, 5 * (SINGLE + 1 + 2)),
    (10, 5 * (SINGLE + 1 + 2)),
    (PROGRESS_UNIT, 5 * (SINGLE + 1 + 2)),
    (PROGRESS_UNIT + 1, 5 * (SINGLE + 2 + 2)),
    (100 * 2**20 - 1, 5 * (SINGLE + 13 + 2)),  # just below the threshold: one stream
    (100 * 2**20, 5 * (4 * PIECES_PER_SEGMENT * SINGLE + 13 + 2)),  # at it: 16 pieces, each its own budget
])
def test_request_ceiling(size: int | None, limit: int) -> None:
    assert RequestCeiling.for_file(size, CONFIG).limit == limit


def test_the_ceiling_refuses_the_request_past_it() -> None:
    ceiling = RequestCeiling(3)
    for _ in range(3):
        ceiling.spend("a")
    with pytest.raises(AsyncdlError, match="gave up after 3 requests for a"):
        ceiling.spend("a")


class Recorder:
    """What a Retry reported and how long it waited."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.faults: list[str] = []
        self.sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        monkeypatch.setattr(retry, "sleep", sleep)

    def retry(self, config: Config, *, start: int = 0, brake: Brake | None = None) -> Retry:
        return Retry(config, start=start, on_fault=lambda e: self.faults.append(e.fault),
                     brake=brake or Brake(requests=0, seconds=0))


async def test_each_failure_in_a_row_waits_longer_then_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorder(monkeypatch)
    policy = seen.retry(Config(retries=3, backoff_base=1.0, backoff_max=3.0))
    error = ServerError("503", status=503)
    for _ in range(3):
        await policy.after(error)
    with pytest.raises(ServerError):
        await policy.after(error)
    assert seen.faults == ["5xx"] * 4
    assert len(seen.sleeps) == 3  # none after the last: it is raised at once
    for seconds, ceiling in zip(seen.sleeps, [1.0, 2.0, 3.0], strict=True):  # doubling, capped, jittered
        assert ceiling / 2 <= seconds <= ceiling


async def test_only_getting_further_resets_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorder(monkeypatch)
    policy = seen.retry(Config(retries=1, backoff_base=0.0), start=100)
    reset = TransportError("reset")
    await policy.after(reset, 100)  # no further than the start: one in a row
    await policy.after(reset, 150)  # further: the count starts again
    await policy.after(reset, 120)  # a restart that brought 120 bytes is no further than 150
    with pytest.raises(TransportError):
        await policy.after(reset, 150)
    assert policy.high_water == 150


async def test_progress_keeps_the_run_brake_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorder(monkeypatch)
    brake = Brake(requests=2, seconds=0)
    policy = seen.retry(Config(retries=0, backoff_base=0.0), brake=brake)
    for position in range(1, 6):  # each try gets further: progress every time
        brake.request()
        await policy.after(TransportError("reset"), position)
    brake.request()
    brake.request()
    with pytest.raises(AsyncdlError, match="stopped after 2 requests"):
        brake.request()


async def test_a_short_body_is_reported_with_where_it_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorder(monkeypatch)
    policy = seen.retry(Config(retries=1, backoff_base=0.0), start=5)
    short = ShortBodyError("ended", position=5, size=10)
    await policy.after(short, 5)
    with pytest.raises(ShortBodyError, match=r"^the server ended the body at byte 5 of 10, 2 times without"):
        await policy.after(short, 5)


@pytest.mark.parametrize("error", [BadResponseError("html"), AsyncdlError("other")])
async def test_what_cannot_be_retried_is_raised_at_once(monkeypatch: pytest.MonkeyPatch, error: Any) -> None:
    seen = Recorder(monkeypatch)
    with pytest.raises(type(error)):
        await seen.retry(Config(retries=5)).after(error)
    assert seen.faults == [] and seen.sleeps == []

