"""Plain values that flow through the pipeline: checksums, file entries, records."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Checksum:
    """A checksum as a record states it, e.g. ``md5:0f3c...``."""

    algorithm: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """Read ``"md5:<hex>"`` or a bare 32-digit hex md5; raise ValueError otherwise."""
        algorithm, sep, value = text.strip().partition(":")
        if not sep:
            algorithm, value = "md5", algorithm
        algorithm, value = algorithm.lower(), value.lower()
        if algorithm == "md5" and not _HEX32.match(value):
            raise ValueError(f"not an md5 checksum: {text!r}")
        if not value:
            raise ValueError(f"empty checksum: {text!r}")
        return cls(algorithm, value)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a record: its key (may contain "/"), size, checksum and content URL; ``status``: the
    native listing's (``"completed"`` for a file whose bytes are there; None when not stated)."""

    key: str
    size: int | None
    checksum: Checksum | None
    url: str
    file_id: str | None = None
    mimetype: str | None = None
    status: str | None = None

    @property
    def available(self) -> bool:
        """Whether the server has the file's bytes: no status stated, or ``completed``."""
        return self.status is None or self.status == "completed"

    @property
    def md5(self) -> str | None:
        """The md5 the record gives, or None when it gives none (or another algorithm)."""
        return self.checksum.value if self.checksum is not None and self.checksum.algorithm == "md5" else None


STAT_FIELDS = (
    "downloads",
    "unique_downloads",
    "views",
    "unique_views",
    "version_downloads",
    "version_unique_downloads",
    "version_views",
    "version_unique_views",
)


@dataclass(frozen=True, slots=True)
class RecordStats:
    """Zenodo's usage statistics of a record (all versions and this version)."""

    downloads: int = 0
    unique_downloads: int = 0
    views: int = 0
    unique_views: int = 0
    version_downloads: int = 0
    version_unique_downloads: int = 0
    version_views: int = 0
    version_unique_views: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RecordStats:
        """Read the ``stats`` object; missing, non-numeric and non-finite values (JSON's Infinity, NaN) count
        as 0."""
        data = data or {}
        values = {}
        for name in STAT_FIELDS:
            value = data.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                value = 0
            values[name] = int(value)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Record:
    """A published record with its files, as the search or record API describes it."""

    id: str
    title: str
    conceptrecid: str | None = None
    doi: str | None = None
    conceptdoi: str | None = None
    created: str = ""
    updated: str = ""
    publication_date: str | None = None
    version: str | None = None
    access_right: str | None = None
    html_url: str = ""
    api_url: str = ""
    files: tuple[FileEntry, ...] = ()
    files_listed: bool = True
    files_stated: int | None = None  # the number of files the record says it has (native ``files.count``)
    stats: RecordStats = field(default_factory=RecordStats)
    owners: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def total_bytes(self) -> int:
        """Sum of the known file sizes."""
        return sum(f.size or 0 for f in self.files)
