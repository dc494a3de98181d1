"""Pure planning: which files to fetch, where they go, and nothing ever outside DEST.

A layout template (default ``{id}/{key}``) names each file's path relative to DEST. Every path
component is sanitised: traversal (``..``), absolute paths, backslashes, NUL and control characters,
characters Windows forbids, reserved device names (CON, NUL, COM1...), trailing dots and spaces, and
names too long for the file system (with the part suffix) are neutralised, and each change is
reported. Names that would collide on a
case-insensitive or Unicode-normalising file system get distinct names, deterministically.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from asyncdl import globs
from asyncdl.errors import UsageError
from asyncdl.models import FileEntry, Record
from asyncdl.store.names import PART_SUFFIX, RESERVED_AT_TOP

DEFAULT_LAYOUT = "{id}/{key}"
PLACEHOLDERS = ("id", "conceptrecid", "doi", "conceptdoi", "title", "key", "filename", "version", "created", "year")
# file systems allow 255 bytes a name; keep room for ".asyncdl-part.segments.tmp" beside the final name
MAX_NAME_BYTES = 255 - 32
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9]|conin\$|conout\$)(\..*)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which files of a record to take: globs on the key, and a size cap."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_size: int | None = None

    def reason_to_skip(self, entry: FileEntry) -> str | None:
        """Why this file is left out, or None to take it."""
        if self.include and not globs.matches(entry.key, self.include):
            return "not matched by --include"
        if globs.matches(entry.key, self.exclude):
            return "matched by --exclude"
        if self.max_file_size is not None and entry.size is not None and entry.size > self.max_file_size:
            return f"larger than --max-file-size ({entry.size} bytes)"
        return None


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file to fetch: where it goes (relative to DEST, POSIX form) and what was changed to get there."""

    record: Record
    entry: FileEntry
    path: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedFile:
    record: Record
    entry: FileEntry
    reason: str


@dataclass
class Layout:
    """Turns (record, file) into a safe relative path; remembers claimed names to keep them distinct."""

    template: str = DEFAULT_LAYOUT
    _claimed: dict[str, str] = field(default_factory=dict)  # folded path -> owner "record/key"

    def __post_init__(self) -> None:
        check_template(self.template)
        # with {id} in the folders, records cannot collide with each other: names are claimed per record
        # and forgotten after it (memory stays flat); otherwise they are claimed for the whole run
        folders = self.template.rpartition("/")[0]
        self._per_record = "{id}" in folders

    @property
    def per_record(self) -> bool:
        """Whether every record has folders of its own ({id} in the folders): no two records share a path."""
        return self._per_record

    def plan(self, record: Record, files: Iterable[FileEntry], filters: Filters | None = None,
             ) -> tuple[list[PlannedFile], list[SkippedFile]]:
        """Paths for a record's files (sorted by key, so collisions resolve the same way every run)."""
        planned: list[PlannedFile] = []
        skipped: list[SkippedFile] = []
        if self._per_record:
            self._claimed.clear()
        seen: set[str] = set()
        for entry in sorted(files, key=lambda e: e.key):
            reason = filters.reason_to_skip(entry) if filters else None
            if entry.key in seen:
                reason = "duplicate key in the record (the first is kept)"
            seen.add(entry.key)
            if reason:
                skipped.append(SkippedFile(record, entry, reason))
                continue
            path, notes = render(self.template, record, entry)
            path, more = self._distinct(path, f"{record.id}/{entry.key}")
            planned.append(PlannedFile(record, entry, path, tuple(notes + more)))
        return planned, skipped

    def _distinct(self, path: str, owner: str) -> tuple[str, list[str]]:
        """``path``, or ``name~N.ext`` if another file already claimed the same folded name."""
        candidate, number = path, 1
        while True:
            folded = fold(candidate)
            holder = self._claimed.get(folded)
            if holder is None or holder == owner:
                self._claimed[folded] = owner
                notes = [] if candidate == path else [f"renamed to {candidate!r}: {path!r} is taken "
                                                      f"(case or Unicode form) by {self._claimed[fold(path)]}"]
                return candidate, notes
            number += 1
            folder, _, name = with_suffix(path, f"~{number}").rpartition("/")
            name = shorten(name) if len(name.encode()) > MAX_NAME_BYTES else name  # the suffix may not fit
            candidate = f"{folder}/{name}" if folder else name


