"""asyncdl's own names on disk, in one place: what it keeps in DEST beside the files it mirrors.

    DEST/.asyncdl/journal.sqlite            the journal of a whole run
    DEST/.asyncdl/journal-K-of-N.sqlite     the journal of shard K of N
    DEST/.asyncdl/lock, lock-K-of-N         run locks (see lock.py)
    DEST/.asyncdl/manifest.lock             serializes manifest writes of shards finishing at once
    DEST/.asyncdl/tmp/                      files-archive ZIPs being unpacked
    DEST/manifest.csv                       every file any journal knows, with its state
    DEST/<path>.asyncdl-part                a file being downloaded (never under its final name)
    DEST/<path>.asyncdl-part.segments       the progress sidecar of a segmented download
"""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".asyncdl"
MANIFEST = "manifest.csv"
RESERVED_AT_TOP = (STATE_DIR, MANIFEST)  # names at the top of DEST that no file may take
PART_SUFFIX = ".asyncdl-part"
SIDECAR_SUFFIX = ".segments"
MANIFEST_LOCK = "manifest.lock"


def part_of(final: Path) -> Path:
    """The part file a download is written to until it is verified and renamed to ``final``."""
    return final.with_name(final.name + PART_SUFFIX)


def sidecar_of(part: Path) -> Path:
    """The progress sidecar of a segmented part file."""
    return part.with_name(part.name + SIDECAR_SUFFIX)


def journal_path(dest: Path, shard: str = "") -> Path:
    """The journal of a run (``shard``: a shard's suffix, ``-2-of-8``)."""
    return dest / STATE_DIR / f"journal{shard}.sqlite"


def archive_temporary(dest: Path, record_id: str) -> Path:
    """Where a record's files-archive is kept while its members are unpacked."""
    return dest / STATE_DIR / "tmp" / f"{record_id}.zip"
