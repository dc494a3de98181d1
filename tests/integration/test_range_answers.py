"""Range answers that must never be appended, served by a real server: a 206 that starts elsewhere, names
another total, or has no Content-Range; for a resumed single stream and for segments. Also the md5 and
size checks that stand between a download and its final name."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.accounting import RunSummary
from asyncdl.events import Event, FileFinished, FileStarted, ListSink
from asyncdl.pipeline import mirror
from tests.scripted import Script, ScriptedServer

pytestmark = pytest.mark.anyio
BODY = b"0123456789"
BIG = os.urandom(64 * 1024)
WRONG_206 = {"misaligned start": {"start_shift": 1}, "wrong total": {"total": 11},
             "no Content-Range": {"content_range": False}}


def settings(server: ScriptedServer, **overrides: object) -> Config:
    values: dict[str, object] = {"base_url": server.base, "retries": 2, "backoff_base": 0.001,
                                 "backoff_max": 0.005, "read_timeout": 5.0}
    return Config(**{**values, **overrides})  # type: ignore[arg-type]


async def run(script: Script, dest: Path, *, archive: str = "never",
              **overrides: object) -> tuple[RunSummary, ScriptedServer]:
    server = ScriptedServer({1: script})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), dest, settings(server, **overrides),
                               options=RunOptions(archive=archive))
    return summary, server


@pytest.mark.parametrize("wrong", WRONG_206.values(), ids=list(WRONG_206))
async def test_a_wrong_206_is_never_appended_to_a_resumed_part(tmp_path: Path, wrong: dict[str, object]) -> None:
    part = tmp_path / "1" / "a.bin.asyncdl-part"
    part.parent.mkdir()
    part.write_bytes(BODY[:4])
    summary, server = await run(Script(ranges=True, **wrong), tmp_path)  # type: ignore[arg-type]
    (result,) = summary.results
    assert result.outcome == "failed"
    assert result.reason.startswith("unexpected Content-Range") and "for bytes=4- at http://127.0.0.1" in result.reason
    assert part.read_bytes() == BODY[:4]  # nothing of the wrong answers was written
    assert not (tmp_path / "1" / "a.bin").exists()
    assert server.file_requests(1) == 3  # retries + 1: each answer is as wrong as the last


@pytest.mark.parametrize("wrong", WRONG_206.values(), ids=list(WRONG_206))
async def test_a_wrong_206_is_never_written_into_a_segment(tmp_path: Path, wrong: dict[str, object]) -> None:
    summary, server = await run(Script(body=BIG, ranges=True, **wrong), tmp_path,  # type: ignore[arg-type]
                                segments=2, segment_threshold=16 * 1024)
    (result,) = summary.results
    assert result.outcome == "failed" and result.reason.startswith("unexpected Content-Range")
    assert not (tmp_path / "1" / "a.bin").exists()
    assert server.file_requests(1) <= 8 * 3


async def test_a_segmented_download_with_the_wrong_md5_never_gets_its_name(tmp_path: Path) -> None:
    stated = hashlib.md5(b"another file").hexdigest()
    summary, server = await run(Script(body=BIG, ranges=True, stated_md5=stated), tmp_path, segments=2,
                                segment_threshold=16 * 1024, max_attempts=2)
    (result,) = summary.results
    assert result.outcome == "failed"
    assert result.reason == (f"corrupt: md5 {hashlib.md5(BIG).hexdigest()} differs from the record's {stated} "
                             "after 2 attempts")
    assert server.file_requests(1) == 2 * 8  # two downloads from zero, 8 pieces each
    assert list((tmp_path / "1").iterdir()) == []  # no final name, no part, no sidecar
    assert summary.faults["corrupt"] == 2


async def test_a_single_stream_with_the_wrong_md5_never_gets_its_name(tmp_path: Path) -> None:
    stated = hashlib.md5(b"another file").hexdigest()
    summary, server = await run(Script(stated_md5=stated), tmp_path, max_attempts=3)
    (result,) = summary.results
    assert result.outcome == "failed"
    assert result.reason == f"corrupt: md5 {hashlib.md5(BODY).hexdigest()} differs from the record's {stated} " \
                            "after 3 attempts"
    assert server.file_requests(1) == 3
    assert list((tmp_path / "1").iterdir()) == []


SHORTER = "the server ended the body at byte 7 of 10, 3 times without getting further"
LONGER = "the server sent more than the file's 10 bytes at http://127.0.0.1:"


@pytest.mark.parametrize(("body", "reason"), [(BODY[:7], SHORTER), (BODY + b"!!", LONGER)], ids=["shorter", "longer"])
async def test_a_file_of_the_wrong_size_without_md5_is_refused(tmp_path: Path, body: bytes, reason: str) -> None:
    """The record says 10 bytes and gives no md5: a body of another size is never taken for the file."""
    summary, _ = await run(Script(body=body, md5=False, stated_size=len(BODY)), tmp_path)
    (result,) = summary.results
    assert result.outcome == "failed" and result.reason.startswith(reason), result.reason
    assert not (tmp_path / "1" / "a.bin").exists()


async def test_an_archive_member_of_the_wrong_size_without_md5_is_refused(tmp_path: Path) -> None:
    """The ZIP holds 12 bytes where the record says 10 and gives no md5: the member is not taken, and the
    file fetched on its own is refused too; the other members, md5-checked, are committed."""
    extra = {"b.bin": b"b" * 100, "c.bin": b"c" * 200}
    summary, server = await run(Script(body=BODY + b"!!", md5=False, stated_size=len(BODY), extra_files=extra),
                                tmp_path, archive="always")
    outcomes = {r.key: (r.outcome, r.reason) for r in summary.results}
    assert outcomes["a.bin"] == ("failed", f"the server sent more than the file's 10 bytes at {server.base}"
                                           "/api/records/1/files/a.bin/content")
    assert outcomes["b.bin"] == outcomes["c.bin"] == ("ok", "from the record's ZIP archive; md5 verified")
    assert server.served["/api/records/1/files-archive"] == 1
    assert not (tmp_path / "1" / "a.bin").exists()


async def test_archive_members_in_nested_folders(tmp_path: Path) -> None:
    extra = {"x/y/b.bin": b"b" * 100, "x/y/z/c.bin": b"c" * 200}
    summary, server = await run(Script(key="d1/d2/a.bin", extra_files=extra), tmp_path, archive="always")
    assert {r.key: r.outcome for r in summary.results} == {"d1/d2/a.bin": "ok", "x/y/b.bin": "ok", "x/y/z/c.bin": "ok"}
    assert all(r.reason == "from the record's ZIP archive; md5 verified" for r in summary.results)
    assert server.served["/api/records/1/files-archive"] == 1 and server.file_requests(1) == 0
    assert (tmp_path / "1" / "x" / "y" / "z" / "c.bin").read_bytes() == b"c" * 200
    assert (tmp_path / "1" / "d1" / "d2" / "a.bin").read_bytes() == BODY


@pytest.mark.parametrize("segmented", [False, True], ids=["single", "segmented"])
async def test_a_part_longer_than_the_file_is_never_kept_behind_it(tmp_path: Path, segmented: bool) -> None:
    """A part file left with more bytes than the record's size (another version of the file, say) is
    started again from zero, and none of its bytes stays behind the new ones."""
    body = BIG if segmented else BODY
    part = tmp_path / "1" / "a.bin.asyncdl-part"
    part.parent.mkdir()
    part.write_bytes(b"\xff" * (len(body) + 5000))
    if segmented:  # a sidecar of that other file: not for this size, so no resume from it
        (tmp_path / "1" / "a.bin.asyncdl-part.segments").write_text(
            json.dumps({"version": 1, "size": len(body) + 5000, "segments": [[0, len(body) + 5000, 4000]]}))
    threshold = 16 * 1024 if segmented else Config.segment_threshold
    summary, _ = await run(Script(body=body, ranges=True), tmp_path, segments=2, segment_threshold=threshold)
    assert [(r.outcome, r.verified) for r in summary.results] == [("ok", True)]
    assert (tmp_path / "1" / "a.bin").read_bytes() == body


async def test_a_complete_part_left_before_its_rename_is_committed_without_a_request(tmp_path: Path) -> None:
    """A kill between the last write and the rename leaves the whole file in its part: it is checked and
    given its name, not downloaded again."""
    part = tmp_path / "1" / "a.bin.asyncdl-part"
    part.parent.mkdir()
    part.write_bytes(BODY)
    summary, server = await run(Script(ranges=True), tmp_path)
    assert [(r.outcome, r.verified) for r in summary.results] == [("ok", True)]
    assert server.file_requests(1) == 0
    assert (tmp_path / "1" / "a.bin").read_bytes() == BODY and not part.exists()


async def test_segments_fall_back_to_one_stream_when_range_is_ignored(tmp_path: Path) -> None:
    summary, server = await run(Script(body=BIG), tmp_path, segments=2, segment_threshold=16 * 1024)
    assert [(r.outcome, r.verified) for r in summary.results] == [("ok", True)]
    assert server.file_requests(1) == 3  # the download URL ignores Range, the API URL too, then one stream
    assert (tmp_path / "1" / "a.bin").read_bytes() == BIG


@pytest.mark.parametrize("how", ["single", "segmented", "archive"])
async def test_files_get_ordinary_permissions(tmp_path: Path, how: str) -> None:
    """Downloaded files are readable by their group and others, as any file the user makes (0644 less the
    umask), however they came."""
    umask = os.umask(0)
    os.umask(umask)
    extra = {"b.bin": b"b" * 100, "c.bin": b"c" * 200}
    script = Script(body=BIG if how == "segmented" else BODY, ranges=True, extra_files=extra)
    summary, _ = await run(script, tmp_path, archive="always" if how == "archive" else "never",
                           segments=2, segment_threshold=16 * 1024)
    assert summary.counts["ok"] == 3
    for name in ("a.bin", "b.bin", "c.bin"):
        assert stat.S_IMODE((tmp_path / "1" / name).stat().st_mode) == 0o644 & ~umask, name


class FinalNames:
    """A sink that checks, when each file is reported ok, that it is already under its final name."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.seen: list[tuple[str, bool]] = []

    def emit(self, event: Event) -> None:
        if isinstance(event, FileFinished) and event.outcome == "ok":
            self.seen.append((event.path, (self.dest / event.path).is_file()))


