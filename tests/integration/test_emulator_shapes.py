"""The emulator's JSON, headers, errors and links, compared with real recorded Zenodo responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.conftest import cassette_headers, cassette_json, load_cassette
from tests.datasets import many, record
from tests.http_helpers import get

SEARCH = "handley-lab__unimpeded__tests__cassettes__TestDatabase.test_is_available.PARTIAL.yaml"
TENSION = ("handley-lab__unimpeded__tests__cassettes__TestDownloadTensionInputs."
           "test_download_tension_inputs_caching.PARTIAL.yaml")
NO_DEPOSIT = ("handley-lab__unimpeded__tests__cassettes__TestDatabaseExplorer."
              "test_download_samples_no_deposit.PARTIAL.yaml")
Start = Callable[..., RunningEmulator]


def small_dataset() -> Dataset:
    return Dataset([
        record(11, concept=10, title="IODP Expedition 374 Alkalinity and pH", created="2019-08-10",
               files={"a.txt": b"alpha\n", "dir/b c.csv": b"x,y\n1,2\n"}, owners=("88403",), communities=("iodp",)),
        record(21, concept=20, title="Microscopy images v1", created="2021-03-01", owners=("5",),
               communities=("nfdi4bioimage",)),
        record(22, concept=20, title="Microscopy images v2", created="2021-06-01", version=1, owners=("5",),
               communities=("nfdi4bioimage",)),
        record(31, concept=30, title="Closed record", access="restricted", owners=("88403",)),
        record(41, concept=40, title="Files closed", access="files-restricted"),
        record(51, concept=50, title="Deleted version", deleted=True),
        record(61, concept=60, title="Embargoed data", access="embargoed", embargo_date="2099-01-01"),
    ])


def type_names(obj: dict[str, object]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in obj.items()}


def test_search_hit_matches_recorded_shape(start_emulator: Start) -> None:
    recorded = cassette_json(load_cassette(SEARCH)[1])
    emu = start_emulator(EmulatorConfig(), dataset=small_dataset())
    reply = get(f"{emu.url}/api/records?q=Alkalinity&size=25&page=1")
    assert reply.status == 200
    body = reply.json()
    assert set(body) == set(recorded) == {"hits", "aggregations", "links"}
    assert set(body["hits"]) == set(recorded["hits"])
    assert set(body["aggregations"]) == set(recorded["aggregations"])
    ours, theirs = body["hits"]["hits"][0], recorded["hits"]["hits"][0]
    assert set(theirs) <= set(ours)
    for key in theirs:
        if theirs[key] is not None:
            assert type(ours[key]) is type(theirs[key]), key
    assert set(ours["links"]) == set(theirs["links"])
    assert set(ours["stats"]) == set(theirs["stats"])
    assert type_names(ours["files"][0]) == type_names(theirs["files"][0])
    assert set(ours["files"][0]["links"]) == {"self"}
    assert ours["files"][0]["checksum"].startswith("md5:") and len(ours["files"][0]["checksum"]) == 36
    assert type_names(ours["owners"][0]) == type_names(theirs["owners"][0])
    assert set(ours["metadata"]) >= {"title", "doi", "publication_date", "access_right", "resource_type"}


def test_search_headers_match_recorded(start_emulator: Start) -> None:
    recorded = cassette_headers(load_cassette(SEARCH)[1])
    emu = start_emulator(dataset=small_dataset())
    reply = get(f"{emu.url}/api/records?size=2")
    for name in ("content-type", "x-ratelimit-limit", "server", "x-frame-options", "access-control-expose-headers"):
        assert reply.headers[name] == recorded[name], name
    for name in ("x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"):
        assert reply.headers[name].isdigit()
    assert int(reply.headers["x-ratelimit-remaining"]) == 29


def test_links_encoding_and_paging_like_recorded(start_emulator: Start) -> None:
    interactions = load_cassette(SEARCH)
    first, second, last = (cassette_json(interactions[i])["links"] for i in (1, 2, 3))
    assert set(first) == {"self", "next"} and set(second) == {"prev", "self", "next"} and set(last) == {"prev", "self"}
    emu = start_emulator(dataset=many(272))
    pages = [get(f"{emu.url}/api/records?q=title:%22Bulk%20record%22&size=25&page={p}").json()["links"]
             for p in (1, 2, 11)]
    assert [set(p) for p in pages] == [set(first), set(second), set(last)]
    recorded_query = get(f"{emu.url}/api/records?q=title:%22unimpeded:%22&size=25&page=1").json()["links"]
    ours_query = urlsplit(recorded_query["self"]).query
    assert ours_query == urlsplit(first["self"]).query == "page=1&q=title:%22unimpeded:%22&size=25&sort=bestmatch"
    totals = get(f"{emu.url}/api/records?size=25&page=11").json()
    assert totals["hits"]["total"] == 272 and len(totals["hits"]["hits"]) == 22
    assert "next" not in totals["links"]


def test_error_bodies_match_recorded(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    too_big = cassette_json(load_cassette(TENSION)[0])
    reply = get(f"{emu.url}/api/records?size=1000", {"Authorization": "Bearer emulator-token"})
    assert reply.status == 400 and reply.json() == too_big
    guest = get(f"{emu.url}/api/records?size=26")
    assert guest.status == 400
    assert guest.json()["errors"][0]["messages"] == [
        "Page size cannot be greater than 25. Please use authenticated requests to increase the limit to 100."]
    missing = load_cassette(NO_DEPOSIT)[4]
    reply = get(f"{emu.url}/api/records/None")
    assert reply.status == missing["response"]["status"]["code"] == 404
    assert reply.json() == cassette_json(missing)
    assert get(f"{emu.url}/api/records?sort=nonsense").status == 400


def test_result_window_and_dangling_next_link(start_emulator: Start) -> None:
    emu = start_emulator(dataset=many(10_050, step_hours=0.5))
    last = get(f"{emu.url}/api/records?size=25&page=400")
    assert last.status == 200 and last.json()["hits"]["total"] == 10_050
    dangling = last.json()["links"]["next"]
    assert parse_qs(urlsplit(dangling).query)["page"] == ["401"]
    beyond = get(dangling)
    assert beyond.status == 400 and beyond.json() == {"status": 400, "message": "Invalid querystring parameters."}


def test_trailing_slash_redirects(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    reply = get(f"{emu.url}/api/records/?q=x&size=5")
    assert reply.status == 301 and reply.headers["location"] == f"{emu.url}/api/records?q=x&size=5"


def test_record_and_versions(start_emulator: Start) -> None:
    recorded = cassette_json(load_cassette(TENSION)[2])
    emu = start_emulator(dataset=small_dataset())
    reply = get(f"{emu.url}/api/records/22")
    assert reply.status == 200 and reply.headers["etag"] == 'W/"4"'
    assert set(recorded) <= set(reply.json())
    concept = get(f"{emu.url}/api/records/20")
    assert concept.status == 302 and concept.headers["location"] == f"{emu.url}/api/records/22"
    latest = get(f"{emu.url}/api/records/21/versions/latest")
    assert latest.status == 301 and latest.headers["location"].endswith("/api/records/22")
    versions = get(f"{emu.url}/api/records/21/versions").json()
    assert versions["hits"]["total"] == 2
    assert {h["id"] for h in versions["hits"]["hits"]} == {21, 22}


def test_access_rules(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    ids = {h["id"] for h in get(f"{emu.url}/api/records?size=25").json()["hits"]["hits"]}
    assert ids == {11, 22, 41, 61}  # latest versions only; restricted and deleted absent
    assert get(f"{emu.url}/api/records/31").json() == {"status": 403, "message": "Permission denied."}
    assert get(f"{emu.url}/api/records/51").status == 410
    files_closed = get(f"{emu.url}/api/records/41").json()
    assert files_closed["files"] == [] and files_closed["metadata"]["access_right"] == "restricted"
    assert get(f"{emu.url}/api/records/41/files").status == 403
    assert get(f"{emu.url}/api/records/61/files/data.bin/content").status == 403
    owner = {"Authorization": "Bearer emulator-token"}  # the default token belongs to user 88403
    assert get(f"{emu.url}/api/records/31", owner).status == 200
    assert get(f"{emu.url}/api/records/31?access_token=emulator-token").status == 200
    assert get(f"{emu.url}/api/records/11", {"Authorization": "Bearer wrong"}).status == 401


def test_all_versions_and_sorts(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    for flag in ("allversions=true", "all_versions=1"):
        ids = {h["id"] for h in get(f"{emu.url}/api/records?{flag}").json()["hits"]["hits"]}
        assert {21, 22} <= ids
    newest = [h["id"] for h in get(f"{emu.url}/api/records?sort=newest").json()["hits"]["hits"]]
    oldest = [h["id"] for h in get(f"{emu.url}/api/records?sort=oldest").json()["hits"]["hits"]]
    assert newest == list(reversed(oldest))
    for sort in ("mostrecent", "-mostrecent", "bestmatch", "mostdownloaded"):
        assert get(f"{emu.url}/api/records?sort={sort}").status == 200


def test_query_fields(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())

    def ids(q: str) -> set[int]:
        reply = get(f"{emu.url}/api/records?allversions=1&q={q}")
        assert reply.status == 200, reply.body
        return {h["id"] for h in reply.json()["hits"]["hits"]}

    assert ids("owners:88403") == {11}
    assert ids("title:Alkalinity") == {11}
    assert ids("alkalinity") == {11}
    assert ids("communities:nfdi4bioimage") == {21, 22}
    assert ids("communities:unknown-slug") == set()
    assert ids("doi:%2210.5281/zenodo.21%22") == {21}
    assert ids("conceptdoi:%2210.5281/zenodo.20%22") == {21, 22}
    assert ids("recid:22") == {22}
    assert ids("conceptrecid:20") == {21, 22}
    assert ids("created:[2021-01-01%20TO%202021-04-01]") == {21}
    assert ids("publication_date:[2019-01-01%20TO%202019-12-31]") == {11}
    assert ids("microscopy%20AND%20NOT%20title:v1") == {22}


def test_communities_parameter_quirk_and_endpoint(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    everything = get(f"{emu.url}/api/records").json()["hits"]["total"]
    assert get(f"{emu.url}/api/records?communities=no-such-slug").json()["hits"]["total"] == everything
    assert get(f"{emu.url}/api/records?communities=iodp").json()["hits"]["total"] == 1
    assert get(f"{emu.url}/api/communities/nfdi4bioimage/records").json()["hits"]["total"] == 1
    assert get(f"{emu.url}/api/communities/no-such-slug/records").status == 404


def test_native_shape_and_files_listing(start_emulator: Start) -> None:
    emu = start_emulator(dataset=small_dataset())
    native = get(f"{emu.url}/api/records/11", {"Accept": "application/vnd.inveniordm.v1+json"}).json()
    assert native["id"] == "11" and native["files"]["count"] == 2
    assert set(native["files"]["entries"]) == {"a.txt", "dir/b c.csv"}
    listing = get(f"{emu.url}/api/records/11/files").json()
    assert set(listing) == {"enabled", "links", "entries", "default_preview", "order"}
    entry = listing["entries"][0]
    assert {"key", "checksum", "size", "mimetype", "links", "file_id", "storage_class", "status"} <= set(entry)
    assert entry["links"]["content"].endswith("/content")


def test_large_records_omit_files_in_search(start_emulator: Start) -> None:
    crowded = record(71, concept=70, title="Many files", files={f"f{i}": 10 for i in range(5)})
    emu = start_emulator(EmulatorConfig(search_files_limit=3), dataset=Dataset([crowded]))
    hit = get(f"{emu.url}/api/records").json()["hits"]["hits"][0]
    assert "files" not in hit
    assert len(get(f"{emu.url}/api/records/71/files").json()["entries"]) == 5


def test_dataset_from_json(tmp_path, start_emulator: Start) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps({"records": [
        {"id": 5, "conceptrecid": 4, "title": "From a file", "owners": ["9"],
         "files": [{"key": "hello.txt", "content": "hello\n"}, {"key": "big.bin", "size": 5000}]}]}))
    emu = start_emulator(EmulatorConfig(dataset_file=path))
    body = get(f"{emu.url}/api/records/5").json()
    assert body["title"] == "From a file"
    assert body["files"][0]["checksum"] == "md5:b1946ac92492d2347c6235b4d2611184"
    assert get(body["files"][0]["links"]["self"]).body == b"hello\n"


@pytest.mark.parametrize("path", ["/api/records/11/files/a.txt/content", "/records/11/files/a.txt?download=1"])
def test_both_download_urls_serve_bytes(start_emulator: Start, path: str) -> None:
    emu = start_emulator(dataset=small_dataset())
    assert get(f"{emu.url}{path}").body == b"alpha\n"
