"""Tests of asyncdl.invenio against recorded Zenodo responses and hand-built InvenioRDM records."""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from asyncdl.errors import BadResponseError, UsageError
from asyncdl.invenio import (
    Identifier,
    SearchPage,
    Selection,
    TimeSlice,
    combine_query,
    content_url,
    created_clause,
    download_url,
    files_url,
    fits_window,
    last_reachable_page,
    linkset_record,
    parse_datetime,
    parse_files_listing,
    parse_identifier,
    parse_record,
    parse_search_page,
    quote_key,
    record_at,
    record_url,
    search_params,
    search_url,
    selection_query,
    split_slice,
)
from asyncdl.models import Checksum, Record, RecordStats

BASE = "https://zenodo.org"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zenodo-recorded"
CLDF = FIXTURES / "cldf__cldfzenodo__tests__fixtures__search_keyword.json"
UNIMPEDED_SEARCH = FIXTURES / "handley-lab__unimpeded__tests__cassettes__TestDatabase.test_is_available.PARTIAL.yaml"
UNIMPEDED_RECORDS = (
    FIXTURES / "handley-lab__unimpeded__tests__cassettes__"
    "TestDownloadTensionInputs.test_download_tension_inputs_caching.PARTIAL.yaml"
)
UNIMPEDED_EMPTY = (
    FIXTURES / "handley-lab__unimpeded__tests__cassettes__"
    "TestDatabaseExplorer.test_download_samples_no_deposit.PARTIAL.yaml"
)
FRICTIONLESS_SEARCH = (
    FIXTURES / "frictionlessdata__frictionless-py__data__cassettes__"
    "test_zenodo_adapter_catalog_search_by_size_and_page.yaml"
)
FRICTIONLESS_RECORD = (
    FIXTURES / "frictionlessdata__frictionless-py__data__cassettes__test_zenodo_adapter_read_record_data.yaml"
)
_RECORD_PATH = re.compile(r"/api/records/\d+")

# --------------------------------------------------------------------------- fixture loading


def _json_body(interaction: dict[str, Any]) -> Any | None:
    """The JSON body of a 200 JSON response (gunzipped if stored compressed), else None."""
    response = interaction["response"]
    headers = {name.lower(): values for name, values in response["headers"].items()}
    if response["status"]["code"] != 200 or "application/json" not in headers.get("content-type", [""])[0]:
        return None
    body = response["body"]["string"]
    if isinstance(body, bytes):
        body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return json.loads(body)


def _recorded(path: Path) -> Iterator[tuple[str, Any]]:
    """(request path, JSON body) of each JSON 200 response in a cassette."""
    for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        body = _json_body(interaction)
        if body is not None:
            yield urlsplit(interaction["request"]["uri"]).path, body


def _search_pages() -> list[tuple[str, Any]]:
    pages = [(f"{CLDF.name}", json.loads(CLDF.read_text(encoding="utf-8")))]
    for path in sorted(FIXTURES.glob("*.yaml")):
        for number, (request_path, body) in enumerate(_recorded(path)):
            if request_path.rstrip("/") == "/api/records":
                pages.append((f"{path.name}#{number}", body))
    return pages


def _record_bodies() -> list[tuple[str, Any]]:
    bodies = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        for request_path, body in _recorded(path):
            if _RECORD_PATH.fullmatch(request_path):
                bodies.append((request_path, body))
    return bodies


SEARCH_PAGES = _search_pages()
RECORD_BODIES = _record_bodies()


def _page(path: Path, index: int) -> Any:
    return [body for request_path, body in _recorded(path) if request_path.rstrip("/") == "/api/records"][index]


def _record_body(record_id: str) -> Any:
    return next(body for path, body in RECORD_BODIES if path == f"/api/records/{record_id}")


def _raw_md5(raw: str) -> str:
    return raw if raw.startswith("md5:") else f"md5:{raw}"


def test_fixtures_are_all_found() -> None:
    # cldf + frictionless + unimpeded pages 1, 2, 11 + the empty search + two size=1 searches
    assert len(SEARCH_PAGES) == 8
    assert sorted(path for path, _ in RECORD_BODIES) == [
        "/api/records/14839856",
        "/api/records/14839874",
        "/api/records/7078768",
    ]


# --------------------------------------------------------------------------- recorded search pages


