"""The emulator's stock-InvenioRDM flavor, compared with responses recorded at rogue-scholar.org (a stock
instance): native JSON by default, 10-character ids, the relative parent redirect, native query fields, no
page caps, no files-archive cap, the stock rate limits, communities by slug or id."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.emulator.flavor import INVENIO
from asyncdl.emulator.ids import to_internal, to_public
from asyncdl.emulator.server import community_id
from tests.conftest import INVENIO_FIXTURES, cassette_headers, cassette_json, load_cassette
from tests.datasets import many, record
from tests.http_helpers import get

Start = Callable[..., RunningEmulator]
PARENT_302 = "commonmeta-py__rogue-scholar__parent-id-302-then-record.yaml"
RECORD = "commonmeta-py__rogue-scholar__record.yaml"
STAGING = "commonmeta-py__rogue-scholar__staging-404_parent-302_record.yaml"


def dataset() -> Dataset:
    return Dataset([
        record(11, concept=10, title="IODP Expedition 374 Alkalinity", files={"a.txt": b"alpha\n", "b.bin": 5000},
               owners=("88403",), communities=("iodp",)),
        record(21, concept=20, title="Microscopy v1", communities=("bio",)),
        record(22, concept=20, title="Microscopy v2", version=1, communities=("bio",)),
    ])


def stock(start_emulator: Start, **config: object) -> RunningEmulator:
    return start_emulator(EmulatorConfig(flavor="invenio", **config), dataset=dataset())  # type: ignore[arg-type]


def recorded(name: str) -> list[dict[str, object]]:
    return load_cassette(name, INVENIO_FIXTURES)


def test_ids_are_ten_characters_and_only_valid_ones_name_a_record() -> None:
    for number in (1, 11, 20, 88403, 10**9):
        public = to_public(number)
        assert len(public) == 11 and public[5] == "-" and to_internal(public) == number
    assert to_internal("23y6y-vh985") is None  # rogue-scholar's record: its check digits are not ours
    public = to_public(11)
    assert to_internal(public[:-1] + ("1" if public[-1] == "0" else "0")) is None  # a check digit changed
    assert to_internal("11") is None
    assert to_internal("abcde-fghi!") is None


def test_a_record_matches_the_recorded_native_shape_by_default(start_emulator: Start) -> None:
    theirs_interaction = recorded(RECORD)[0]
    theirs = cassette_json(theirs_interaction)
    emu = stock(start_emulator)
    reply = get(f"{emu.url}/api/records/{to_public(11)}")  # no Accept header: the native shape all the same
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    ours = reply.json()
    assert set(ours) == set(theirs)
    assert set(ours["links"]) == set(theirs["links"])
    assert set(ours["parent"]) <= set(theirs["parent"]) | {"access"}
    assert set(theirs["files"]) <= set(ours["files"]) and isinstance(ours["files"]["entries"], dict)
    assert ours["id"] == to_public(11) and ours["parent"]["id"] == to_public(10)
    assert ours["pids"]["doi"]["identifier"] == f"10.81088/{to_public(11)}"
    headers, their_headers = reply.headers, cassette_headers(theirs_interaction)
    assert headers["server"] == their_headers["server"] == "gunicorn"
    assert headers["x-ratelimit-limit"] == their_headers["x-ratelimit-limit"] == "500"
    assert headers["etag"] == '"4"' and their_headers["etag"].startswith('"')
    assert 'rel="linkset"' in headers["link"] and f"/api/records/{to_public(11)}>" in headers["link"]


def test_a_parent_id_redirects_with_a_relative_location_and_an_html_body(start_emulator: Start) -> None:
    theirs = recorded(PARENT_302)[0]["response"]
    assert isinstance(theirs, dict)
    their_headers = {k.lower(): v[0] for k, v in theirs["headers"].items()}
    emu = stock(start_emulator)
    reply = get(f"{emu.url}/api/records/{to_public(20)}")
    assert reply.status == theirs["status"]["code"] == 302
    assert reply.headers["location"] == f"/api/records/{to_public(22)}"  # relative, as recorded
    assert their_headers["location"].startswith("/api/records/")
    assert reply.headers["content-type"].startswith("text/html") and their_headers["content-type"].startswith(
        "text/html")
    assert b"Redirecting..." in reply.body and "Redirecting..." in theirs["body"]["string"]


def test_an_unknown_id_is_the_recorded_404(start_emulator: Start) -> None:
    theirs = recorded(STAGING)[0]
    emu = stock(start_emulator)
    reply = get(f"{emu.url}/api/records/baq1p-0py32")
    assert reply.status == 404 and reply.json() == cassette_json(theirs)


def test_search_has_sortby_no_page_caps_and_only_the_window(start_emulator: Start) -> None:
    emu = start_emulator(EmulatorConfig(flavor="invenio"), dataset=many(300))
    body = get(f"{emu.url}/api/records?size=300&page=1").json()  # above Zenodo's caps of 25 and 100
    assert len(body["hits"]["hits"]) == 300 and body["sortBy"] == "newest"
    assert get(f"{emu.url}/api/records?size=5000&page=3").status == 400  # beyond the 10,000 window


def test_native_query_fields_match_and_zenodo_legacy_names_match_nothing(start_emulator: Start) -> None:
    emu = stock(start_emulator)

    def total(q: str) -> int:
        reply = get(f"{emu.url}/api/records?q={q}&allversions=true")
        assert reply.status == 200, reply.body
        return int(reply.json()["hits"]["total"])

    assert total("parent.access.owned_by.user:88403") == 1
    assert total("owners:88403") == 0
    assert total(f"parent.id:{to_public(20)}") == 2 and total("conceptrecid:20") == 0
    assert total(f'doi:"10.81088/{to_public(11)}"') == 1  # doi: works on stock instances too (recorded)
    assert total("metadata.title:Microscopy") == 2
    zenodo = start_emulator(EmulatorConfig(), dataset=dataset())
    assert get(f"{zenodo.url}/api/records?q=owners:88403").json()["hits"]["total"] == 1


def test_communities_by_slug_or_id_and_the_archive_without_a_cap(start_emulator: Start) -> None:
    emu = stock(start_emulator, archive_limit=100)  # a cap that Zenodo would apply to record 11 (5 KB)
    by_slug = get(f"{emu.url}/api/communities/bio/records").json()
    by_id = get(f"{emu.url}/api/communities/{community_id('bio')}/records").json()
    assert by_slug["hits"]["total"] == by_id["hits"]["total"] == 1
    assert get(f"{emu.url}/api/communities/{community_id('nope')}/records").status == 404
    archive = get(f"{emu.url}/api/records/{to_public(11)}/files-archive")
    assert archive.status == 200 and archive.body[:2] == b"PK"
    zenodo = start_emulator(EmulatorConfig(archive_limit=100), dataset=dataset())
    assert get(f"{zenodo.url}/api/records/11/files-archive").status == 400


def test_stock_rate_limits_and_search_shares_the_budget(start_emulator: Start) -> None:
    emu = stock(start_emulator)
    first = get(f"{emu.url}/api/records")
    assert first.headers["x-ratelimit-limit"] == "500"  # no separate 30/min search budget
    authed = get(f"{emu.url}/api/records/{to_public(11)}", {"Authorization": "Bearer emulator-token"})
    assert authed.headers["x-ratelimit-limit"] == "1000"


@pytest.mark.parametrize("path", ["/api/records/{pid}/files", "/records/{pid}"])
def test_files_and_landing_page_use_the_public_id(start_emulator: Start, path: str) -> None:
    emu = stock(start_emulator)
    reply = get(emu.url + path.format(pid=to_public(11)))
    assert reply.status == 200
    if path.endswith("/files"):
        entries = reply.json()["entries"]
        assert entries[0]["links"]["content"].startswith(f"{emu.url}/api/records/{to_public(11)}/files/")
    else:
        assert f"/api/records/{to_public(11)}>" in reply.headers["link"]
    assert get(emu.url + path.format(pid="11")).status == 404  # a Zenodo-style number is no id here
    assert INVENIO.public_id(11) == to_public(11)
