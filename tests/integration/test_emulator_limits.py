"""Rate limits like Zenodo's: moving windows per User-Agent + IP, headers, 429 bodies, UA blocks."""

from __future__ import annotations

import time
from collections.abc import Callable

from asyncdl.emulator import EmulatorConfig, RunningEmulator
from tests.conftest import cassette_headers, load_cassette
from tests.http_helpers import get
from tests.integration.test_emulator_shapes import small_dataset

Start = Callable[..., RunningEmulator]
RECORDED_429 = "handley-lab__unimpeded__tests__cassettes__TestDatabase.test_is_available.PARTIAL.yaml"


def test_search_429_matches_recorded_body(start_emulator: Start) -> None:
    recorded = load_cassette(RECORDED_429)[0]
    emu = start_emulator(dataset=small_dataset())
    remaining = [get(f"{emu.url}/api/records?size=1").headers["x-ratelimit-remaining"] for _ in range(30)]
    assert remaining == [str(n) for n in range(29, -1, -1)]
    refused = get(f"{emu.url}/api/records?size=1")
    assert refused.status == 429
    assert refused.body.decode() == recorded["response"]["body"]["string"]
    headers = cassette_headers(recorded)
    for name in ("content-length", "content-type", "x-ratelimit-limit", "x-ratelimit-remaining"):
        assert refused.headers[name] == headers[name], name
    assert int(refused.headers["retry-after"]) > 0
    assert int(refused.headers["x-ratelimit-reset"]) >= int(time.time())
    assert emu.stats.rate_limited == 1
    # the search budget is separate from the global one
    assert get(f"{emu.url}/api/records/11").status == 200


def test_window_moves_and_keys_are_per_user_agent(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(minute=1.0, search_per_minute=3), dataset=small_dataset())
    for _ in range(3):
        assert get(f"{emu.url}/api/records").status == 200
    refused = get(f"{emu.url}/api/records")
    assert refused.status == 429 and refused.headers["retry-after"] == "1"
    other = get(f"{emu.url}/api/records", {"User-Agent": "another-client/2.0"})
    assert other.status == 200 and other.headers["x-ratelimit-remaining"] == "2"
    time.sleep(float(refused.headers["retry-after"]) + 0.1)
    assert get(f"{emu.url}/api/records").status == 200


def test_global_limits_guest_and_authenticated(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    assert get(f"{emu.url}/api/records/11").headers["x-ratelimit-limit"] == "133"
    authed = get(f"{emu.url}/api/records/11", {"Authorization": "Bearer emulator-token"})
    assert authed.headers["x-ratelimit-limit"] == "100"
    content = get(f"{emu.url}/api/records/11/files/a.txt/content")
    assert content.headers["x-ratelimit-limit"] == "133" and content.headers["retry-after"].isdigit()


def test_file_downloads_and_ranges_spend_the_global_budget(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(minute=60, guest_per_minute=4),
                         dataset=small_dataset())
    statuses = [get(f"{emu.url}/records/11/files/a.txt?download=1", {"Range": "bytes=0-1"}).status for _ in range(5)]
    assert statuses == [206, 206, 206, 206, 429]


def test_html_429_option(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(search_per_minute=1, html_429=True), dataset=small_dataset())
    get(f"{emu.url}/api/records")
    refused = get(f"{emu.url}/api/records")
    assert refused.status == 429 and refused.headers["content-type"].startswith("text/html")
    assert b"Too Many Requests" in refused.body


def test_generic_user_agents_get_the_blocked_page(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(block_generic_user_agents=True), dataset=small_dataset())
    blocked = get(f"{emu.url}/api/records/11/files/a.txt/content", {"User-Agent": "python-requests/2.32.5"})
    assert blocked.status == 403 and blocked.headers["content-type"].startswith("text/html")
    assert b"unusual traffic" in blocked.body
    assert get(f"{emu.url}/api/records/11/files/a.txt/content", {"User-Agent": "aria2/1.37.0"}).status == 403
    fine = get(f"{emu.url}/api/records/11/files/a.txt/content", {"User-Agent": "asyncdl/0.1 (+https://x)"})
    assert fine.status == 200 and fine.body == b"alpha\n"


def test_no_rate_limits_option(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, search_per_minute=1),
                         dataset=small_dataset())
    replies = [get(f"{emu.url}/api/records") for _ in range(3)]
    assert all(r.status == 200 and "x-ratelimit-limit" not in r.headers for r in replies)


def test_counters(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    get(f"{emu.url}/api/records")
    get(f"{emu.url}/api/records/11")
    get(f"{emu.url}/api/records/11/files/a.txt/content")
    stats = get(f"{emu.url}/_emulator/stats").json()
    assert stats["requests"] == {"search": 1, "record": 1, "content": 1}
    assert stats["bytes_served"] == len(b"alpha\n") and stats["statuses"] == {"200": 3}
    assert emu.stats.snapshot() == stats
    get(f"{emu.url}/_emulator/reset", method="POST")
    assert emu.stats.snapshot()["total_requests"] == 0
