"""Planning: layouts, sanitising (nothing escapes DEST, for any key), collisions, filters."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncdl.errors import UsageError
from asyncdl.fsutil import SafeTargets
from asyncdl.models import FileEntry, Record
from asyncdl.plan import MAX_NAME_BYTES, Filters, Layout, check_template, fold, render
from asyncdl.store.names import RESERVED_AT_TOP

RECORD = Record(id="42", title="IODP Expedition 374 Alkalinity/pH", doi="10.5281/zenodo.42",
                created="2019-08-10T12:00:00+00:00", conceptrecid="41")
PIECES = st.sampled_from([*"ab./\\\x00\x01 :*?<>|", "..", "CON", "nul.txt", ".asyncdl", "manifest.csv", "\u00e9",
                          "e\u0301", "A", "x" * 120])
HOSTILE = st.lists(PIECES, min_size=0, max_size=12).map("".join)


def entry(key: str, size: int = 1) -> FileEntry:
    return FileEntry(key=key, size=size, checksum=None, url="http://x")


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(HOSTILE, min_size=1, max_size=6), template=st.sampled_from(
    ["{id}/{key}", "{key}", "{title}_{id}/{key}", "{year}/{doi}/{filename}"]))
def test_no_key_ever_leaves_dest(tmp_path_factory: pytest.TempPathFactory, keys: list[str], template: str) -> None:
    dest = tmp_path_factory.mktemp("dest")
    targets = SafeTargets(dest)
    planned, _ = Layout(template).plan(RECORD, [entry(k) for k in keys])
    folded = [fold(p.path) for p in planned]
    assert len(set(folded)) == len(folded)  # distinct even on case-insensitive, normalising file systems
    for item in planned:
        parts = item.path.split("/")
        assert item.path and not item.path.startswith("/") and ".." not in parts and "" not in parts
        assert all("\x00" not in p and "\\" not in p and len(p.encode()) <= MAX_NAME_BYTES for p in parts)
        assert fold(parts[0]) not in RESERVED_AT_TOP  # never the journal's folder or the manifest
        target = targets.target(item.path)
        assert dest.resolve() in target.parents


def test_layout_placeholders_and_notes() -> None:
    path, notes = render("{year}/{title}_{id}/{key}", RECORD, entry("data/x.csv"))
    assert path == "2019/IODP Expedition 374 Alkalinity_pH_42/data/x.csv" and notes == []
    path, notes = render("{id}/{key}", RECORD, entry("../../etc/passwd"))
    assert path == "42/__/__/etc/passwd" and notes
    assert render("{doi}/{filename}", RECORD, entry("a/b.txt"))[0] == "10.5281_zenodo.42/b.txt"


def test_collisions_get_stable_distinct_names() -> None:
    keys = ["Case.TXT", "case.txt", "caf\u00e9.txt", "cafe\u0301.txt"]
    first, _ = Layout().plan(RECORD, [entry(k) for k in keys])
    again, _ = Layout().plan(RECORD, [entry(k) for k in reversed(keys)])
    assert [p.path for p in first] == [p.path for p in again]  # the same names whatever the order
    assert len({fold(p.path) for p in first}) == 4


def test_bad_templates() -> None:
    with pytest.raises(UsageError, match="unknown layout placeholder"):
        check_template("{nope}/{key}")
    with pytest.raises(UsageError, match="must contain"):
        check_template("{id}")


def test_filters() -> None:
    filters = Filters(include=("*.csv",), exclude=("secret*",), max_file_size=10)
    assert filters.reason_to_skip(entry("a.csv", 5)) is None
    assert filters.reason_to_skip(entry("a.txt", 5)) == "not matched by --include"
    assert filters.reason_to_skip(entry("secret.csv", 5)) == "matched by --exclude"
    assert filters.reason_to_skip(entry("big.csv", 11)) == "larger than --max-file-size (11 bytes)"


def test_symlinked_folder_out_of_dest_is_refused(tmp_path: Path) -> None:
    outside, dest = tmp_path / "outside", tmp_path / "dest"
    outside.mkdir()
    dest.mkdir()
    (dest / "42").symlink_to(outside)
    with pytest.raises(Exception, match="symlink out of"):
        SafeTargets(dest).target("42/a.txt")


NAMED = [  # (template, key) -> (path, notes): each change made to a name is made and said exactly so
    (("{id}/{key}", "a\\b.txt"), ("42/a/b.txt", ["key 'a\\\\b.txt': backslashes taken as folder separators"])),
    (("{key}", ".asyncdl/x"), ("_.asyncdl/x", ["key '.asyncdl/x': '.asyncdl' at the top of the destination is "
                                               "asyncdl's own: saved as '_.asyncdl'"])),
    (("{id}/{key}", "x.asyncdl-part"), ("42/x_asyncdl-part",
                                         ["key 'x.asyncdl-part': 'x.asyncdl-part' saved as 'x_asyncdl-part'"])),
    (("{conceptrecid}/{key}", "a.bin"), ("41/a.bin", [])),
    (("{id}/{key}", "plain.csv"), ("42/plain.csv", [])),
    (("{year}/{created}/{key}", "a.bin"), ("2019/2019-08-10/a.bin", [])),
]


@pytest.mark.parametrize(("given", "made"), NAMED, ids=[k for (_, k), _ in NAMED])
def test_names_and_notes(given: tuple[str, str], made: tuple[str, list[str]]) -> None:
    assert render(given[0], RECORD, entry(given[1])) == made


def test_a_missing_placeholder_value_drops_its_folder() -> None:
    assert render("{conceptrecid}/{key}", replace(RECORD, conceptrecid=None), entry("a.bin")) == ("a.bin", [])


def test_names_at_the_limit_are_kept_and_one_byte_more_is_shortened_with_a_hash() -> None:
    at_limit = "x" * (MAX_NAME_BYTES - 4) + ".csv"
    assert render("{key}", RECORD, entry(at_limit)) == (at_limit, [])
    over = "x" * (MAX_NAME_BYTES - 3) + ".csv"
    path, notes = render("{key}", RECORD, entry(over))
    digest = hashlib.sha1(over.encode()).hexdigest()[:10]
    assert len(path.encode()) == MAX_NAME_BYTES and path.endswith(f"~{digest}.csv")
    assert notes == [f"key {over!r}: {over!r} saved as {path!r}"]


@pytest.mark.parametrize(("extension", "kept"), [("e" * 20, True), ("e" * 21, False)])
def test_a_shortened_name_keeps_an_extension_of_up_to_20_bytes(extension: str, kept: bool) -> None:
    path, _ = render("{key}", RECORD, entry("y" * 300 + "." + extension))
    assert len(path.encode()) == MAX_NAME_BYTES
    assert path.endswith("." + extension) == kept


def test_a_renamed_name_that_just_fits_is_kept_whole() -> None:
    """The "~2" of a collision may bring a name to the limit (kept) or past it (shortened with a hash)."""
    fits = "x" * (MAX_NAME_BYTES - 6) + ".csv"  # with "~2": exactly MAX_NAME_BYTES
    planned, _ = Layout("{key}").plan(RECORD, [entry(fits.upper()), entry(fits)])
    assert planned[1].path == fits.replace(".csv", "~2.csv")
    too_long = "x" + fits
    planned, _ = Layout("{key}").plan(RECORD, [entry(too_long.upper()), entry(too_long)])
    assert len(planned[1].path.encode()) == MAX_NAME_BYTES and "~2" not in planned[1].path


def test_a_key_named_twice_in_one_folder_name_is_rendered_safely() -> None:
    path, _ = render("{key}-{key}", RECORD, entry("a.txt"))
    assert "\x00" not in path and path.startswith("a.txt-")


def test_a_collision_is_renamed_and_said_so_and_other_names_are_not() -> None:
    planned, _ = Layout("{id}/{key}").plan(RECORD, [entry("A.txt"), entry("a.txt"), entry("b.txt")])
    assert [(p.path, p.notes) for p in planned] == [
        ("42/A.txt", ()),
        ("42/a~2.txt", ("renamed to '42/a~2.txt': '42/a.txt' is taken (case or Unicode form) by 42/A.txt",)),
        ("42/b.txt", ())]
