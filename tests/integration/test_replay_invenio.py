"""asyncdl against responses recorded at rogue-scholar.org, a stock InvenioRDM instance, replayed over real
HTTP: a parent id answers 302 with a relative Location, and the record it leads to is read."""

from __future__ import annotations

import pytest

from asyncdl import Config, Selection, crawl_records
from asyncdl.errors import UsageError
from tests.conftest import INVENIO_FIXTURES, load_cassette
from tests.replay import ReplayServer

pytestmark = pytest.mark.anyio
PARENT_302 = "commonmeta-py__rogue-scholar__parent-id-302-then-record.yaml"
STAGING = "commonmeta-py__rogue-scholar__staging-404_parent-302_record.yaml"


async def test_a_parent_id_is_followed_through_its_relative_redirect_to_the_record() -> None:
    replay = ReplayServer(load_cassette(PARENT_302, INVENIO_FIXTURES))
    async with replay.running() as base:
        records = await crawl_records(Selection(identifiers=("74hx4-qp390",)), Config(base_url=base))
    assert replay.unmatched == []
    assert replay.served == {"/api/records/74hx4-qp390": 1, "/api/records/23y6y-vh985": 1}
    [record] = records
    assert record.id == "23y6y-vh985" and record.conceptrecid == "74hx4-qp390"
    assert record.doi == "10.59350/qsajq-6tn97"
    assert record.files == ()  # files are disabled on this record: nothing to fetch, and nothing asked


async def test_the_record_url_on_the_replayed_host_needs_no_base_url() -> None:
    replay = ReplayServer(load_cassette(PARENT_302, INVENIO_FIXTURES))
    async with replay.running() as base:
        records = await crawl_records(Selection(identifiers=(f"{base}/records/74hx4-qp390",)), Config())
    assert replay.unmatched == [] and [r.id for r in records] == ["23y6y-vh985"]


async def test_an_unknown_id_is_one_clear_error_and_one_request() -> None:
    replay = ReplayServer(load_cassette(STAGING, INVENIO_FIXTURES))
    async with replay.running() as base:
        with pytest.raises(UsageError, match=r"no record baq1p-0py32 at .* \(404\)"):
            await crawl_records(Selection(identifiers=("baq1p-0py32",)), Config(base_url=base))
    assert replay.served == {"/api/records/baq1p-0py32": 1} and replay.unmatched == []