def _check_against_raw(record: Record, raw: dict[str, Any]) -> None:
    assert record.id == str(raw["id"])
    assert record.title == raw["metadata"]["title"]
    assert record.doi == raw["doi"]
    assert record.conceptrecid == raw["conceptrecid"]
    assert record.conceptdoi == raw["conceptdoi"]
    assert record.created == raw["created"]
    assert parse_datetime(record.created).tzinfo is UTC
    assert record.access_right == raw["metadata"]["access_right"]
    assert record.files_listed is True
    assert record.stats.downloads == int(raw["stats"]["downloads"])
    assert record.stats.version_views == int(raw["stats"]["version_views"])
    assert record.html_url == f"{BASE}/records/{raw['id']}"
    assert record.api_url == f"{BASE}/api/records/{raw['id']}"
    assert record.metadata is raw
    assert len(record.files) == len(raw["files"])
    for entry, raw_file in zip(record.files, raw["files"], strict=True):
        key = raw_file.get("key", raw_file.get("filename"))
        assert entry.key == key
        assert entry.size == raw_file.get("size", raw_file.get("filesize"))
        assert str(entry.checksum) == _raw_md5(raw_file["checksum"])
        assert entry.file_id == raw_file.get("id")
        assert entry.url == f"{BASE}/api/records/{raw['id']}/files/{quote_key(key)}/content"
        links = raw_file["links"]
        own_link = links.get("download", links["self"])  # 2023 put the content URL under "download"
        if quote_key(key) == key and "/api/records/" in own_link:
            assert entry.url == own_link  # same URL as Zenodo's own when nothing needs quoting


@pytest.mark.parametrize(("label", "page"), SEARCH_PAGES, ids=[label for label, _ in SEARCH_PAGES])
def test_every_recorded_search_page_parses(label: str, page: Any) -> None:
    parsed = parse_search_page(page, base_url=BASE)
    assert parsed.total == page["hits"]["total"]
    assert parsed.next_url == page.get("links", {}).get("next")
    assert len(parsed.records) == len(page["hits"]["hits"])
    for record, raw in zip(parsed.records, page["hits"]["hits"], strict=True):
        _check_against_raw(record, raw)


@pytest.mark.parametrize(("label", "body"), RECORD_BODIES, ids=[label for label, _ in RECORD_BODIES])
def test_every_recorded_record_parses(label: str, body: Any) -> None:
    _check_against_raw(parse_record(body, base_url=BASE), body)


def test_unimpeded_record_14839874() -> None:
    record = parse_record(_record_body("14839874"), base_url=BASE)
    assert record.id == "14839874"
    assert record.title == "unimpeded: lcdm planck_2018_plik"
    assert record.doi == "10.5281/zenodo.14839874"
    assert record.conceptrecid == "14839873"
    assert record.conceptdoi == "10.5281/zenodo.14839873"
    assert record.publication_date == "2025-02-09"
    assert record.updated == "2025-02-10T05:02:53.921195+00:00"
    assert record.access_right == "open"
    assert record.owners == ("1102598",)
    assert record.communities == ()
    assert record.stats.downloads == 76
    assert record.stats.unique_views == 5
    assert len(record.files) == 5
    first = record.files[0]
    assert first.key == "ns_lcdm_planck_2018_plik.prior_info"
    assert first.size == 48
    assert first.checksum == Checksum("md5", "6dc8b0a5b8af4a7f4139b04b97b0710b")
    assert first.file_id == "4c785186-1d5d-4dc9-bee7-a1cb857d9c04"
    assert first.url == (
        "https://zenodo.org/api/records/14839874/files/ns_lcdm_planck_2018_plik.prior_info/content"
    )
    assert record.files[4].checksum == Checksum("md5", "090a424d1722e8e56f988e8ed7bb0375")
    assert record.total_bytes == 48 + 12990 + 68499147 + 12669 + 102278866


def test_unimpeded_pages_and_key_with_spaces() -> None:
    first = _page(UNIMPEDED_SEARCH, 0)
    last = _page(UNIMPEDED_SEARCH, 2)
    page1 = parse_search_page(first, base_url=BASE)
    page11 = parse_search_page(last, base_url=BASE)
    assert page1.total == page11.total == 272
    assert len(page1.records) == 25
    assert page1.next_url == "https://zenodo.org/api/records?page=2&q=title:%22unimpeded:%22&size=25&sort=bestmatch"
    assert len(page11.records) == 22
    assert page11.next_url is None
    assert last_reachable_page(total=272, size=25) == 11  # the recorded last page, the one without "next"

    plus = page1.records[0].files[0]
    assert plus.key == "ns_nrunlcdm_planck_2018_CamSpec+sn.pantheon.prior_info"
    assert plus.url.endswith("/files/ns_nrunlcdm_planck_2018_CamSpec%2Bsn.pantheon.prior_info/content")

    minflux = next(r for r in page11.records if r.id == "7565676")
    (entry,) = minflux.files
    assert entry.key == "Repository for MINFLUX dissects the unimpeded walking of kinesin-1.zip"
    assert entry.size == 38213434
    assert entry.checksum == Checksum("md5", "473e28f9444427c55540362f84df350e")
    quoted = "Repository%20for%20MINFLUX%20dissects%20the%20unimpeded%20walking%20of%20kinesin-1.zip"
    assert entry.url == f"https://zenodo.org/api/records/7565676/files/{quoted}/content"
    assert " " in minflux.metadata["files"][0]["links"]["self"]  # Zenodo's own link was not quoted
    assert download_url(base_url=BASE, record_id=minflux.id, key=entry.key) == (
        f"https://zenodo.org/records/7565676/files/{quoted}?download=1"
    )


