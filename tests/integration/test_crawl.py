"""The crawl against the emulator: every record once, few requests, the 10k window, limits, 429 storms."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from asyncdl import Config, Selection, crawl_records
from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from asyncdl.errors import BadResponseError, BlockedError, UsageError
from asyncdl.events import ListSink, Notice
from asyncdl.http import Client
from tests.datasets import many, record
from tests.integration.test_emulator_shapes import small_dataset

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.anyio


def config_for(emu: RunningEmulator, **overrides: object) -> Config:
    return Config(base_url=emu.url, backoff_base=0.05, backoff_max=0.5, **overrides)  # type: ignore[arg-type]


async def test_pages_fetched_concurrently_once_each(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=many(1000))
    records = await crawl_records(Selection(owner="7"), config_for(emu))
    assert sorted(r.id for r in records) == sorted(str(i) for i in emu.dataset.records)
    assert emu.stats.requests == {"search": math.ceil(1000 / 25)}  # no request beyond the pages needed


async def test_token_gives_pages_of_100_without_leaking(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=many(450))
    records = await crawl_records(Selection(query="title:Bulk"), config_for(emu, token="emulator-token"))
    assert len(records) == 450
    assert emu.stats.requests["search"] == 5
    assert not any("emulator-token" in path for path in emu.stats.attempts)


async def test_more_than_the_window_is_sliced_by_date(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=many(12_345, step_hours=3.1))
    sink = ListSink()
    records = await crawl_records(Selection(community="bulk"), config_for(emu, token="emulator-token",
                                                                          page_concurrency=8), sink=sink)
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == 12_345
    assert set(ids) == {str(i) for i in emu.dataset.records}
    assert "400" not in emu.stats.snapshot()["statuses"]
    assert any(isinstance(e, Notice) and "window" in e.message for e in sink.events)
    # the split costs a few first pages on top of the ~124 pages of hits
    assert emu.stats.requests["community-search"] < math.ceil(12_345 / 100) + 20


async def test_scaled_zenodo_limits_bring_no_429(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(minute=1.0), dataset=many(2000))
    records = await crawl_records(Selection(owner="7"), config_for(emu, page_concurrency=8))
    assert len(records) == 2000
    assert emu.stats.requests["search"] == 80 and emu.stats.rate_limited == 0


async def test_a_429_storm_loses_nothing(start_emulator: Start) -> None:
    faults = FaultConfig(seed=1, error_429=0.5)
    emu = start_emulator(EmulatorConfig(minute=1.0, faults=faults), dataset=many(150))
    records = await crawl_records(Selection(owner="7"), config_for(emu, page_concurrency=6))
    assert len({r.id for r in records}) == 150
    assert emu.stats.rate_limited >= 2  # the storm hit, and every record still arrived


async def test_5xx_and_latency_are_retried(start_emulator: Start) -> None:
    faults = FaultConfig(seed=2, error_5xx=0.3, latency=0.01)
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=faults), dataset=many(300))
    records = await crawl_records(Selection(owner="7"), config_for(emu))
    assert len(records) == 300 and sum(emu.stats.faults.values()) > 0


async def test_identifiers_concepts_versions_and_dois(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=small_dataset())
    url = emu.url
    found = await crawl_records(Selection(identifiers=("11", f"{url}/records/21", "10.5281/zenodo.20")),
                                config_for(emu))
    assert [r.id for r in found] == ["11", "21", "22"]  # the concept DOI 20 resolves to its latest, 22
    versions = await crawl_records(Selection(identifiers=("20",), all_versions=True), config_for(emu))
    assert sorted(r.id for r in versions) == ["21", "22"]


async def test_title_regex_filters_client_side(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=small_dataset())
    found = await crawl_records(Selection(query="*", title_regex="Alkalinity"), config_for(emu))
    assert [r.title for r in found] == ["IODP Expedition 374 Alkalinity and pH"]


async def test_unknown_community_and_record_are_clear_errors(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=small_dataset())
    with pytest.raises(UsageError, match="unknown community 'nope'"):
        await crawl_records(Selection(community="nope"), config_for(emu))
    with pytest.raises(UsageError, match="no record 999"):
        await crawl_records(Selection(identifiers=("999",)), config_for(emu))


async def test_files_missing_from_hits_cost_one_request_each(start_emulator: Start) -> None:
    crowded = [record(100 + 2 * i, concept=99 + 2 * i, files={f"f{j}": 10 for j in range(6)}) for i in range(3)]
    plain = [record(201, concept=200)]
    emu = start_emulator(EmulatorConfig(rate_limits=False, search_files_limit=5), dataset=Dataset(crowded + plain))
    found = await crawl_records(Selection(query="*"), config_for(emu))
    assert sorted(len(r.files) for r in found) == [1, 6, 6, 6]
    assert emu.stats.requests["files"] == 3


async def test_html_instead_of_json_is_a_clear_error(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=small_dataset())
    async with Client(config_for(emu)) as client:
        expected = r"expected JSON from .*/records/11 but got an HTML page \(status 200\)"
        with pytest.raises(BadResponseError, match=expected):
            await client.get_json(f"{emu.url}/records/11")


async def test_blocked_page_is_reported_not_parsed(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(block_generic_user_agents=True), dataset=small_dataset())
    config = config_for(emu, user_agent="python-requests/2.32", retries=1)
    with pytest.raises(BlockedError, match="unusual traffic"):
        await crawl_records(Selection(identifiers=("11",)), config)
