"""Brace globs, glob checks and the comma lists of variables; plural words."""

from __future__ import annotations

import pytest

from asyncdl import globs


def test_braces_expand_nested_and_empty_choices() -> None:
    assert globs.expand("*.{csv,txt}") == ("*.csv", "*.txt")
    assert globs.expand("a{b,c{d,e}}f") == ("abf", "acdf", "acef")
    assert globs.expand("{a,}b") == ("ab", "b")
    assert globs.matches("dir/x.txt", ("*.{csv,txt}",)) and not globs.matches("x.tif", ("*.{csv,txt}",))


@pytest.mark.parametrize("bad", ["[abc", "*.{csv", "a}", "{a,{b}"])
def test_globs_that_cannot_mean_what_they_say_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        globs.check(bad)


@pytest.mark.parametrize("good", ["*.csv", "[!]]x", "[]]", "[[]x", "*.{csv,txt}", "?"])
def test_usable_globs_pass(good: str) -> None:
    assert globs.check(good) == good


def test_a_variable_splits_on_commas_outside_braces() -> None:
    assert globs.split_list("*.{csv,txt},*.dat,") == ["*.{csv,txt}", "*.dat"]


def test_plural_words() -> None:
    from asyncdl.units import plural
    assert [plural(n, "record") for n in (0, 1, 2)] == ["0 records", "1 record", "2 records"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"