def test_cldf_post_migration_shape() -> None:
    page = parse_search_page(json.loads(CLDF.read_text(encoding="utf-8")), base_url=BASE)
    assert page.total == 29
    assert page.next_url is None
    assert len(page.records) == 10
    record = page.records[0]
    assert record.id == "8250015"
    assert record.version == "v1.0"
    assert record.communities == ("dplace", "phlorest")
    assert record.stats.views == 2
    assert record.updated == "2023-08-16T02:26:53.957938+00:00"
    (entry,) = record.files
    assert entry.key == "phlorest/chang_et_al2015-v1.0.zip"
    assert entry.size == 56054523
    assert entry.checksum == Checksum("md5", "fbe30139de78919af8016d5494b280c5")
    assert entry.url == "https://zenodo.org/api/records/8250015/files/phlorest/chang_et_al2015-v1.0.zip/content"


def test_frictionless_legacy_2022_shape() -> None:
    page = parse_search_page(_page(FRICTIONLESS_SEARCH, 0), base_url=BASE)
    assert page.total == 10
    assert page.next_url == (
        "https://zenodo.org/api/records/?sort=bestmatch&q=title%3A%22Frictionless+Data+Test%22&page=2&size=2"
    )
    record = page.records[0]
    assert record.id == "7089850"
    assert record.owners == ("405552",)  # 2022 owners were bare ints
    assert (record.stats.downloads, record.stats.unique_downloads, record.stats.views) == (18, 7, 4)
    (entry,) = record.files
    assert entry.url == "https://zenodo.org/api/records/7089850/files/pubtable.xls/content"  # not the bucket URL

    single = parse_record(_record_body("7078768"), base_url=BASE)
    assert single.title == "Frictionless Data Test Dataset Without Descriptor"
    assert [(f.key, f.size) for f in single.files] == [("capitals.csv", 76), ("table.xls", 6144)]
    assert single.files[0].checksum == Checksum("md5", "154d822b8c2aa259867067f01c0efee5")


def test_recorded_empty_search() -> None:
    page = parse_search_page(_page(UNIMPEDED_EMPTY, 0), base_url=BASE)
    assert page == SearchPage(records=(), total=0, next_url=None)


# --------------------------------------------------------------------------- native InvenioRDM shape

RDM = "http://127.0.0.1:8080/"
NATIVE: dict[str, Any] = {
    "id": "a1b2c-3d4e5",
    "created": "2024-03-01T10:00:00.123456+00:00",
    "updated": "2024-03-02T11:00:00+00:00",
    "pids": {"doi": {"identifier": "10.1234/rdm.a1b2c-3d4e5", "provider": "datacite"}},
    "parent": {
        "id": "p0p0p-q1q1q",
        "pids": {"doi": {"identifier": "10.1234/rdm.p0p0p-q1q1q"}},
        "communities": {
            "ids": ["6f2d1a3e-0000-4000-8000-000000000001"],
            "default": "6f2d1a3e-0000-4000-8000-000000000001",
            "entries": [{"id": "6f2d1a3e-0000-4000-8000-000000000001", "slug": "astro"}],
        },
        "access": {"owned_by": {"user": "42"}},
    },
    "metadata": {"title": "A native record", "publication_date": "2024-03-01", "version": "v2"},
    "access": {
        "record": "public",
        "files": "public",
        "embargo": {"active": False, "reason": None},
        "status": "open",
    },
    "files": {
        "enabled": True,
        "count": 2,
        "total_bytes": 1234,
        "entries": {
            "data/table one.csv": {
                "id": "f0000001",
                "key": "data/table one.csv",
                "size": 1000,
                "checksum": "md5:" + "A" * 32,
                "mimetype": "text/csv",
                "links": {"content": "http://127.0.0.1:8080/api/records/a1b2c-3d4e5/files/data/table one.csv/content"},
            },
            "notes#1?.txt": {"size": 234, "checksum": "sha256:abc123", "mimetype": "text/plain"},
        },
    },
    "stats": {
        "all_versions": {"views": 10, "unique_views": 9, "downloads": 8, "unique_downloads": 7, "data_volume": 1.0},
        "this_version": {"views": 4, "unique_views": 3, "downloads": 2, "unique_downloads": 1},
    },
}


