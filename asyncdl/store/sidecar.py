"""The segment sidecar: ``<part>.segments``, the durable progress of a segmented download.

A JSON object: ``{"version": 1, "size": N, "segments": [[start, end, done], ...]}``. Release 0.1.0 wrote
the same object without ``version``; it is read as version 1. A newer version is a FormatError (the file
fails with the reason; nothing is guessed). An unreadable, truncated or inconsistent sidecar is no
sidecar: the download starts that file again.
"""

from __future__ import annotations

import json
from pathlib import Path

from asyncdl.errors import FormatError

SIDECAR_VERSION = 1
Piece = tuple[int, int, int]  # start, end (exclusive), bytes done


def render(size: int, pieces: list[Piece]) -> str:
    return json.dumps({"version": SIDECAR_VERSION, "size": size, "segments": [list(p) for p in pieces]})


def read(path: Path, size: int) -> list[Piece] | None:
    """The pieces a sidecar records for a file of ``size`` bytes; None when there is no usable one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    version = data.get("version", 1)
    if version != SIDECAR_VERSION:
        raise FormatError(f"the segment sidecar {path} is of version {version!r}, which this asyncdl does not "
                          f"know (it writes version {SIDECAR_VERSION}): upgrade asyncdl, or delete it and the "
                          "part beside it to download the file again")
    if data.get("size") != size:
        return None
    try:
        pieces = [(int(a), int(b), int(c)) for a, b, c in data["segments"]]
    except (KeyError, TypeError, ValueError):
        return None
    if not pieces or pieces[0][0] != 0 or pieces[-1][1] != size:
        return None
    if any(done < 0 or start + done > end for start, end, done in pieces):
        return None
    return pieces
