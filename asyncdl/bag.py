"""``asyncdl bag``: a finished mirror made a BagIt bag (RFC 8493) from its journals, without reading its data.

In place (the default, as bagit.py does it): DEST's files are renamed under ``DEST/data/`` (its top-level
entries moved, nothing copied) and every journal learns their new paths, so ``status``, ``verify`` and
``mirror`` into DEST go on working (a mirror into a bagged DEST places its files under ``data/``). asyncdl's
own state (``.asyncdl/``, ``manifest.csv``) stays at the top, outside the bag's manifests. ``--into NEW``
makes the bag in NEW of hard links (else reflink copies, else copies checked against the journal's
checksum) and leaves DEST as it was.

``manifest-md5.txt`` is the journals' md5 of each file (only files whose record gave no md5 are hashed);
``bag-info.txt`` comes from the records the journals keep; records' JSON saved by ``--save-metadata`` become
tag files in ``metadata/``; ``tagmanifest-md5.txt`` covers every tag file. An in-place bag records its progress
in ``DEST/.asyncdl/bag.json``, so an interrupted one is finished by running it again.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncdl import invenio
from asyncdl._version import __version__
from asyncdl.digests import md5_of
from asyncdl.errors import AsyncdlError, LocalError, UsageError
from asyncdl.fsutil import commit, fsync_dir, open_fresh
from asyncdl.models import Checksum, FileEntry
from asyncdl.store.bagging import BagFile, Mirrored, move_under, read_mirror
from asyncdl.store.lock import RunLock
from asyncdl.store.merged import close_out, journal_paths
from asyncdl.store.names import MANIFEST, STATE_DIR
from asyncdl.store.status import read_status
from asyncdl.transfer.copies import make_copy
from asyncdl.units import format_size, plural

PAYLOAD = "data"
BAGIT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST_MD5 = "manifest-md5.txt"
TAG_MANIFEST = "tagmanifest-md5.txt"
METADATA = "metadata"  # the tag folder of the records' JSON
TAGS = (BAGIT, BAG_INFO, MANIFEST_MD5, TAG_MANIFEST, METADATA)
STATE = "bag.json"  # in DEST/.asyncdl: {"state": "moving" | "bagged", ...}
STAGING = "payload"  # DEST/.asyncdl/payload: the payload on its way to DEST/data
FINISHED = ("complete", "complete except unavailable")
SAVED_JSON = re.compile(r"zenodo-record-(.+)\.json")
AGENT = f"asyncdl {__version__} <https://github.com/asyncdl/asyncdl>"
_LOOKS_ESCAPED = re.compile(r"%(?=0[aAdD]|25)")
_ESCAPE = re.compile(r"%(0[aAdD]|25)")


def encode_path(path: str) -> str:
    """A payload path as a manifest line holds it: CR and LF percent-encoded (RFC 8493), and a ``%`` that a
    reader could take for one of those escapes (``%0A``, ``%0D``, ``%25``) as ``%25``. Other ``%`` stay as they
    are: bagit-python and bagit-java read them so (neither decodes ``%25``), and a reader that decodes only those
    three escapes reads every path back the same."""
    return _LOOKS_ESCAPED.sub("%25", path).replace("\r", "%0D").replace("\n", "%0A")


def decode_path(text: str) -> str:
    """The path a manifest line names (see :func:`encode_path`)."""
    return _ESCAPE.sub(lambda m: {"0a": "\n", "0d": "\r", "25": "%"}[m.group(1).lower()], text)


@dataclass
class BagReport:
    """What ``bag`` did: the bag, its files and bytes, how they got there, what had to be hashed."""

    bag: Path
    in_place: bool
    files: int = 0
    bytes: int = 0
    records: int = 0
    moved: int = 0  # in place: top-level entries renamed under data/
    ways: Counter[str] = field(default_factory=Counter)  # --into: hard link, reflink copy, copy
    hashed: list[str] = field(default_factory=list)  # payload paths without an md5 in the journal
    tag_files: int = 0  # records' JSON in metadata/
    left_out: list[str] = field(default_factory=list)  # --into: files in DEST no journal knows
    again: bool = False  # DEST was a bag already: its tag files written anew
    seconds: float = 0.0


@dataclass
class _Survey:
    """What is on disk under the payload's folders: regular files (path relative to DEST -> lstat), the
    records' JSON saved beside them (record id -> path), files no journal knows, and what is no file."""

    files: dict[str, os.stat_result] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)