def _native(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(NATIVE)
    data.update(changes)
    return data


def test_native_record() -> None:
    record = parse_record(NATIVE, base_url=RDM)
    assert record.id == "a1b2c-3d4e5"
    assert record.title == "A native record"
    assert record.doi == "10.1234/rdm.a1b2c-3d4e5"
    assert record.conceptrecid == "p0p0p-q1q1q"
    assert record.conceptdoi == "10.1234/rdm.p0p0p-q1q1q"
    assert record.version == "v2"
    assert record.publication_date == "2024-03-01"
    assert record.access_right == "open"
    assert record.owners == ("42",)
    assert record.communities == ("astro",)
    assert record.html_url == "http://127.0.0.1:8080/records/a1b2c-3d4e5"
    assert record.api_url == "http://127.0.0.1:8080/api/records/a1b2c-3d4e5"
    assert record.files_listed is True
    assert record.total_bytes == 1234
    table, notes = record.files
    assert table.key == "data/table one.csv"
    assert table.checksum == Checksum("md5", "a" * 32)
    assert table.mimetype == "text/csv"
    assert table.file_id == "f0000001"
    assert table.url == "http://127.0.0.1:8080/api/records/a1b2c-3d4e5/files/data/table%20one.csv/content"
    assert notes.key == "notes#1?.txt"  # taken from the entries' own key
    assert notes.checksum == Checksum("sha256", "abc123")  # unknown algorithm kept
    assert notes.url == "http://127.0.0.1:8080/api/records/a1b2c-3d4e5/files/notes%231%3F.txt/content"
    stats = record.stats
    assert (stats.downloads, stats.unique_downloads, stats.views, stats.unique_views) == (8, 7, 10, 9)
    assert (stats.version_downloads, stats.version_unique_downloads) == (2, 1)
    assert (stats.version_views, stats.version_unique_views) == (4, 3)


def test_native_entries_as_list_and_community_ids() -> None:
    data = _native()
    data["files"]["entries"] = list(data["files"]["entries"].values())
    data["files"]["entries"][1]["key"] = "notes.txt"
    del data["parent"]["communities"]["entries"]
    del data["stats"]
    record = parse_record(data, base_url=RDM)
    assert [f.key for f in record.files] == ["data/table one.csv", "notes.txt"]
    assert record.communities == ("6f2d1a3e-0000-4000-8000-000000000001",)
    assert record.stats.downloads == 0


def test_native_access_without_status() -> None:
    restricted = {"record": "public", "files": "restricted", "embargo": {"active": False}}
    embargoed = {"record": "public", "files": "restricted", "embargo": {"active": True}}
    public = {"record": "public", "files": "public"}
    assert parse_record(_native(access=restricted), base_url=RDM).access_right == "restricted"
    assert parse_record(_native(access=embargoed), base_url=RDM).access_right == "embargoed"
    assert parse_record(_native(access=public), base_url=RDM).access_right == "open"
    assert parse_record(_native(access={}), base_url=RDM).access_right is None


def test_native_owned_by_list_form() -> None:
    data = _native()
    data["parent"]["access"]["owned_by"] = [{"user": 7}, {"user": "8"}, {"user": 7}]
    assert parse_record(data, base_url=RDM).owners == ("7", "8")


# --------------------------------------------------------------------------- files_listed


@pytest.mark.parametrize(
    ("files", "access_right", "listed"),
    [
        (None, "open", False),  # no "files" key at all
        ([], "restricted", False),
        ([], "embargoed", False),
        ([], None, False),
        ([], "open", True),  # an open legacy record with no files
        ([{"key": "a", "size": 1}], "restricted", True),
    ],
)
def test_files_listed_legacy(files: list[Any] | None, access_right: str | None, listed: bool) -> None:
    data: dict[str, Any] = {"id": 1, "metadata": {"title": "t"}}
    if access_right is not None:
        data["metadata"]["access_right"] = access_right
    if files is not None:
        data["files"] = files
    assert parse_record(data, base_url=BASE).files_listed is listed


@pytest.mark.parametrize(
    ("files", "listed", "count"),
    [
        ({"enabled": True, "count": 3, "entries": {"a": {"size": 1}, "b": {"size": 2}}}, False, 2),
        ({"enabled": True, "count": 2}, False, 0),  # entries absent (restricted files)
        ({"enabled": True}, False, 0),
        ({"enabled": False}, True, 0),  # a metadata-only record
        ({"enabled": True, "count": 0, "entries": {}}, True, 0),
        ({"enabled": True, "count": 1, "entries": {"a": {"size": 1}}}, True, 1),
        ({"enabled": True, "entries": {"a": {"size": 1}}}, True, 1),
    ],
)
def test_files_listed_native(files: dict[str, Any], listed: bool, count: int) -> None:
    record = parse_record(_native(files=files), base_url=RDM)
    assert record.files_listed is listed
    assert len(record.files) == count


# --------------------------------------------------------------------------- odd and bad shapes


def test_title_fallbacks_and_missing_checksum() -> None:
    top = parse_record({"id": 3, "title": "Top", "metadata": {}, "files": []}, base_url=BASE)
    assert top.title == "Top"
    bare = parse_record({"recid": "4", "files": [{"key": "k", "size": 0}]}, base_url=BASE)
    assert (bare.id, bare.title) == ("4", "")
    assert bare.files[0].checksum is None
    assert bare.files[0].size == 0
    sizeless = parse_record({"id": 5, "files": [{"key": "k", "checksum": ""}]}, base_url=BASE)
    assert (sizeless.files[0].size, sizeless.files[0].checksum) == (None, None)


def _files(*entries: Any) -> dict[str, Any]:
    return {"id": 77, "metadata": {"access_right": "open"}, "files": list(entries)}


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ([], ["not a JSON object"]),
        ("{}", ["not a JSON object"]),
        ({"title": "no id"}, ["no id"]),
        ({"id": True}, ["no id"]),
        ({"id": "  "}, ["no id"]),
        (_files({"size": 1}), ["record 77", "no key"]),
        (_files({"key": "", "size": 1}), ["record 77", "no key"]),
        (_files({"key": "a b.txt", "size": "12"}), ["record 77", "'a b.txt'", "size"]),
        (_files({"key": "a.txt", "size": -3}), ["record 77", "'a.txt'", "negative"]),
        (_files({"key": "a.txt", "size": True}), ["'a.txt'", "size"]),
        (_files({"key": "a.txt", "size": 1.5}), ["'a.txt'", "size"]),
        (_files({"filename": "f.zip", "filesize": "big"}), ["'f.zip'", "size"]),
        (_files({"key": "a.txt", "checksum": "md5:xyz"}), ["record 77", "'a.txt'", "md5"]),
        (_files({"filename": "b.zip", "checksum": "nothex"}), ["'b.zip'", "md5"]),
        (_files({"key": "a.txt", "checksum": 12}), ["'a.txt'", "checksum"]),
        (_files("a.txt"), ["record 77", "not an object"]),
        ({"id": 77, "files": "a.txt"}, ["record 77", "neither"]),
        ({"id": "x", "files": {"enabled": True, "entries": 7}}, ["record x", "neither"]),
        ({"id": "x", "files": {"entries": {"k": {"size": -1}}}}, ["record x", "'k'", "negative"]),
    ],
)
def test_bad_record_shapes(data: Any, fragments: list[str]) -> None:
    with pytest.raises(BadResponseError) as caught:
        parse_record(data, base_url=BASE)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_bad_file_error_names_the_record_url() -> None:
    with pytest.raises(BadResponseError) as caught:
        parse_record(_files({"key": "a.txt", "size": -1}), base_url=BASE)
    assert caught.value.url == "https://zenodo.org/api/records/77"


