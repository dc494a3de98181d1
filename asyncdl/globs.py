"""File-key globs as rclone users write them: fnmatch's ``*``, ``?`` and ``[...]``, plus brace sets
``{a,b}`` (nested allowed). A glob that cannot mean what it says (an unclosed ``[`` or ``{``) is refused,
never left to match nothing."""

from __future__ import annotations

import fnmatch
import itertools
from functools import lru_cache


def split_list(text: str) -> list[str]:
    """Comma-separated globs (a variable's value): commas inside braces belong to the glob."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p]


def check(pattern: str) -> str:
    """``pattern`` if it is a usable glob; raise ValueError naming what is wrong."""
    depth, position = 0, 0
    while position < len(pattern):
        char = pattern[position]
        if char == "[":
            close = pattern.find("]", position + 2 if pattern[position + 1: position + 2] in ("!", "]") else
                                 position + 1)
            if close < 0:
                raise ValueError("a glob with every '[' closed (write [[] for a literal '[')")
            position = close
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("a glob whose braces { } pair up")
        position += 1
    if depth:
        raise ValueError("a glob whose braces { } pair up")
    return pattern


@lru_cache(maxsize=256)
def expand(pattern: str) -> tuple[str, ...]:
    """The fnmatch globs a brace glob stands for: ``*.{csv,txt}`` -> ``*.csv``, ``*.txt``."""
    start = pattern.find("{")
    if start < 0:
        return (pattern,)
    depth, end, cuts = 0, start, []
    for end in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[end], 0)
        if pattern[end] == "," and depth == 1:
            cuts.append(end)
        if depth == 0:
            break
    bounds = [start, *cuts, end]
    choices = [pattern[a + 1: b] for a, b in itertools.pairwise(bounds)]
    head, tail = pattern[:start], pattern[end + 1:]
    return tuple(g for choice in choices for g in expand(head + choice + tail))


def matches(key: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``key`` matches any of ``patterns`` (case-sensitive, as keys are)."""
    return any(fnmatch.fnmatchcase(key, glob) for pattern in patterns for glob in expand(pattern))
