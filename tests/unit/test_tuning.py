"""The -j auto tuner's decisions, window by window, on made-up figures (the live loop is tried in
tests/cli/test_tuning_cli.py and measured by benchmarks/s12_adaptive.py)."""

from __future__ import annotations

import anyio
import pytest

from asyncdl.events import ConcurrencyChanged, Event
from asyncdl.tuning import HOLD, LentSlots, Tuner


def tuner(ceiling: int = 16, start: int = 4) -> tuple[Tuner, list[int], list[Event]]:
    applied: list[int] = []
    told: list[Event] = []
    return Tuner(applied.append, lambda: True, told.append, ceiling=ceiling, start=start), applied, told


def test_it_doubles_while_each_level_up_pays_then_stops_at_the_ceiling() -> None:
    t, applied, _ = tuner(ceiling=16)
    speed = 10.0
    for _ in range(8):
        level = t.decide(speed, busy=1.0)
        speed = 10.0 * level  # bytes a second grow with the downloads (a per-connection cap)
    assert applied == [8, 16] and t.level == 16


def test_a_level_up_that_does_not_pay_is_undone_and_later_tried_by_one() -> None:
    t, applied, told = tuner(start=4)
    assert t.decide(100.0, busy=1.0) == 8  # tried
    assert t.decide(102.0, busy=1.0) == 4  # 2% more: not worth it, back
    for _ in range(HOLD):
        assert t.decide(100.0, busy=1.0) == 4  # held
    assert t.decide(100.0, busy=1.0) == 5  # one up, no more doubling
    assert applied == [8, 4, 5]
    assert [e.why for e in told if isinstance(e, ConcurrencyChanged)][1].startswith("back: 1.02x")


def test_no_bytes_is_no_reason_for_more_at_once() -> None:
    """Files that fail without a byte (a server answering 503) ask for no level up, and one tried before the
    bytes stopped is undone."""
    t, applied, _ = tuner(start=4)
    assert t.decide(0.0, busy=1.0) == 4
    assert t.decide(100.0, busy=1.0) == 8
    assert t.decide(0.0, busy=1.0) == 4
    assert applied == [8, 4]


def test_no_level_up_unless_every_slot_is_busy_or_while_the_governor_paces() -> None:
    t, applied, _ = tuner()
    assert t.decide(100.0, busy=0.2) == 4
    assert t.decide(100.0, busy=1.0, paced=True) == 4
    assert applied == []


def test_trouble_takes_a_quarter_off_and_holds() -> None:
    t, applied, told = tuner(start=16, ceiling=16)
    assert t.decide(100.0, busy=1.0, trouble=True) == 12
    assert t.decide(100.0, busy=1.0, trouble=True) == 9
    assert t.hold == HOLD and applied == [12, 9]
    assert all("back off" in e.why for e in told if isinstance(e, ConcurrencyChanged))
    one, _, _ = tuner(start=1)
    assert one.decide(1.0, busy=1.0, trouble=True) == 1  # never below one


def test_bytes_falling_with_every_slot_busy_take_one_off() -> None:
    t, applied, _ = tuner(start=8, ceiling=8)
    t.decide(800.0, busy=1.0)  # at the ceiling: measured
    assert t.decide(400.0, busy=1.0) == 7
    assert applied == [7]


@pytest.mark.anyio
async def test_slots_are_lent_only_when_free_and_a_refusal_is_remembered() -> None:
    limiter = anyio.CapacityLimiter(2)
    lent = LentSlots(limiter)
    await limiter.acquire_on_behalf_of("file")
    token = lent.lend()
    assert token is not None and limiter.available_tokens == 0
    assert lent.lend() is None and lent.take_wanted() and not lent.take_wanted()
    lent.give_back(token)
    assert limiter.available_tokens == 1