# --------------------------------------------------------------------------- /files listing


def test_parse_files_listing_list_and_dict() -> None:
    entry = {
        "key": "dir/x y.bin",
        "checksum": "md5:" + "0" * 32,
        "size": 10,
        "mimetype": "application/octet-stream",
        "storage_class": "L",
        "status": "completed",
        "file_id": "fid-1",
        "links": {"content": "https://zenodo.org/api/records/9/files/dir/x y.bin/content"},
    }
    listing = {"enabled": True, "entries": [entry], "links": {"self": "x"}, "order": []}
    (parsed,) = parse_files_listing(listing, base_url=BASE, record_id="9")
    assert parsed.key == "dir/x y.bin"
    assert parsed.size == 10
    assert parsed.file_id == "fid-1"
    assert parsed.mimetype == "application/octet-stream"
    assert parsed.url == "https://zenodo.org/api/records/9/files/dir/x%20y.bin/content"
    as_dict = {"enabled": True, "entries": {"dir/x y.bin": {k: v for k, v in entry.items() if k != "key"}}}
    assert parse_files_listing(as_dict, base_url=BASE, record_id="9") == (parsed,)


@pytest.mark.parametrize(
    "listing", [{"enabled": False, "links": {}}, {"enabled": True}, {"enabled": True, "entries": None}]
)
def test_parse_files_listing_without_entries(listing: dict[str, Any]) -> None:
    assert parse_files_listing(listing, base_url=BASE, record_id="9") == ()


def test_parse_files_listing_bad_shapes() -> None:
    with pytest.raises(BadResponseError, match="record 9"):
        parse_files_listing([], base_url=BASE, record_id="9")
    with pytest.raises(BadResponseError, match=r"record 9, file 'k'.*negative"):
        parse_files_listing({"entries": [{"key": "k", "size": -5}]}, base_url=BASE, record_id="9")


# --------------------------------------------------------------------------- search pages


def test_search_page_total_forms_and_missing_links() -> None:
    hit = {"id": 1, "files": []}
    page = parse_search_page({"hits": {"hits": [hit], "total": {"value": 3, "relation": "eq"}}}, base_url=BASE)
    assert page.total == 3
    assert page.next_url is None
    assert [r.id for r in page.records] == ["1"]
    assert parse_search_page({"hits": {"hits": []}}, base_url=BASE).total is None
    linked = {"hits": {"hits": [], "total": 0}, "links": {"self": "s", "next": "n"}}
    assert parse_search_page(linked, base_url=BASE).next_url == "n"


