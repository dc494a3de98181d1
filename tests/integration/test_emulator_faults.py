"""Each injected fault, observed with a plain HTTP client, and its determinism."""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.emulator.faults import FaultPlan
from tests.datasets import record
from tests.http_helpers import get

Start = Callable[..., RunningEmulator]
SIZE = 400_000
PATH = "/api/records/11/files/data.bin/content"


def faulty(start: Start, **faults: float) -> RunningEmulator:
    config = EmulatorConfig(rate_limits=False, faults=FaultConfig(seed=3, **faults))  # type: ignore[arg-type]
    return start(config, dataset=Dataset([record(11, concept=10, files={"data.bin": SIZE})]))


def read_partial(url: str, timeout: float = 10.0) -> tuple[int, bytes, BaseException | None]:
    """Status, the bytes that arrived, and the error that ended the body early (if any)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    conn.request("GET", parts.path, headers={"User-Agent": "asyncdl-tests"})
    response = conn.getresponse()
    received = bytearray()
    try:
        while chunk := response.read(65536):
            received += chunk
        expected = int(response.getheader("Content-Length") or len(received))
        short = http.client.IncompleteRead(bytes(received), expected - len(received))
        return response.status, bytes(received), short if len(received) < expected else None
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        return response.status, bytes(received), exc
    finally:
        conn.close()


def clean_body(start: Start) -> bytes:
    return get(f"{faulty(start).url}{PATH}").body


def test_reset_cuts_the_body(start_emulator: Start) -> None:
    emu = faulty(start_emulator, reset=1.0)
    status, body, failure = read_partial(f"{emu.url}{PATH}")
    assert status == 200 and failure is not None and len(body) < SIZE
    assert emu.stats.faults["reset"] == 1


def test_truncate_closes_early(start_emulator: Start) -> None:
    emu = faulty(start_emulator, truncate=1.0)
    _, body, failure = read_partial(f"{emu.url}{PATH}")
    assert isinstance(failure, http.client.IncompleteRead) and len(body) < SIZE
    assert body == clean_body(start_emulator)[: len(body)]


def test_corrupt_keeps_length_but_changes_md5(start_emulator: Start) -> None:
    emu = faulty(start_emulator, corrupt=1.0)
    expected = get(f"{emu.url}/api/records/11").json()["files"][0]["checksum"]
    body = get(f"{emu.url}{PATH}").body
    assert len(body) == SIZE and f"md5:{hashlib.md5(body).hexdigest()}" != expected
    differing = [i for i, (a, b) in enumerate(zip(body, clean_body(start_emulator), strict=True)) if a != b]
    assert len(differing) == 1


def test_stall_hangs_until_the_client_gives_up(start_emulator: Start) -> None:
    emu = faulty(start_emulator, stall=1.0, stall_seconds=3.0)
    _, body, failure = read_partial(f"{emu.url}{PATH}", timeout=0.5)
    assert isinstance(failure, TimeoutError) and len(body) < SIZE


def test_5xx(start_emulator: Start) -> None:
    emu = faulty(start_emulator, error_5xx=1.0)
    statuses = {get(f"{emu.url}/api/records/11?n={i}").status for i in range(20)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) >= 2
    assert sum(emu.stats.faults.values()) == 20


def test_latency_and_bandwidth_are_lower_bounds(start_emulator: Start) -> None:
    emu = faulty(start_emulator, latency=0.2, bandwidth=1_000_000)
    began = time.monotonic()
    body = get(f"{emu.url}{PATH}").body
    assert len(body) == SIZE
    assert time.monotonic() - began >= 0.2 + SIZE / 1_000_000 * 0.9


def test_a_shared_cap_is_shared_by_every_connection(start_emulator: Start) -> None:
    """Four bodies at once under a shared cap take at least as long as four one after another (a lower bound:
    a slow machine cannot make it fail; a cap per connection would let them through in a quarter of it)."""
    def four_at_once(**faults: float) -> float:
        emu = faulty(start_emulator, **faults)
        began = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(lambda n: get(f"{emu.url}{PATH}?n={n}").body, range(4)))
        assert all(len(body) == SIZE for body in bodies)
        return time.monotonic() - began

    assert four_at_once(shared_bandwidth=2_000_000) >= 4 * SIZE / 2_000_000 * 0.9


def test_first_attempts_only(start_emulator: Start) -> None:
    emu = faulty(start_emulator, corrupt=1.0, first_attempts=1)
    first, second = get(f"{emu.url}{PATH}").body, get(f"{emu.url}{PATH}").body
    assert first != second and second == clean_body(start_emulator)


def test_decisions_are_deterministic_under_a_seed() -> None:
    plan = FaultPlan(FaultConfig(seed=7, reset=0.3, corrupt=0.2))
    again = FaultPlan(FaultConfig(seed=7, reset=0.3, corrupt=0.2))
    other = FaultPlan(FaultConfig(seed=8, reset=0.3, corrupt=0.2))
    paths = [f"/f/{i}" for i in range(400)]
    decisions = [plan.body_fault(p, 0) for p in paths]
    assert decisions == [again.body_fault(p, 0) for p in paths]
    assert decisions != [other.body_fault(p, 0) for p in paths]
    hit_rate = sum(d == "reset" for d in decisions) / len(paths)
    assert 0.2 < hit_rate < 0.4
    assert all(0 <= plan.position("reset", p, 0, 1000) < 1000 for p in paths)


@pytest.mark.parametrize("kind", ["reset", "truncate", "corrupt"])
def test_body_faults_strike_inside_the_body(start_emulator: Start, kind: str) -> None:
    emu = faulty(start_emulator, **{kind: 1.0})
    read_partial(f"{emu.url}{PATH}")
    assert emu.stats.faults[kind] == 1 and emu.stats.bytes_served <= SIZE
