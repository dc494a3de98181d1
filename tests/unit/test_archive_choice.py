"""The --archive rules and what a host's refusals teach (pure: no server needed)."""

from __future__ import annotations

import pytest

from asyncdl import RunOptions
from asyncdl.errors import NotFoundError, RemoteError, ServerError, UsageError
from asyncdl.models import FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.transfer.archive_choice import ZENODO_ARCHIVE_CAP, ArchiveChoice

HOST = "https://zenodo.example"


def record(rid: str, *sizes: int | None, host: str = HOST) -> Record:
    files = tuple(FileEntry(key=f"f{i}", size=size, checksum=None, url=f"{host}/api/records/{rid}/files/f{i}/content")
                  for i, size in enumerate(sizes))
    return Record(id=rid, title="t", api_url=f"{host}/api/records/{rid}", files=files)


def wanted(source: Record, count: int | None = None) -> list[PlannedFile]:
    return [PlannedFile(source, f, f"{source.id}/{f.key}") for f in source.files[:count]]


def choice(mode: str = "auto", threshold: int = 512 * 2**20) -> ArchiveChoice:
    return ArchiveChoice(mode, base_url=HOST, segment_threshold=threshold)


def test_auto_needs_three_files_the_cap_half_the_bytes_and_no_large_file() -> None:
    small = record("1", 100, 100, 100)
    assert choice().worth_it(small, wanted(small))
    assert not choice().worth_it(small, wanted(small, 2))  # two files: two requests either way, about
    lopsided = record("2", 10, 10, 10, 1000)
    assert not choice().worth_it(lopsided, wanted(lopsided, 3))  # 30 of 1030 bytes wanted
    assert not choice(threshold=1000).worth_it(lopsided, wanted(lopsided))  # a file at the segment threshold
    assert not choice().worth_it(record("3", 10, None, 10), wanted(record("3", 10, None, 10)))  # size unknown
    over = record("4", ZENODO_ARCHIVE_CAP, 1, 1)
    assert not choice("always").worth_it(over, wanted(over))  # over Zenodo's cap, whatever the mode


def test_always_takes_two_files_and_never_none() -> None:
    two = record("1", 10, 10)
    assert choice("always").worth_it(two, wanted(two)) and not choice("never").worth_it(two, wanted(two))
    assert not choice("always").worth_it(two, wanted(two, 1))


def test_a_400_teaches_the_hosts_cap_and_a_404_that_it_has_no_archive() -> None:
    rules = choice()
    big = record("1", 400, 400, 400)
    said = RemoteError.from_status(400, url="u", detail="Archive download is only available for records with "
                                                        "total file size up to 1000 bytes.")
    assert rules.refused(big, said) and rules.cap(big) == 1000
    fits = record("2", 300, 300, 300)
    assert not rules.worth_it(big, wanted(big)) and rules.worth_it(fits, wanted(fits))
    quiet = choice()
    assert quiet.refused(big, RemoteError.from_status(400, url="u")) and quiet.cap(big) == 1199  # below its total
    other = record("3", 400, 400, 400, host="https://other.example")
    assert quiet.cap(other) == ZENODO_ARCHIVE_CAP  # per host
    assert quiet.refused(other, NotFoundError.from_status(404, url="u")) and quiet.cap(other) == 0
    assert not quiet.refused(other, ServerError.from_status(503, url="u"))  # not about the archive: asked again


def test_an_unknown_mode_is_a_one_line_error() -> None:
    with pytest.raises(UsageError, match="archive must be one of never, auto, always, not 'sometimes'"):
        RunOptions(archive="sometimes")