@pytest.mark.parametrize(
    "data",
    [[], "<html>", {"hits": []}, {"hits": {"total": 3}}, {"hits": {"hits": {}}}, {"message": "x"}],
)
def test_bad_search_pages(data: Any) -> None:
    with pytest.raises(BadResponseError):
        parse_search_page(data, base_url=BASE)


def test_bad_hit_in_search_page_raises() -> None:
    with pytest.raises(BadResponseError, match="no id"):
        parse_search_page({"hits": {"hits": [{"id": 1}, {"title": "x"}], "total": 2}}, base_url=BASE)


# --------------------------------------------------------------------------- URLs


def test_url_builders() -> None:
    assert record_url("https://zenodo.org/", "12") == "https://zenodo.org/api/records/12"
    assert files_url("https://zenodo.org", "12") == "https://zenodo.org/api/records/12/files"
    assert content_url(base_url="https://sandbox.zenodo.org/", record_id="12", key="a b/c#d?e%f.txt") == (
        "https://sandbox.zenodo.org/api/records/12/files/a%20b/c%23d%3Fe%25f.txt/content"
    )
    assert download_url(base_url="https://zenodo.org", record_id="12", key="ü.txt") == (
        "https://zenodo.org/records/12/files/%C3%BC.txt?download=1"
    )


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1))
def test_quoted_key_never_breaks_the_url(key: str) -> None:
    url = content_url(base_url=BASE, record_id="5", key=key)
    parts = urlsplit(url)
    assert (parts.query, parts.fragment) == ("", "")
    quoted = parts.path.removeprefix("/api/records/5/files/").removesuffix("/content")
    assert not set(quoted) & set(" ?#\n\t")
    assert unquote(quoted) == key
    assert quoted.isascii()


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", Identifier("recid", "123")),
        ("  123\n", Identifier("recid", "123")),
        ("https://zenodo.org/records/123", Identifier("recid", "123", "https://zenodo.org")),
        ("https://zenodo.org/records/123/", Identifier("recid", "123", "https://zenodo.org")),
        ("https://zenodo.org/records/123?preview=1#files", Identifier("recid", "123", "https://zenodo.org")),
        ("https://zenodo.org/record/123", Identifier("recid", "123", "https://zenodo.org")),
        ("/record/123", Identifier("recid", "123")),
        ("/records/123", Identifier("recid", "123")),
        ("/api/records/123", Identifier("recid", "123")),
        ("https://zenodo.org/api/records/123", Identifier("recid", "123", "https://zenodo.org")),
        ("https://zenodo.org/records/123/files/x?download=1", Identifier("recid", "123", "https://zenodo.org")),
        ("https://zenodo.org/records/123/files/a%20b.zip/content", Identifier("recid", "123", "https://zenodo.org")),
        ("zenodo.org/records/123", Identifier("recid", "123", "https://zenodo.org")),
        ("https://sandbox.zenodo.org/records/77", Identifier("recid", "77", "https://sandbox.zenodo.org")),
        ("http://127.0.0.1:8080/records/5", Identifier("recid", "5", "http://127.0.0.1:8080")),
        ("https://rdm.example.org/records/abcde-12345", Identifier("recid", "abcde-12345", "https://rdm.example.org")),
        ("https://zenodo.org/doi/10.5281/zenodo.123", Identifier("recid", "123", "https://zenodo.org")),
        ("https://doi.org/10.5281/zenodo.123", Identifier("recid", "123")),
        ("http://dx.doi.org/10.5281/ZENODO.123", Identifier("recid", "123")),
        ("doi:10.5281/zenodo.123", Identifier("recid", "123")),
        ("DOI: 10.5281/zenodo.123", Identifier("recid", "123")),
        ("10.5281/zenodo.123", Identifier("recid", "123")),
        ("10.5072/zenodo.99", Identifier("recid", "99")),
        ("10.1234/abc.def", Identifier("doi", "10.1234/abc.def")),
        ("doi:10.1234/abc.def", Identifier("doi", "10.1234/abc.def")),
        ("https://doi.org/10.1234/ABC", Identifier("doi", "10.1234/ABC")),
        ("https://doi.org/10.1234%2Fabc", Identifier("doi", "10.1234/abc")),
        ("https://zenodo.org/doi/10.1234/xyz", Identifier("doi", "10.1234/xyz", "https://zenodo.org")),
        ("10.5281/zenodo.123.abc", Identifier("doi", "10.5281/zenodo.123.abc")),
    ],
)
def test_parse_identifier(text: str, expected: Identifier) -> None:
    assert parse_identifier(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "12a",
        "-5",
        "10.5281/",
        "11.5281/zenodo.1",
        "https://zenodo.org/communities/astro",
        "https://zenodo.org/search?q=x",
        "https://zenodo.org/records/",
        "https://zenodo.org/records/12x",
        "ftp://zenodo.org/records/1",
        "https://doi.org/not-a-doi",
        "doi:",
    ],
)
def test_parse_identifier_rejects(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_identifier(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "accepted forms" in message
    assert "https://zenodo.org/records/123" in message
    assert "10.5281/zenodo.123" in message


@given(st.integers(min_value=0, max_value=10**12))
def test_any_record_number_round_trips(number: int) -> None:
    for text in (str(number), f"10.5281/zenodo.{number}"):
        assert parse_identifier(text) == Identifier("recid", str(number))
    assert parse_identifier(f"{BASE}/records/{number}") == Identifier("recid", str(number), BASE)


# --------------------------------------------------------------------------- selections and search URLs


@pytest.mark.parametrize(
    ("selection", "query"),
    [
        (Selection(), ""),
        (Selection(query="  "), ""),
        (Selection(owner="88403"), "parent.access.owned_by.user:88403"),
        (Selection(query="title:x"), "title:x"),
        (Selection(query="title:x OR y", owner="88403"), "(title:x OR y) AND parent.access.owned_by.user:88403"),
    ],
)
def test_selection_query(selection: Selection, query: str) -> None:
    assert selection_query(selection) == query


def test_selection_defaults_and_bad_regex() -> None:
    selection = Selection(identifiers=("1", "2"))
    assert (selection.community, selection.owner, selection.query, selection.title_regex) == (None,) * 4
    assert selection.all_versions is False
    with pytest.raises(UsageError, match="title regex"):
        Selection(title_regex="(unclosed")


def test_search_params() -> None:
    assert search_params(query="", page=1, size=25, sort="newest", all_versions=False) == {
        "sort": "newest",
        "page": "1",
        "size": "25",
    }
    assert search_params(query="owners:1", page=3, size=100, sort="oldest", all_versions=True) == {
        "q": "owners:1",
        "sort": "oldest",
        "page": "3",
        "size": "100",
        "allversions": "true",
    }
    with pytest.raises(ValueError):
        search_params(query="", page=0, size=25, sort="newest", all_versions=False)


def test_search_url() -> None:
    assert search_url(base_url="https://zenodo.org/") == "https://zenodo.org/api/records"
    assert search_url(base_url="https://zenodo.org", community="my-comm") == (
        "https://zenodo.org/api/communities/my-comm/records"
    )
    assert search_url(base_url="https://zenodo.org", community="a/b c") == (
        "https://zenodo.org/api/communities/a%2Fb%20c/records"
    )


# --------------------------------------------------------------------------- result window


@pytest.mark.parametrize(
    ("total", "size", "page"),
    [
        (272, 25, 11),
        (12000, 25, 400),
        (12000, 100, 100),
        (0, 25, 1),
        (1, 25, 1),
        (25, 25, 1),
        (26, 25, 2),
        (10000, 25, 400),
        (10001, 25, 400),
        (10000, 30, 333),
    ],
)
def test_last_reachable_page(total: int, size: int, page: int) -> None:
    assert last_reachable_page(total=total, size=size) == page


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=500))
def test_last_reachable_page_is_the_largest_valid_page(total: int, size: int) -> None:
    page = last_reachable_page(total=total, size=size, window=10000)
    assert page >= 1
    if page > 1:
        assert page * size <= 10000 and (page - 1) * size < total
    following = page + 1
    assert following * size > 10000 or (following - 1) * size >= total


