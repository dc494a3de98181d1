"""Hostile file keys, one by one, and symlinks planted in DEST: each gets a safe result or a clear error.

(Malformed, truncated, huge and wrongly shaped JSON, HTML pages, lying lengths, gzip, redirect loops and
foreign redirects are in tests/integration/test_hostile_server.py and test_security.py; a hypothesis
property over every mix of these keys is in tests/unit/test_plan.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from asyncdl.errors import UnsafePathError
from asyncdl.events import ListSink, Notice
from asyncdl.fsutil import SafeTargets
from asyncdl.models import FileEntry, Record
from asyncdl.pipeline import mirror
from asyncdl.plan import MAX_NAME_BYTES, Layout
from tests.datasets import record

Start = Callable[..., RunningEmulator]
RECORD = Record(id="42", title="t", doi=None, created="2020-01-01", conceptrecid="41")
LONG = "x" * 300 + ".csv"


@pytest.mark.parametrize(("key", "saved_as"), [
    ("../../etc/passwd", "42/__/__/etc/passwd"),  # traversal: '..' can never be a folder
    ("/etc/passwd", "42/etc/passwd"),  # absolute: rooted in the record's folder
    ("a\\..\\..\\b.txt", "42/a/__/__/b.txt"),  # backslashes are separators, and '..' is still neutralised
    ("nul\x00byte.txt", "42/nul_byte.txt"),  # NUL
    ("bell\x07\x1b[31m.txt", "42/bell__[31m.txt"),  # control characters (a terminal escape)
    ("CON", "42/_CON"),  # Windows reserved device names
    ("nul.txt", "42/_nul.txt"),
    ("com1.csv", "42/_com1.csv"),
    ("trailing. ", "42/trailing"),  # trailing dots and spaces
    ("", "42/_"),  # empty key
    ("..", "42/__"),
    ("a//b", "42/a/b"),
])
def test_each_hostile_key_gets_a_safe_name(key: str, saved_as: str) -> None:
    (planned,), _ = Layout().plan(RECORD, [FileEntry(key=key, size=1, checksum=None, url="u")])
    assert planned.path == saved_as
    assert planned.notes or key in ("/etc/passwd", "a//b")  # every change is reported, bar harmless ones


@pytest.mark.parametrize(("key", "saved_as"), [
    (".asyncdl/journal.sqlite", "_.asyncdl/journal.sqlite"),  # the journal is asyncdl's own
    (".ASYNCDL/lock", "_.ASYNCDL/lock"),
    ("manifest.csv", "_manifest.csv"),  # so is the manifest at the top of DEST
    ("data/manifest.csv", "data/manifest.csv"),  # deeper down the name is free
])
def test_keys_never_take_asyncdls_own_names(key: str, saved_as: str, tmp_path: Path) -> None:
    (planned,), _ = Layout("{key}").plan(RECORD, [FileEntry(key=key, size=1, checksum=None, url="u")])
    assert planned.path == saved_as
    assert SafeTargets(tmp_path).target(planned.path) == tmp_path.resolve() / saved_as


@pytest.mark.parametrize("path", [".asyncdl/journal.sqlite", ".ASYNCDL/lock", "manifest.csv", "Manifest.CSV"])
def test_safe_targets_refuse_asyncdls_own_names(path: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="asyncdl's own"):
        SafeTargets(tmp_path).target(path)


def test_a_link_into_the_state_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".asyncdl").mkdir()
    os.symlink(tmp_path / ".asyncdl", tmp_path / "innocent")
    with pytest.raises(UnsafePathError, match="state folder"):
        SafeTargets(tmp_path).target("innocent/journal.sqlite")


def test_a_renamed_twin_of_a_longest_name_still_fits() -> None:
    """Found by hypothesis: the '~2' of a collision pushed a name cut to the limit 2 bytes past it."""
    keys = ["a" * 300 + "\\b", "a" * 300 + "\x00b"]  # both flatten to one 301-character {filename}
    planned, _ = Layout("{year}/{filename}").plan(RECORD, [FileEntry(key=k, size=1, checksum=None, url="u")
                                                           for k in keys])
    names = [p.path.split("/")[-1] for p in planned]
    assert len(set(names)) == 2 and all(len(n.encode()) <= MAX_NAME_BYTES for n in names)


def test_long_duplicate_and_colliding_keys() -> None:
    keys = [LONG, "data.csv", "data.csv", "Data.CSV", "caf\u00e9.txt", "cafe\u0301.txt"]
    planned, skipped = Layout().plan(RECORD, [FileEntry(key=k, size=1, checksum=None, url="u") for k in keys])
    paths = {p.entry.key: p.path for p in planned}
    assert [s.reason for s in skipped] == ["duplicate key in the record (the first is kept)"]
    assert len(paths[LONG].split("/")[-1].encode()) <= 223 and paths[LONG].endswith(".csv")
    assert paths["Data.CSV"] == "42/Data.CSV" and paths["data.csv"] == "42/data~2.csv"  # case twins
    # Unicode twins: the first by key order keeps the name
    assert paths["cafe\u0301.txt"] == "42/cafe\u0301.txt" and paths["caf\u00e9.txt"] == "42/caf\u00e9~2.txt"


@pytest.mark.anyio
@pytest.mark.parametrize("planted", ["final", "part", "sidecar", "sidecar-temp", "metadata-temp", "folder"])
async def test_symlinks_planted_in_dest_are_never_followed(start_emulator: Start, tmp_path: Path,
                                                           planted: str) -> None:
    """A link to a file outside DEST, planted where asyncdl writes (final name, part, segment sidecar and
    its temporary, the record JSON's temporary), or a linked folder: the outside is never touched."""
    body = 3_000_000 if planted.startswith("sidecar") else b"payload\n"
    emu = start_emulator(EmulatorConfig(rate_limits=False),
                         dataset=Dataset([record(11, concept=10, files={"data.bin": body})]))
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious\n")
    dest = tmp_path / "dest"
    (dest / "11").mkdir(parents=True)
    names = {"final": "data.bin", "part": "data.bin.asyncdl-part", "sidecar": "data.bin.asyncdl-part.segments",
             "sidecar-temp": "data.bin.asyncdl-part.segments.tmp",
             "metadata-temp": "zenodo-record-11.json.asyncdl-part"}
    if planted == "folder":
        os.rmdir(dest / "11")
        os.symlink(outside, dest / "11")
    else:
        os.symlink(victim, dest / "11" / names[planted])
    config = Config(base_url=emu.url, segment_threshold=1_000_000, segments=2)
    events = ListSink()
    summary = await mirror(Selection(identifiers=("11",)), dest, config, sink=events,
                           options=RunOptions(save_metadata=True))
    assert victim.read_bytes() == b"precious\n"  # nothing outside DEST was written or replaced
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    if planted == "folder":
        assert len(summary.failed) == 1 and "symlink" in summary.failed[0].reason
        notices = [e.message for e in events.events if isinstance(e, Notice)]
        assert any("record 11: metadata not saved: refusing" in n and "symlink" in n for n in notices)
    else:
        assert [r.path for r in summary.ok] == ["11/data.bin"]  # the link is replaced by the real file
        assert not (dest / "11" / "data.bin").is_symlink()
        assert (dest / "11" / "data.bin").stat().st_size == (body if isinstance(body, int) else len(body))
        assert sorted(p.name for p in (dest / "11").iterdir()) == ["data.bin", "zenodo-record-11.json"]


def test_a_damaged_journal_is_a_clear_error_in_every_command(tmp_path: Path) -> None:
    (tmp_path / ".asyncdl").mkdir()
    (tmp_path / ".asyncdl" / "journal.sqlite").write_bytes(b"not a database, whatever it once was" * 100)
    for command in (["status"], ["verify"], ["mirror", "11", "--base-url", "http://127.0.0.1:9"]):
        done = subprocess.run([sys.executable, "-m", "asyncdl", *command, str(tmp_path)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 3, (command, done.stderr)
        assert "journal.sqlite cannot be read" in done.stderr and "Traceback" not in done.stderr