async def test_a_file_is_reported_ok_only_once_it_has_its_name(tmp_path: Path) -> None:
    server = ScriptedServer({rid: Script(body=f"file {rid}".encode(), extra_files={"b.bin": b"b" * 50 + bytes([rid])})
                             for rid in (1, 2, 3)})
    sink = FinalNames(tmp_path)
    async with server.running():
        summary = await mirror(Selection(identifiers=("1", "2", "3")), tmp_path, settings(server), sink=sink)
    assert summary.counts["ok"] == 6
    assert len(sink.seen) == 6 and all(named for _, named in sink.seen), sink.seen


async def test_a_folder_at_the_final_name_fails_the_file(tmp_path: Path) -> None:
    (tmp_path / "1" / "a.bin").mkdir(parents=True)
    summary, _ = await run(Script(), tmp_path)
    (result,) = summary.results
    assert result.outcome == "failed" and result.reason.startswith("local error: ")
    assert (tmp_path / "1" / "a.bin").is_dir()


async def test_a_whole_file_costs_one_request_and_reports_its_start(tmp_path: Path) -> None:
    sink = ListSink()
    server = ScriptedServer({1: Script()})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), tmp_path, settings(server), sink=sink)
    assert summary.counts["ok"] == 1 and server.file_requests(1) == 1  # not one more once it is whole
    started = [e for e in sink.events if isinstance(e, FileStarted)]
    assert started == [FileStarted("1/a.bin", len(BODY), 0)]  # the progress displays open the file's bar