def check_template(template: str) -> None:
    """Raise UsageError for unknown placeholders or a template without the key or file name."""
    named = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    fields = set(named)
    unknown = fields - set(PLACEHOLDERS)
    if unknown:
        raise UsageError(f"unknown layout placeholder(s) {', '.join(sorted(unknown))}; "
                         f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    if not fields & {"key", "filename"}:
        raise UsageError("the layout must contain {key} or {filename}, or every file would get the same name")
    if named.count("key") > 1:
        raise UsageError("the layout may contain {key} only once (it brings the key's own sub-folders); "
                         "use {filename} for the file name again")
    literal = "".join(text if name is None else f"{text}x" for text, name, _, _ in string.Formatter().parse(template))
    parts = literal.replace("\\", "/").split("/")
    escapes = literal.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", literal) is not None
    if escapes or any(part in ("..", ".") for part in parts):
        raise UsageError(f"the layout {template!r} names a place outside DEST or a '.'/'..' folder: a layout is a "
                         "path inside DEST, e.g. '{year}/{id}/{key}'")


def render(template: str, record: Record, entry: FileEntry) -> tuple[str, list[str]]:
    """The sanitised relative path of a file, and notes on every change made to make it safe."""
    notes: list[str] = []
    created = record.created or ""
    values = {"id": record.id, "conceptrecid": record.conceptrecid or "", "doi": record.doi or "",
              "conceptdoi": record.conceptdoi or "", "title": record.title, "version": record.version or "",
              "created": created[:10], "year": created[:4], "filename": entry.key.rpartition("/")[2]}
    # everything but {key} is one path component; {key} keeps its "/" sub-folders
    flat = {name: value.replace("/", "_").replace("\\", "_") for name, value in values.items()}
    raw = template.format(key="\x00KEY\x00", **flat)
    components: list[str] = []
    for part in raw.split("/"):
        if "\x00KEY\x00" in part:
            before, _, after = part.partition("\x00KEY\x00")
            key_parts = entry.key.replace("\\", "/").split("/")
            if "\\" in entry.key:
                notes.append(f"key {entry.key!r}: backslashes taken as folder separators")
            key_parts[0], key_parts[-1] = before + key_parts[0], key_parts[-1] + after
            components.extend(key_parts)
        else:
            components.append(part)
    sanitized = [sanitize_component(c, notes, entry.key) for c in components]
    folders = [c for c in sanitized[:-1] if c]
    name = sanitized[-1] if sanitized else ""
    if not name:  # the file name itself must not vanish ("", ".", "a/")
        notes.append(f"key {entry.key!r} has no usable file name: saved as '_'")
        name = "_"
    parts = [*folders, name]
    if fold(parts[0]) in RESERVED_AT_TOP:
        notes.append(f"key {entry.key!r}: {parts[0]!r} at the top of the destination is asyncdl's own: "
                     f"saved as '_{parts[0]}'")
        parts[0] = "_" + parts[0]
    return "/".join(parts), notes


def sanitize_component(name: str, notes: list[str], key: str) -> str:
    """One path component made safe; "" for "" and "." (dropped from folders)."""
    original = name
    if name in ("", "."):
        return ""
    if name == "..":
        notes.append(f"key {key!r}: '..' replaced, nothing may leave the destination")
        return "__"
    name = _FORBIDDEN.sub("_", name)
    name = name.rstrip(" .") or "_"
    if _RESERVED.match(name):
        name = "_" + name
    if len(name.encode()) > MAX_NAME_BYTES:
        name = shorten(name)
    if name.endswith(PART_SUFFIX):
        name = name[: -len(PART_SUFFIX)] + "_" + PART_SUFFIX.lstrip(".")
    if name != original:
        notes.append(f"key {key!r}: {original!r} saved as {name!r}")
    return name


def shorten(name: str) -> str:
    """A name cut to fit 255 bytes, keeping its extension, with a hash of the whole for uniqueness."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 20:
        stem, extension = name, ""
    tail = f"~{digest}" + (f".{extension}" if extension else "")
    budget = MAX_NAME_BYTES - len(tail.encode())
    cut = stem.encode()[:budget].decode(errors="ignore")
    return cut + tail


def fold(path: str) -> str:
    """The form under which two paths collide on case-insensitive, normalising file systems."""
    return unicodedata.normalize("NFC", path).casefold()


def with_suffix(path: str, suffix: str) -> str:
    """``dir/name.ext`` -> ``dir/name{suffix}.ext``."""
    folder, _, name = path.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    renamed = f"{stem}{suffix}.{extension}" if dot and stem else f"{name}{suffix}"
    return f"{folder}/{renamed}" if folder else renamed



def check_relayout(placed: str | None, finished: int, layout: str, *, relayout: bool) -> None:
    """Refuse a layout other than the one DEST's finished files were placed by, unless ``--relayout`` says to
    move them (``placed`` None: not known, from a journal older than layouts being kept)."""
    if placed is None or placed == layout or finished == 0 or relayout:
        return
    raise UsageError(f"DEST holds {finished} files placed by --layout {placed!r}, not {layout!r}: add --relayout to "
                     f"move them to the new places (renamed, nothing downloaded), or run with --layout {placed!r}")
