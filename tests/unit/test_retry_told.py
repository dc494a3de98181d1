"""Each retry is told with which retry it is, of how many, and the wait before it (FaultMet), so the
displays can say ``retrying 3/8 in 4 s: ...``."""

from __future__ import annotations

import pytest

from asyncdl.brake import Brake
from asyncdl.config import Config
from asyncdl.errors import AsyncdlError, ConnectError, ServerError
from asyncdl.events import FaultMet, ListSink
from asyncdl.http import retry
from asyncdl.http.client import Client
from asyncdl.http.retry import Retry

pytestmark = pytest.mark.anyio

@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(retry, "sleep", sleep)
    return waited


async def test_each_retry_says_which_of_how_many_and_the_wait(sleeps: list[float]) -> None:
    told: list[tuple[str, int, int, float]] = []
    ended: list[str] = []
    policy = Retry(Config(retries=3, backoff_base=1.0, backoff_max=3.0), start=0, brake=Brake(requests=0, seconds=0),
                   on_fault=lambda e: ended.append(e.fault),
                   on_retry=lambda e, number, of, wait: told.append((e.fault, number, of, wait)))
    error = ServerError("503", status=503)
    for _ in range(3):
        await policy.after(error)
    with pytest.raises(ServerError):
        await policy.after(error)
    assert [(kind, number, of) for kind, number, of, _ in told] == [("5xx", 1, 3), ("5xx", 2, 3), ("5xx", 3, 3)]
    assert [wait for *_, wait in told] == sleeps  # the wait told is the wait waited
    assert ended == ["5xx"]  # the fault that spent the budget: met, not retried


async def test_a_connection_refused_counts_on_its_own_shorter_budget(sleeps: list[float]) -> None:
    sink = ListSink()
    client = Client(Config(retries=8), sink=sink)
    policy = client.retry()
    error = ConnectError("cannot connect to 127.0.0.1:9: connection refused")
    for _ in range(3):
        await policy.after(error)
    with pytest.raises(AsyncdlError, match=r"\(4 tries over \d+ s\)"):
        await policy.after(error)
    faults = [e for e in sink.events if isinstance(e, FaultMet)]
    assert [(e.kind, e.retry, e.retries) for e in faults] == [("connect", 1, 3), ("connect", 2, 3), ("connect", 3, 3)]
    assert [e.wait for e in faults] == sleeps and all(0 < wait <= retry.CONNECT_WAIT_MAX for wait in sleeps)
    assert faults[0].detail == "cannot connect to 127.0.0.1:9: connection refused"