async def test_a_resumed_file_reports_where_it_starts(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "a.bin.asyncdl-part").write_bytes(BODY[:4])
    sink = ListSink()
    server = ScriptedServer({1: Script(ranges=True)})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), tmp_path, settings(server), sink=sink)
    assert summary.counts["ok"] == 1 and (tmp_path / "1" / "a.bin").read_bytes() == BODY
    assert [e.offset for e in sink.events if isinstance(e, FileStarted)] == [4]


async def test_a_file_that_is_not_found_fails_after_one_request(tmp_path: Path) -> None:
    server = ScriptedServer({1: Script(status=404)})
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), tmp_path, settings(server))
    (result,) = summary.results
    assert result.outcome == "failed" and "not found (404)" in result.reason, result.reason
    assert server.file_requests(1) == 1  # a 404 of the file's own URL is not asked again


async def test_without_the_ui_download_route_resumes_go_to_the_api_url(tmp_path: Path) -> None:
    server = ScriptedServer({1: Script(ranges=True, per_answer=3, ui_route=False)})  # 10 bytes, 3 an answer
    async with server.running():
        summary = await mirror(Selection(identifiers=("1",)), tmp_path, settings(server, retries=5))
    assert summary.counts["ok"] == 1 and (tmp_path / "1" / "a.bin").read_bytes() == BODY
    assert server.served["/records/1/files/a.bin"] == 1  # its 404 taught the host has no such route
    assert server.served["/api/records/1/files/a.bin/content"] == 4  # 3 + 3 + 3 + 1 bytes
