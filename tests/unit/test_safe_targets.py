"""SafeTargets on its own: the last check between a relative path and the file system, whatever the
planner upstream did or did not sanitise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asyncdl.errors import UnsafePathError
from asyncdl.fsutil import SafeTargets

LEAVING = ["..", "../x", "a/../../x", "a/..", "/etc/passwd", "/x"]
OWN = [".asyncdl", ".asyncdl/journal.sqlite", "manifest.csv", "MANIFEST.CSV", ".ASYNCDL/x"]


@pytest.mark.parametrize("relative", LEAVING)
def test_paths_that_leave_dest_are_refused(tmp_path: Path, relative: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafePathError, match="it would leave"):
        SafeTargets(dest).target(relative)


@pytest.mark.parametrize("relative", ["", ".", "a/", "a//b", "./a", "a/./b"])
def test_paths_that_name_no_file_are_refused(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UnsafePathError, match="not a file's path"):
        SafeTargets(tmp_path).target(relative)


@pytest.mark.parametrize("relative", OWN)
def test_asyncdls_own_names_at_the_top_are_refused(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UnsafePathError, match="is asyncdl's own"):
        SafeTargets(tmp_path).target(relative)


def test_a_folder_linked_out_of_dest_is_refused(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    os.symlink(outside, dest / "link")
    with pytest.raises(UnsafePathError, match="is a symlink out of"):
        SafeTargets(dest).target("link/file.bin")


def test_a_folder_linked_into_the_state_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".asyncdl").mkdir()
    os.symlink(tmp_path / ".asyncdl", tmp_path / "sneaky")
    with pytest.raises(UnsafePathError, match="state folder"):
        SafeTargets(tmp_path).target("sneaky/journal.sqlite")


def test_a_link_that_stays_inside_and_plain_paths_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    targets = SafeTargets(tmp_path)
    assert targets.target("alias/f.bin") == tmp_path.resolve() / "alias" / "f.bin"
    assert targets.target("a/b/..c/manifest.csv") == tmp_path.resolve() / "a" / "b" / "..c" / "manifest.csv"
    assert targets.target("x..y") == tmp_path.resolve() / "x..y"
