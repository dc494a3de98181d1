"""The bandwidth pacer's bookings on a fake clock."""

from __future__ import annotations

import pytest

from asyncdl.pacing import Pacer
from tests.fake_clock import Clock


def test_bytes_are_booked_one_after_another_at_the_rate() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, burst=0.0, clock=clock)
    assert pacer.book(500) == pytest.approx(0.5)
    assert pacer.book(500) == pytest.approx(1.0)  # after the first half second
    clock.now += 1.0
    assert pacer.book(1000) == pytest.approx(1.0)


def test_an_idle_spell_leaves_only_the_burst_as_credit() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, burst=0.25, clock=clock)
    clock.now += 60.0  # a minute of nothing is not a minute of credit
    assert pacer.book(250) == 0.0
    assert pacer.book(1000) == pytest.approx(1.0)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(0.0)