def test_fits_window() -> None:
    assert fits_window(10000)
    assert not fits_window(10001)
    assert fits_window(500, window=500)
    assert fits_window(9990, size=30)
    assert not fits_window(10000, size=30)  # page 334 would end at hit 10020
    with pytest.raises(ValueError):
        last_reachable_page(total=5, size=0)


# --------------------------------------------------------------------------- date slicing


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_created_clause_forms() -> None:
    days = TimeSlice(_utc(2020, 1, 1), _utc(2020, 2, 1))
    assert created_clause(days) == "created:[2020-01-01 TO 2020-02-01}"
    hours = TimeSlice(_utc(2020, 1, 1), _utc(2020, 1, 1, 12))
    assert created_clause(hours) == 'created:["2020-01-01T00:00:00" TO "2020-01-01T12:00:00"}'
    plus_one = timezone(timedelta(hours=1))
    shifted = TimeSlice(datetime(2020, 1, 1, 1, tzinfo=plus_one), datetime(2020, 1, 2, 1, tzinfo=plus_one))
    assert shifted.start == _utc(2020, 1, 1)
    assert created_clause(shifted) == "created:[2020-01-01 TO 2020-01-02}"


def test_combine_query() -> None:
    clause = "created:[2020-01-01 TO 2020-02-01}"
    assert combine_query("", clause) == clause
    assert combine_query("  ", clause) == clause
    assert combine_query("title:x OR y", clause) == f"(title:x OR y) AND {clause}"