def state_of(dest: Path) -> dict[str, Any]:
    """What DEST/.asyncdl/bag.json says ({} when DEST was never bagged in place)."""
    try:
        data = json.loads((dest / STATE_DIR / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def bagged(dest: Path) -> bool:
    """Whether DEST is a mirror bagged in place (its files under data/, its journals saying so)."""
    return state_of(dest).get("state") == "bagged"


def check_not_interrupted(dest: Path) -> None:
    """A UsageError while an in-place bag of DEST is half done (its files on their way under data/)."""
    if state_of(dest).get("state") == "moving":
        raise UsageError(f"an asyncdl bag of {dest} was interrupted while its files moved under {PAYLOAD}/: run "
                         f"asyncdl bag {dest} again to finish it")


def layout_in(dest: Path, layout: str) -> str:
    """The layout a run into DEST places files by: under data/ once DEST is bagged in place."""
    check_not_interrupted(dest)
    return f"{PAYLOAD}/{layout}" if bagged(dest) else layout


def is_bag(path: Path) -> bool:
    """Whether ``path`` looks like a BagIt bag with an md5 manifest."""
    return (path / BAGIT).is_file() and (path / MANIFEST_MD5).is_file()


def bag(dest: Path, into: Path | None = None) -> BagReport:
    """Make the finished mirror in DEST a BagIt bag, in place or ``into`` a new (or empty) folder (blocking).

    Refused, before anything is moved or written, when DEST has no journal, a run holds it, any file is not
    done (failed, pending, partial), a shard has not run or a journal's last run did not complete, a finished
    file is missing or changed on disk since it was verified, or (in place) DEST holds files no journal knows.
    """
    began = time.monotonic()
    paths = journal_paths(dest)  # a UsageError when DEST is no mirror, before anything is made in it
    if into is not None:
        _check_into(dest, into)
        check_not_interrupted(dest)
    with RunLock(dest / STATE_DIR, f"bag {dest}"):
        state = state_of(dest)
        if state.get("state") != "moving":
            _check_finished(dest)
        mirrored = read_mirror(paths)
        if not mirrored.files:
            raise UsageError(f"{dest} holds no finished file: nothing to bag")
        report = _in_place(dest, paths, mirrored, state) if into is None else _into(dest, into, mirrored)
    report.seconds = time.monotonic() - began
    return report


def _in_place(dest: Path, paths: list[Path], mirrored: Mirrored, state: dict[str, Any]) -> BagReport:
    report = BagReport(dest, in_place=True, again=state.get("state") == "bagged")
    survey = None
    if state.get("state") is None:  # a first bag: everything checked before the first rename
        _check_same_device(dest)
        survey = _survey(dest, _top_entries(dest))
        _check_disk(dest, mirrored, survey, strict=True)
        survey.saved = {record_id: f"{PAYLOAD}/{path}" for record_id, path in survey.saved.items()}
        state = {"state": "moving", "token": secrets.token_hex(8)}
        _write_state(dest, state)
    if state["state"] == "moving":
        report.moved = _move_payload(dest, state)
        move_under(paths, PAYLOAD, str(state["token"]), f"bag {dest}: the files moved under {PAYLOAD}/")
        close_out(dest)  # manifest.csv with the new paths
        mirrored = read_mirror(paths)
    if survey is None:  # bagged before, or an interrupted bag taken up: what is under data/ now
        survey = _survey(dest, [PAYLOAD])
        _check_disk(dest, mirrored, survey, strict=True)
    tags = dest / METADATA
    for record_id, path in sorted(survey.saved.items()):  # the records' JSON leave the payload for the tags
        tags.mkdir(exist_ok=True)
        os.replace(dest / path, tags / f"zenodo-record-{record_id}.json")
    _write_tags(dest, dest, mirrored, report, prefix="")
    _write_state(dest, {**state, "state": "bagged"})
    return report


def _into(dest: Path, into: Path, mirrored: Mirrored) -> BagReport:
    report = BagReport(into, in_place=False)
    already = bagged(dest)
    survey = _survey(dest, [PAYLOAD] if already else _top_entries(dest))
    _check_disk(dest, mirrored, survey, strict=False)
    report.left_out = survey.unknown + survey.odd
    prefix = "" if already else f"{PAYLOAD}/"
    into.mkdir(parents=True, exist_ok=True)
    for item in mirrored.files:
        target = into / (prefix + item.path)
        checksum = _checksum(item.checksum)
        size = item.size if item.size is not None else (dest / item.path).lstat().st_size
        entry = FileEntry(key=item.key, size=size, checksum=checksum, url=item.url)
        way = make_copy(dest / item.path, target, entry, item.mtime)
        if way is None:
            raise UsageError(f"{dest / item.path} is not the file the journal verified (its size, mtime or "
                             f"checksum differ): run the mirror again, then bag into a new folder (not {into})")
        report.ways[way] += 1
    saved = dict(survey.saved)
    if already:  # the JSON an earlier bag moved to DEST/metadata, unless a later run saved it again
        for found in sorted((dest / METADATA).glob("zenodo-record-*.json")):
            if (match := SAVED_JSON.fullmatch(found.name)) is not None:
                saved.setdefault(match.group(1), f"{METADATA}/{found.name}")
    for record_id, path in sorted(saved.items()):
        (into / METADATA).mkdir(exist_ok=True)
        _link_or_copy(dest / path, into / METADATA / f"zenodo-record-{record_id}.json")
    _write_tags(into, dest, mirrored, report, prefix=prefix)
    return report


def _checksum(text: str | None) -> Checksum | None:
    try:
        return Checksum.parse(text) if text else None
    except ValueError:  # a row edited by hand: the copy is checked by size only
        return None


def _check_into(dest: Path, into: Path) -> None:
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"--into {into} exists and is not an empty folder: name a new one (nothing was written)")
    here, there = dest.resolve(), into.resolve()
    if there == here or here in there.parents:
        raise UsageError(f"--into {into} is inside {dest}: name a folder outside the mirror")


def _check_same_device(dest: Path) -> None:
    """DEST's files are renamed through DEST/.asyncdl: both must be one file system."""
    if (dest / STATE_DIR).stat().st_dev != dest.stat().st_dev:
        raise LocalError(f"{dest / STATE_DIR} is on another file system than {dest}: asyncdl bag renames files "
                         "through it")


def _check_finished(dest: Path) -> None:
    """A UsageError unless every journal in DEST has every file done and its last run completed."""
    status = read_status(dest)
    left = {state: count.files for state, count in status.states.items() if state != "done" and count.files}
    if left:
        counts = ", ".join(f"{count} {state}" for state, count in sorted(left.items()))
        example = f" (e.g. {status.failures[0][0]}: {status.failures[0][1]})" if status.failures else ""
        raise UsageError(f"{dest} is not a finished mirror: {counts}{example}; run the mirror again until it "
                         "completes (asyncdl status tells), then bag")
    for shard in status.shards:
        where = f" (shard {shard.shard})" if shard.shard else ""
        if not shard.started:
            raise UsageError(f"{dest} is not a finished mirror: shard {shard.shard} has not run; run every shard "
                             "until it completes, then bag")
        outcome = shard.last_outcome or ""
        if outcome not in FINISHED:
            said = outcome if outcome.startswith("ended") else f"ended {outcome!r}" if outcome else "is not recorded"
            raise UsageError(f"{dest} is not a finished mirror: the last run{where} {said}; run it again until it "
                             "completes, then bag")


def _top_entries(dest: Path) -> list[str]:
    """The names at the top of an unbagged DEST that are the mirror's (not asyncdl's own)."""
    return sorted(name for name in os.listdir(dest) if name not in (STATE_DIR, MANIFEST))


def _survey(dest: Path, names: Iterable[str]) -> _Survey:
    """Walk DEST/NAME for each name (lstat only: no file is opened, no link followed)."""
    found = _Survey()
    root = os.fspath(dest) + os.sep
    pending = []
    for name in names:
        try:
            info = os.lstat(root + name)
        except FileNotFoundError:
            continue  # data/ gone: its files are missing (the journal's side says which)
        if stat.S_ISDIR(info.st_mode):
            pending.append(name)
        elif stat.S_ISREG(info.st_mode):
            found.files[name] = info
        else:
            found.odd.append(name)
    while pending:
        folder = pending.pop()
        with os.scandir(root + folder) as entries:
            for entry in entries:
                relative = f"{folder}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    pending.append(relative)
                elif entry.is_file(follow_symlinks=False):
                    found.files[relative] = entry.stat(follow_symlinks=False)
                else:
                    found.odd.append(relative)
    return found


def _check_disk(dest: Path, mirrored: Mirrored, survey: _Survey, *, strict: bool) -> None:
    """Every finished file on disk as the journal verified it (its size and mtime); what else is there sorted
    into the records' saved JSON and files no journal knows (refused when ``strict``: they would sit in the
    payload unlisted)."""
    missing, changed = [], []
    for item in mirrored.files:
        info = survey.files.pop(item.path, None)
        if info is None:
            missing.append(item.path)
        elif (item.size is not None and info.st_size != item.size) or info.st_mtime != item.mtime:
            changed.append(item.path)
    if missing:
        raise UsageError(f"{plural(len(missing), 'finished file')} not in {dest} (e.g. {missing[0]}): run the "
                         "mirror again to fetch them, then bag")
    if changed:
        raise UsageError(f"{plural(len(changed), 'file')} in {dest} changed on disk since the journal verified "
                         f"them (e.g. {changed[0]}): run the mirror again (it verifies them again), then bag")
    for path in sorted(survey.files):
        match = SAVED_JSON.fullmatch(path.rsplit("/", 1)[-1])
        if match is not None and match.group(1) in mirrored.records and match.group(1) not in survey.saved:
            survey.saved[match.group(1)] = path
        else:
            survey.unknown.append(path)
    if strict and (survey.unknown or survey.odd):
        strays = survey.unknown + survey.odd
        raise UsageError(f"{dest} holds {plural(len(strays), 'file')} no journal knows (e.g. {strays[0]}): they "
                         f"would be in the bag unlisted; move them out of {dest}, or bag with --into NEW (which "
                         "leaves them out)")


def _move_payload(dest: Path, state: dict[str, Any]) -> int:
    """Rename DEST's top-level entries into DEST/.asyncdl/payload, then that to DEST/data (idempotent: an
    interrupted move is taken up where it stopped). Returns the entries moved."""
    staging = dest / STATE_DIR / STAGING
    if not staging.exists():
        if state.get("staged"):
            return 0  # moved already: only the journals may be left to follow
        staging.mkdir()
        state["staged"] = True
        _write_state(dest, state)
    moved = 0
    for name in _top_entries(dest):
        os.rename(dest / name, staging / name)
        moved += 1
    fsync_dir(staging)
    os.rename(staging, dest / PAYLOAD)
    fsync_dir(dest)
    fsync_dir(dest / STATE_DIR)
    return moved


def _write_state(dest: Path, state: dict[str, Any]) -> None:
    _write_durably(dest / STATE_DIR / STATE, json.dumps(state).encode())


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary beside it, then fsutil's commit (the file and its
    folder fsynced around the rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open_fresh(temporary) as stream:
        stream.write(data)
    commit(temporary, path)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copyfile(source, target, follow_symlinks=False)


def _write_tags(root: Path, dest: Path, mirrored: Mirrored, report: BagReport, *, prefix: str) -> None:
    """The tag files of the bag at ``root``: the payload manifest from the journals (files without an md5 there
    hashed in DEST), bag-info.txt, bagit.txt and the tag manifest over them and the records' JSON."""
    lines = []
    total = 0
    for item in mirrored.files:
        md5 = item.md5
        if md5 is None:
            md5 = md5_of(dest / item.path)
            report.hashed.append(prefix + item.path)
        size = item.size if item.size is not None else (root / (prefix + item.path)).stat().st_size
        total += size
        lines.append(f"{md5}  {encode_path(prefix + item.path)}\n")
    report.files, report.bytes, report.records = len(lines), total, len(mirrored.records)
    _write_durably(root / MANIFEST_MD5, "".join(lines).encode())
    _write_durably(root / BAG_INFO, bag_info(mirrored, total, len(lines)).encode())
    _write_durably(root / BAGIT, b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    tags = [BAGIT, BAG_INFO, MANIFEST_MD5]
    if (root / METADATA).is_dir():
        metadata = sorted(f"{METADATA}/{name}" for name in os.listdir(root / METADATA)
                          if (root / METADATA / name).is_file())
        report.tag_files = len(metadata)
        tags += metadata
    _write_durably(root / TAG_MANIFEST, "".join(f"{md5_of(root / tag)}  {encode_path(tag)}\n"
                                                for tag in tags).encode())
    fsync_dir(root)


def bag_info(mirrored: Mirrored, total: int, count: int) -> str:
    """bag-info.txt: the source instances, what was mirrored, a line per DOI, the dates, counts and bytes."""
    records = mirrored.records.values()
    sources = sorted({invenio.base_of(str(r.get("api_url") or "")) for r in records} - {""})
    dois = sorted({str(r["doi"]) for r in records if r.get("doi")})
    created = sorted(str(r["created"])[:10] for r in records if r.get("created"))
    what = "; ".join(text.split(" into ", 1)[0] for text in mirrored.selections)
    fields = [("Source-Organization", source) for source in sources]
    fields.append(("External-Description", f"Files of {len(mirrored.records)} records mirrored by asyncdl"
                                           + (f" ({what})" if what else "")))
    fields += [("External-Identifier", doi) for doi in dois]
    fields += [("Bagging-Date", time.strftime("%Y-%m-%d")), ("Bag-Software-Agent", AGENT),
               ("Bag-Size", format_size(total)), ("Payload-Oxum", f"{total}.{count}"),
               ("Record-Count", str(len(mirrored.records))),
               ("Linked-Files", str(sum(1 for f in mirrored.files if f.linked)))]
    if created:
        fields.append(("Records-Created", f"{created[0]}/{created[-1]}"))
    if mirrored.first is not None and mirrored.last is not None:
        fields.append(("Mirrored", f"{_day(mirrored.first)}/{_day(mirrored.last)}"))
    return "".join(f"{label}: {' '.join(value.split())}\n" for label, value in fields)


def _day(moment: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(moment))


def stale(dest: Path) -> bool:
    """Whether the bag DEST's manifest no longer lists what its journals hold under data/ (a run since the
    bag fetched, replaced or saved files), read from the journals and a walk of data/: nothing is hashed."""
    try:
        files = read_mirror(journal_paths(dest)).files
        listed = dict(manifest_entries(dest))
    except (OSError, UnicodeDecodeError, AsyncdlError):
        return True
    if {item.path for item in files} != set(listed) or set(payload_files(dest)) != set(listed):
        return True
    return any(item.md5 is not None and listed[item.path] != item.md5 for item in files)


def manifest_entries(root: Path) -> list[tuple[str, str]]:
    """(path, md5) of every line of the bag's manifest-md5.txt."""
    found = []
    for line in (root / MANIFEST_MD5).read_text(encoding="utf-8").splitlines():
        digest, _, path = line.strip().partition(" ")
        if digest and path:
            found.append((decode_path(path.strip().lstrip("*")), digest.lower()))
    return found


def payload_files(root: Path) -> list[str]:
    """Every regular file under the bag's data/, as a path relative to the bag."""
    return sorted(_survey(root, [PAYLOAD]).files)


def describe(report: BagReport, dest: Path) -> str:
    """The line ``asyncdl bag`` ends with."""
    if report.in_place:
        renamed = f" ({report.moved} top-level entries renamed, nothing copied)" if report.moved else ""
        where = f"{dest} is a bag{' again' if report.again else ''}, its files under {dest / PAYLOAD}{renamed}"
    else:
        ways = ", ".join(f"{count} by {way}" for way, count in sorted(report.ways.items()))
        where = f"bagged {dest} into {report.bag} ({ways})"
    hashed = f"{len(report.hashed)} hashed (no md5 in the journal)" if report.hashed else "none hashed"
    tags = f"; {report.tag_files} records' JSON in {METADATA}/" if report.tag_files else ""
    left = f"; {plural(len(report.left_out), 'file')} no journal knows left out (e.g. {report.left_out[0]})" \
        if report.left_out else ""
    return (f"{where}: {plural(report.files, 'file')} ({format_size(report.bytes)}) of "
            f"{plural(report.records, 'record')}, md5s "
            f"from the journal, {hashed}{tags}{left}; {report.seconds:.1f} s")


__all__ = ["BagFile", "BagReport", "bag", "bagged", "check_not_interrupted", "decode_path", "describe",
           "encode_path", "is_bag", "layout_in", "manifest_entries", "payload_files", "stale"]
