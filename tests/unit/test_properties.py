"""Properties of the pure parts, over generated input: JSON parsing, identifiers, range and resume decisions.

Whatever the server sends or the user types, the answer is a value or a clear asyncdl error (never a
KeyError or a TypeError); and no decision ever appends bytes that are not the file's next bytes.
(Path templates and sanitising: tests/unit/test_plan.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncdl.errors import BadResponseError, TransportError, UsageError
from asyncdl.invenio import Identifier, parse_files_listing, parse_identifier, parse_record, parse_search_page
from asyncdl.redact import redact
from asyncdl.transfer import check_content_range, range_answer
from asyncdl.transfer.segmented import load_sidecar, split

BASE = "https://zenodo.org"
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=20)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
# values that look like what a record holds, in right and wrong types
FIELD = st.sampled_from(["a.csv", "", "md5:" + "0" * 32, "md5:xyz", "sha256:ab", "0" * 32, "12", "-1"]) | SCALARS
FILE = st.fixed_dictionaries({}, optional={"key": FIELD, "filename": FIELD, "size": FIELD, "filesize": FIELD,
                                           "checksum": FIELD, "links": st.just({"self": f"{BASE}/x"}) | FIELD,
                                           "mimetype": FIELD, "id": FIELD})
FILES = st.lists(FILE, max_size=3) | st.fixed_dictionaries(
    {}, optional={"enabled": st.booleans() | FIELD, "entries": st.dictionaries(FIELD.map(str), FILE, max_size=3)
                  | st.lists(FILE, max_size=3) | FIELD, "count": FIELD}) | FIELD
RECORD = st.fixed_dictionaries({}, optional={
    "id": st.integers(0, 10**9) | FIELD, "recid": FIELD, "conceptrecid": FIELD, "doi": FIELD, "title": FIELD,
    "created": FIELD, "updated": FIELD, "files": FILES, "metadata": st.dictionaries(
        st.sampled_from(["title", "access_right", "doi", "publication_date", "communities", "version"]),
        FIELD | st.lists(FIELD, max_size=2), max_size=4) | FIELD,
    "stats": st.dictionaries(st.sampled_from(["downloads", "views", "unique_views"]), FIELD, max_size=3) | FIELD,
    "access": st.dictionaries(st.sampled_from(["files", "record", "status"]), FIELD, max_size=3) | FIELD,
    "parent": ANY_JSON, "owners": st.lists(FIELD, max_size=2) | FIELD, "links": ANY_JSON})


@settings(max_examples=400, deadline=None)
@given(RECORD | ANY_JSON)
def test_any_record_json_parses_or_is_a_clear_error(data: Any) -> None:
    try:
        record = parse_record(data, base_url=BASE)
    except BadResponseError as exc:
        assert str(exc)
        return
    assert record.id.strip() and record.api_url.startswith(f"{BASE}/api/records/")
    for entry in record.files:
        assert entry.key and (entry.size is None or entry.size >= 0)
        assert entry.md5 is None or (len(entry.md5) == 32 and int(entry.md5, 16) >= 0)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"hits": st.fixed_dictionaries({}, optional={
    "hits": st.lists(RECORD, max_size=3) | FIELD, "total": FIELD | st.fixed_dictionaries({"value": FIELD})}),
    "links": st.dictionaries(st.sampled_from(["next", "self"]), FIELD, max_size=2) | FIELD}) | ANY_JSON)
def test_any_search_page_parses_or_is_a_clear_error(data: Any) -> None:
    try:
        page = parse_search_page(data, base_url=BASE)
    except BadResponseError as exc:
        assert str(exc)
        return
    assert page.total is None or page.total >= 0
    assert page.next_url is None or isinstance(page.next_url, str)


@settings(max_examples=300, deadline=None)
@given(FILES | ANY_JSON)
def test_any_files_listing_parses_or_is_a_clear_error(data: Any) -> None:
    try:
        entries = parse_files_listing(data, base_url=BASE, record_id="7")
    except BadResponseError as exc:
        assert str(exc)
        return
    assert all(e.key and (e.size is None or e.size >= 0) for e in entries)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.sampled_from(["https://zenodo.org/records/", "10.5281/zenodo.", "doi:10.",
                                               "https://doi.org/10.1234/"]).flatmap(
    lambda prefix: st.text(max_size=20).map(lambda rest: prefix + rest)))
def test_any_text_is_an_identifier_or_a_clear_error(text: str) -> None:
    try:
        found = parse_identifier(text)
    except UsageError as exc:
        assert redact(text) in str(exc) or repr(redact(text)) in str(exc)
        assert "accepted forms" in str(exc)
        return
    assert found.kind in ("recid", "doi") and found.value == found.value.strip() and found.value
    if found.kind == "doi":
        assert found.value.startswith("10.") and "/" in found.value


@given(st.integers(1, 10**9), st.sampled_from(["https://zenodo.org", "https://sandbox.zenodo.org",
                                               "http://127.0.0.1:8080"]),
       st.sampled_from(["/records/{n}", "/record/{n}", "/api/records/{n}", "/records/{n}/files/a.csv?download=1",
                        "/doi/10.5281/zenodo.{n}"]))
def test_every_record_url_form_names_its_record(number: int, base: str, form: str) -> None:
    assert parse_identifier(base + form.format(n=number)) == Identifier("recid", str(number), base)


@given(st.integers(0, 10**12), st.integers(100, 599), st.sampled_from(["", "identity", "gzip", "br", " GZIP "]),
       st.sampled_from([None, "ui", "api"]))
def test_range_answers_never_append_what_is_not_the_next_bytes(offset: int, status: int, encoding: str,
                                                               kind: str | None) -> None:
    action = range_answer(offset, status, encoding, kind)
    encoded = encoding.strip().lower() not in ("", "identity")
    if offset and action == "append":  # appended at offset: only the file's own bytes from offset on
        assert (status == 206 and not encoded) or status not in (200, 206)  # the latter fail the next check
    if offset and status == 200:
        assert action == ("next-url" if kind else "restart-with-body")  # Range ignored: never appended
    if offset and status == 206 and encoded:
        assert action in ("next-url", "restart")  # a range of an encoded body is not a range of the file
    if not offset:
        assert action == "append"


@given(st.integers(0, 10**12), st.integers(1, 10**12), st.integers(0, 10**12), st.integers(0, 10**12),
       st.sampled_from(["bytes {a}-{b}/{t}", "bytes {a}-{b}/*", "{a}-{b}/{t}", "bytes  {a}-{b}/{t}", ""]))
def test_content_range_is_accepted_only_for_the_asked_offset_and_size(offset: int, size: int, start: int,
                                                                     total: int, form: str) -> None:
    header = form.format(a=start, b=max(start, total - 1), t=total)
    try:
        check_content_range(header, offset, size, "http://x")
    except TransportError:
        return
    assert start == offset and total == size  # anything else would splice the wrong bytes in


@given(st.integers(0, 10**12), st.integers(1, 64))
def test_segments_tile_the_file(size: int, count: int) -> None:
    segments = split(size, count)
    assert [s.start for s in segments[1:]] == [s.end for s in segments[:-1]]
    if size:
        assert segments[0].start == 0 and segments[-1].end == size and len(segments) <= count
    assert all(s.end > s.start and s.done == 0 for s in segments)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 10**9), data=st.fixed_dictionaries({}, optional={
    "size": st.integers(0, 10**9) | FIELD, "segments": st.lists(st.lists(st.integers(-5, 10**9) | FIELD,
                                                                             max_size=4), max_size=5) | FIELD})
       | ANY_JSON)
def test_any_sidecar_resumes_only_from_consistent_progress(tmp_path_factory: pytest.TempPathFactory, size: int,
                                                           data: Any) -> None:
    sidecar = Path(tmp_path_factory.mktemp("sidecar")) / "f.asyncdl-part.segments"
    sidecar.write_text(json.dumps(data))
    segments = load_sidecar(sidecar, size)
    if segments is None:
        return  # unusable: the part starts over
    assert segments[0].start == 0 and segments[-1].end == size
    assert [s.start for s in segments[1:]] == [s.end for s in segments[:-1]]
    assert all(s.done >= 0 and s.next_byte <= s.end for s in segments)