def test_split_slice_examples() -> None:
    month = TimeSlice(_utc(2020, 1, 1), _utc(2020, 2, 1))
    assert split_slice(month) == (
        TimeSlice(_utc(2020, 1, 1), _utc(2020, 1, 16)),
        TimeSlice(_utc(2020, 1, 16), _utc(2020, 2, 1)),
    )
    short = TimeSlice(_utc(2020, 1, 1), _utc(2020, 1, 2, 12))
    assert split_slice(short)[0].end == _utc(2020, 1, 1, 18)
    three_seconds = TimeSlice(_utc(2020, 1, 1), _utc(2020, 1, 1, 0, 0, 3))
    assert split_slice(three_seconds)[0].end == _utc(2020, 1, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="one-second"):
        split_slice(TimeSlice(_utc(2020, 1, 1), _utc(2020, 1, 1, 0, 0, 1)))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2020, 1, 1), datetime(2020, 1, 2, tzinfo=UTC)),  # naive
        (_utc(2020, 1, 2), _utc(2020, 1, 1)),
        (_utc(2020, 1, 1), _utc(2020, 1, 1)),
        (datetime(2020, 1, 1, 0, 0, 0, 5, tzinfo=UTC), _utc(2020, 1, 2)),
    ],
)
def test_bad_time_slices(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError):
        TimeSlice(start, end)


def test_recursive_slicing_tiles_the_range() -> None:
    whole = TimeSlice(_utc(2013, 1, 1), _utc(2026, 1, 1))
    pending, done = [whole], []
    while pending:
        piece = pending.pop()
        if piece.duration <= timedelta(days=1, hours=6):
            done.append(piece)
        else:
            pending.extend(reversed(split_slice(piece)))
    assert done[0].start == whole.start and done[-1].end == whole.end
    assert all(a.end == b.start for a, b in itertools.pairwise(done))
    day_clause = re.compile(r"created:\[\d{4}-\d\d-\d\d TO \d{4}-\d\d-\d\d\}")
    assert all(day_clause.fullmatch(created_clause(p)) for p in done)
    assert len(done) == (whole.end - whole.start).days  # every slice is one whole day


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    st.integers(min_value=2, max_value=20 * 365 * 86400),
)
def test_split_slice_halves_cover_the_slice(start: datetime, seconds: int) -> None:
    begin = start.replace(microsecond=0, tzinfo=UTC)
    piece = TimeSlice(begin, begin + timedelta(seconds=seconds))
    first, second = split_slice(piece)
    assert first.start == piece.start
    assert first.end == second.start
    assert second.end == piece.end
    assert first.duration + second.duration == piece.duration
    assert first.duration > timedelta(0) and second.duration > timedelta(0)
    if piece.duration > timedelta(days=2):
        assert first.end.time() == datetime.min.time()
        assert abs(first.duration - second.duration) <= timedelta(days=2)
    else:
        assert abs(first.duration - second.duration) <= timedelta(seconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-05-03T20:46:52.766363+00:00", datetime(2022, 5, 3, 20, 46, 52, 766363, tzinfo=UTC)),
        ("2022-05-03", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03T22:46:52+02:00", datetime(2022, 5, 3, 20, 46, 52, tzinfo=UTC)),
        ("2022-05-03T20:46:52Z", datetime(2022, 5, 3, 20, 46, 52, tzinfo=UTC)),
        (" 2022-05-03T20:46:52 ", datetime(2022, 5, 3, 20, 46, 52, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2022-13-01", "03/05/2022"])
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="ISO"):
        parse_datetime(text)


def test_statistics_that_are_not_finite_numbers_count_as_zero() -> None:
    """JSON may say Infinity or NaN (Python's json reads both): a count of 0, not a crash."""
    stats = RecordStats.from_json(json.loads('{"downloads": Infinity, "views": NaN, "unique_views": 3.0}'))
    assert (stats.downloads, stats.views, stats.unique_views) == (0, 0, 3)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://rogue-scholar.org/api/records/23y6y-vh985>; rel="linkset"; type="application/linkset+json"',
         Identifier("recid", "23y6y-vh985", "https://rogue-scholar.org")),
        ('<https://x.org/a>; rel="cite-as", </api/records/7>; rel="linkset"; type="application/linkset+json"',
         Identifier("recid", "7", "https://host.example")),
        ('<https://x.org/api/records/7>; rel="cite-as"', None),
        ("", None),
    ],
)
def test_linkset_header_names_the_record(header: str, expected: Identifier | None) -> None:
    assert linkset_record(header, page_url="https://host.example/landing") == expected


def test_record_at_keeps_the_instance_and_refuses_other_paths() -> None:
    assert record_at("http://127.0.0.1:9/records/abcde-12345") == Identifier("recid", "abcde-12345",
                                                                             "http://127.0.0.1:9")
    assert record_at("https://data.caltech.edu/search?q=x") is None
    assert record_at("/records/1") is None
