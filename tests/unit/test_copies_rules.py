"""Which planned files are the same stored file, and which one is fetched (asyncdl.transfer.copies)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import pytest

from asyncdl.events import FileFinished
from asyncdl.models import Checksum, FileEntry, Record
from asyncdl.plan import PlannedFile
from asyncdl.transfer import copies as copies_module
from asyncdl.transfer.copies import Copies, Source, identities

MD5 = "0" * 31 + "1"
RECORD = Record(id="1", title="t")


def planned(path: str, *, file_id: str | None = None, md5: str | None = None, size: int | None = 10) -> PlannedFile:
    return PlannedFile(RECORD, FileEntry(key=path, size=size, url="http://x", file_id=file_id,
                                         checksum=Checksum("md5", md5) if md5 else None), path)


def test_a_stored_file_is_known_by_its_id_and_by_its_md5_and_size() -> None:
    assert identities(planned("a", file_id="f1", md5=MD5).entry) == ("id:f1", f"md5:{MD5}:10")
    assert identities(planned("a", file_id="f1").entry) == ("id:f1",)  # no md5 (a multipart checksum, say)
    assert identities(planned("a", md5=MD5, size=None).entry) == ()  # an md5 without a size is not enough
    assert identities(planned("a").entry) == ()


@pytest.mark.parametrize(("first", "second"), [
    (("f1", None), ("f1", None)),  # by id, without any md5
    ((None, MD5), (None, MD5)),  # by md5 and size
    (("f1", MD5), ("f2", MD5)),  # other ids, the same bytes
])
def test_the_first_is_fetched_and_the_others_wait_for_it(first: tuple[str | None, str | None],
                                                         second: tuple[str | None, str | None]) -> None:
    copies = Copies(lambda item: None)
    assert copies.source_of(planned("a", file_id=first[0], md5=first[1])) is None  # fetched: the source
    source = copies.source_of(planned("b", file_id=second[0], md5=second[1]))
    assert source is not None and source.path == "a" and not source.arrived.is_set()
    assert copies.source_of(planned("a", file_id=first[0], md5=first[1])) is None  # never its own copy


@pytest.mark.parametrize(("outcome", "ok"), [("ok", True), ("skipped", True), ("linked", True), ("failed", False)])
def test_a_source_arrives_with_its_outcome(outcome: str, ok: bool) -> None:
    copies = Copies(lambda item: None)
    copies.source_of(planned("a", md5=MD5))
    source = copies.source_of(planned("b", md5=MD5))
    assert source is not None
    copies.emit(FileFinished("a", outcome, "", 10))
    assert source.arrived.is_set() and source.ok is ok
    later = copies.source_of(planned("c", md5=MD5))
    if ok:  # a later copy links from the verified source at once
        assert later is source
    else:  # a failed source is forgotten: the next copy is fetched and becomes the source
        assert later is None


def test_different_files_and_other_paths_events_change_nothing() -> None:
    copies = Copies(lambda item: None)
    assert copies.source_of(planned("a", md5=MD5)) is None
    assert copies.source_of(planned("b", md5=MD5, size=11)) is None  # another size: another file
    assert copies.source_of(planned("c", md5="2" * 32)) is None
    source = copies.source_of(planned("d", md5=MD5))
    assert source is not None
    copies.emit(FileFinished("zzz", "ok", "", 10))
    assert not source.arrived.is_set()


def test_a_copy_finished_before_is_asked_for_only_when_none_is_planned_in_this_run() -> None:
    asked: list[str] = []

    def earlier(item: PlannedFile) -> Source | None:
        asked.append(item.path)
        return Source.finished("old/a", 123.0) if item.path == "x" else None

    copies = Copies(earlier)
    found = copies.source_of(planned("x", md5=MD5))
    assert found is not None and (found.path, found.ok, found.mtime) == ("old/a", True, 123.0)
    assert found.arrived.is_set()
    assert copies.source_of(planned("y", md5="3" * 32)) is None
    assert copies.source_of(planned("z", md5="3" * 32)) is not None
    assert asked == ["x", "y"]  # z found y planned in this run without asking the journals


def test_sources_are_anyio_events() -> None:
    async def main() -> None:
        copies = Copies(lambda item: None)
        copies.source_of(planned("a", md5=MD5))
        source = copies.source_of(planned("b", md5=MD5))
        assert source is not None
        copies.emit(FileFinished("a", "ok", "", 10))
        with anyio.fail_after(1):
            await source.arrived.wait()

    anyio.run(main)


def test_the_newest_sources_are_remembered_and_the_oldest_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources that arrived stay in memory up to RECENT (then the journals know them)."""
    monkeypatch.setattr(copies_module, "RECENT", 2)
    copies = Copies(lambda item: None)
    for path, md5 in (("a", "a" * 32), ("b", "b" * 32), ("c", "c" * 32)):
        copies.source_of(planned(path, md5=md5))
        copies.emit(FileFinished(path, "ok", "", 10))
    assert copies.source_of(planned("a2", md5="a" * 32)) is None  # the oldest, forgotten: fetched (or journal)
    for path, md5 in (("b", "b" * 32), ("c", "c" * 32)):
        found = copies.source_of(planned(path + "2", md5=md5))
        assert found is not None and found.path == path


def test_a_copy_replaces_a_stale_part_and_makes_its_folders(tmp_path: Path) -> None:
    origin = tmp_path / "origin.bin"
    origin.write_bytes(b"0123456789")
    entry = planned("x", md5=hashlib.md5(b"0123456789").hexdigest()).entry
    stale = tmp_path / "a" / "x.asyncdl-part"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    assert copies_module.make_copy(origin, stale, entry, None) == "hard link" and os.path.samefile(origin, stale)
    nested = tmp_path / "new" / "deep" / "x.asyncdl-part"  # folders not made yet
    assert copies_module.make_copy(origin, nested, entry, None) == "hard link" and nested.read_bytes() == b"0123456789"
