"""The emulator's records: generated from a seed, or loaded from a JSON file.

A dataset holds concepts (``conceptrecid``) with one or more published versions,
each version a record with files. File bytes come from :class:`ContentSource`
unless a file carries literal content; md5s of generated files are computed on
first use and cached. A file may state another checksum kind than md5 (``checksum_kind``:
sha256, an S3 multipart ETag, or none) and a ``status`` other than ``completed``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

from asyncdl.emulator.content import ContentSource

IODP_OWNER = "88403"
IODP_EXPEDITIONS = ("350", "351", "352", "361", "362", "366", "369", "372A", "374", "376", "385",
                    "391", "396", "397T")
IODP_ANALYSES = ("Alkalinity and pH", "Color reflectance", "Moisture and Density", "Thin section images",
                 "Elemental analysis (CHNS)", "X-ray fluorescence (XRF)", "Gas safety report",
                 "Core composite images", "Magnetic remanence (SRM-long)", "Vane shear strength (AVS)")
WORDS = ("ocean", "microscopy", "sediment", "genome", "climate", "image", "protein", "survey", "model",
         "benchmark", "atlas", "cell", "river", "soil", "ice", "spectra", "network", "archive")
EXTENSIONS = ("csv", "zip", "txt", "tif", "json", "h5", "nc", "README.txt")
MIMETYPES = {"csv": "text/csv", "zip": "application/zip", "txt": "text/plain", "tif": "image/tiff",
             "json": "application/json", "h5": "application/octet-stream", "nc": "application/x-netcdf"}
DEFAULT_COMMUNITIES = ("iodp", "nfdi4bioimage", "zenodo", "biosyslit", "eu")


ChecksumKind = Literal["md5", "sha256", "multipart", "none"]
MULTIPART_PART_SIZE = 8 * 1024 * 1024


@dataclass
class FileSpec:
    """One file of a record: generated (size + offset) or literal content. ``checksum_kind``: the checksum
    the API states for it (multipart: the S3 ETag of ``part_size`` parts); ``status``: the native listing's."""

    key: str
    size: int
    offset: int = 0
    content: bytes | None = None
    mimetype: str = "application/octet-stream"
    file_id: str = ""
    checksum_kind: ChecksumKind = "md5"
    status: str = "completed"
    part_size: int = MULTIPART_PART_SIZE
    _md5: str | None = field(default=None, repr=False)
    _stated: str | None = field(default=None, repr=False)


@dataclass
class RecordSpec:
    """One published version of a concept."""

    id: int
    conceptrecid: int
    title: str
    created: datetime
    updated: datetime
    publication_date: str
    version_index: int
    owners: tuple[str, ...]
    communities: tuple[str, ...]
    files: list[FileSpec]
    access: str = "open"  # open | restricted (whole record) | files-restricted | embargoed
    embargo_date: str | None = None
    deleted: bool = False
    description: str = ""
    keywords: tuple[str, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)
    is_latest: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def searchable(self) -> bool:
        """Restricted and deleted records never appear in search results."""
        return not self.deleted and self.access != "restricted"

    @property
    def files_public(self) -> bool:
        return self.access == "open"


@dataclass(frozen=True)
class DatasetSpec:
    """How to generate a dataset. Every knob has a small, fast default."""

    seed: int = 0
    records: int = 60
    files_per_record: tuple[int, int] = (1, 5)
    file_size: tuple[int, int] = (200, 256 * 1024)
    large_files: tuple[int, ...] = ()
    multi_version_fraction: float = 0.2
    max_versions: int = 3
    min_versions: int = 2  # of a concept with several versions
    version_keeps: float = 0.0  # the share of a version's files the next version keeps (the same stored files)
    owners: int = 6
    iodp_fraction: float = 0.3
    communities: tuple[str, ...] = DEFAULT_COMMUNITIES
    restricted_fraction: float = 0.03
    files_restricted_fraction: float = 0.03
    embargoed_fraction: float = 0.02
    deleted_fraction: float = 0.02
    start: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2025, 12, 31, tzinfo=UTC)
    first_id: int = 1000
    hostile_keys: bool = False


class Dataset:
    """All records, indexed the ways the API looks them up."""

    def __init__(self, records: Iterable[RecordSpec], *, content_seed: int = 0,
                 communities: Iterable[str] = ()) -> None:
        self.records: dict[int, RecordSpec] = {}
        self.concepts: dict[int, list[RecordSpec]] = {}
        for record in sorted(records, key=lambda r: r.id):
            self.records[record.id] = record
            self.concepts.setdefault(record.conceptrecid, []).append(record)
        for versions in self.concepts.values():
            versions.sort(key=lambda r: r.version_index)
            live = [r for r in versions if not r.deleted]
            for r in versions:
                r.is_latest = bool(live) and r is live[-1]
        known = set(communities)
        for record in self.records.values():
            known.update(record.communities)
        self.communities = tuple(sorted(known))
        self.content = ContentSource(content_seed)
        self.content_seed = content_seed
        self.md5_cache: Path | None = None
        self._md5_lock = threading.Lock()
        self._file_locks: dict[int, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self.records)

    def latest(self, conceptrecid: int) -> RecordSpec | None:
        """The newest live version of a concept."""
        versions = [r for r in self.concepts.get(conceptrecid, []) if not r.deleted]
        return versions[-1] if versions else None

    def file_md5(self, spec: FileSpec) -> str:
        """The md5 of a file, computed once even when asked from several threads (slow for GB files)."""
        if spec._md5 is not None:
            return spec._md5
        with self._md5_lock:
            lock = self._file_locks.setdefault(id(spec), threading.Lock())
        with lock:
            if spec._md5 is None:
                spec._md5 = self._cached_md5(spec)
        return spec._md5

    def stated_checksum(self, spec: FileSpec) -> str | None:
        """The checksum the API states for a file: ``md5:...`` (Zenodo's), ``sha256:...``,
        ``multipart:<etag>-<parts>-<part size>`` or None; computed from the served bytes."""
        if spec.checksum_kind == "md5":
            return f"md5:{self.file_md5(spec)}"
        if spec.checksum_kind == "none":
            return None
        if spec._stated is None:
            spec._stated = self._other_checksum(spec)
        return spec._stated

    def _other_checksum(self, spec: FileSpec) -> str:
        """sha256 of the bytes, or the S3 ETag: md5 of the parts' binary md5s, then "-<parts>"."""
        if spec.checksum_kind == "sha256":
            whole = hashlib.sha256()
            for chunk in self.iter_file(spec, 0, spec.size, 1 << 20):
                whole.update(chunk)
            return f"sha256:{whole.hexdigest()}"
        digests = b"".join(hashlib.md5(b"".join(self.iter_file(spec, start, min(spec.size, start + spec.part_size),
                                                                1 << 20))).digest()
                           for start in range(0, max(spec.size, 1), spec.part_size))
        parts = len(digests) // 16
        return f"multipart:{hashlib.md5(digests).hexdigest()}-{parts}-{spec.part_size}"

    def _cached_md5(self, spec: FileSpec) -> str:
        """Hash a file, reusing the on-disk cache (``md5_cache``) for generated files when one is set."""
        if spec.content is not None:
            return hashlib.md5(spec.content).hexdigest()
        key = f"{self.content_seed}:{spec.offset}:{spec.size}"
        cached = self._read_cache().get(key) if self.md5_cache else None
        if cached:
            return cached
        digest = self.content.md5(spec.offset, spec.size)
        if self.md5_cache and spec.size >= 2**20:
            with self._md5_lock:
                table = self._read_cache()
                table[key] = digest
                self.md5_cache.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.md5_cache.with_suffix(".tmp")
                temporary.write_text(json.dumps(table))
                temporary.replace(self.md5_cache)
        return digest

    def _read_cache(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.md5_cache.read_text())) if self.md5_cache else {}
        except (OSError, ValueError):
            return {}

    def iter_file(self, spec: FileSpec, start: int, end: int, chunk_size: int) -> Iterator[memoryview]:
        """The bytes ``[start, end)`` of a file, in chunks."""
        if spec.content is not None:
            view = memoryview(spec.content)
            for position in range(start, end, chunk_size):
                yield view[position : min(end, position + chunk_size)]
            return
        yield from self.content.iter_range(spec.offset, start, end, chunk_size)

    @classmethod
    def generate(cls, spec: DatasetSpec) -> Dataset:
        """A reproducible dataset from ``spec``."""
        return cls(_Generator(spec).records(), content_seed=spec.seed, communities=spec.communities)

    @classmethod
    def from_json(cls, path: str | Path, *, seed: int = 0) -> Dataset:
        """Load records from a JSON file (format in the README's emulator section)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = data["records"] if isinstance(data, dict) else data
        records = [_record_from_json(item, seed=seed) for item in items]
        communities = data.get("communities", ()) if isinstance(data, dict) else ()
        return cls(records, content_seed=seed, communities=communities)


HOSTILE_KEYS = ("../escape.txt", "/etc/passwd-copy", "a\\b\\c.txt", "con.txt", "name with spaces.csv",
                "dir/sub dir/file#1?.txt", "Case.TXT", "case.txt", "caf\u00e9.txt", "cafe\u0301.txt",
                "x" * 300 + ".txt", "ctrl\x01char.txt", "....", "nested/../../up.txt")


class _Generator:
    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.next_id = spec.first_id
        self.owners = [IODP_OWNER] + [str(100000 + self.rng.randrange(900000)) for _ in range(spec.owners - 1)]

    def records(self) -> list[RecordSpec]:
        out: list[RecordSpec] = []
        large = list(self.spec.large_files)
        span = (self.spec.end - self.spec.start).total_seconds()
        for index in range(self.spec.records):
            concept = self._new_id()
            created = self.spec.start + timedelta(seconds=self.rng.random() * span)
            n_versions = 1
            if self.rng.random() < self.spec.multi_version_fraction:
                low = max(2, self.spec.min_versions)
                n_versions = self.rng.randint(low, max(low, self.spec.max_versions))
            title, owner, communities = self._identity(index)
            access = self._access()
            deleted_version = self.rng.random() < self.spec.deleted_fraction
            files: list[FileSpec] = []
            for version in range(n_versions):
                record_id = self._new_id()
                when = created + timedelta(days=version * self.rng.randint(1, 200))
                new = self._files(record_id, large.pop(0) if large and version == n_versions - 1 else None,
                                  hostile=self.spec.hostile_keys and index == 0)
                files = self._next_version(files, new)
                out.append(RecordSpec(
                    id=record_id, conceptrecid=concept, title=title, created=when,
                    updated=when + timedelta(hours=self.rng.randint(1, 48)),
                    publication_date=when.date().isoformat(), version_index=version,
                    owners=(owner,), communities=communities, files=files, access=access,
                    embargo_date="2099-01-01" if access == "embargoed" else None,
                    deleted=deleted_version and version == n_versions - 1 and n_versions > 1,
                    description=f"<p>{title}. Generated by the asyncdl emulator.</p>",
                    keywords=tuple(self.rng.sample(WORDS, 3)), stats=self._stats()))
        return out

    def _next_version(self, previous: list[FileSpec], new: list[FileSpec]) -> list[FileSpec]:
        """A version's files: with ``version_keeps``, some of the previous version's (the same stored files:
        same id, same bytes, as Zenodo's new versions point to them) and its new ones under other keys."""
        if not previous or not self.spec.version_keeps:
            return new
        kept = [spec for spec in previous if self.rng.random() < self.spec.version_keeps]
        keys = {spec.key for spec in kept}
        return kept + [spec for spec in new if spec.key not in keys]

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _identity(self, index: int) -> tuple[str, str, tuple[str, ...]]:
        if self.rng.random() < self.spec.iodp_fraction:
            expedition = self.rng.choice(IODP_EXPEDITIONS)
            analysis = self.rng.choice(IODP_ANALYSES)
            communities = ("iodp",) if "iodp" in self.spec.communities else ()
            return f"IODP Expedition {expedition} {analysis}", IODP_OWNER, communities
        words = " ".join(self.rng.sample(WORDS, 3)).capitalize()
        title = f"{words} dataset {index}"
        chosen = tuple(c for c in self.spec.communities if c != "iodp" and self.rng.random() < 0.3)
        return title, self.rng.choice(self.owners[1:] or self.owners), chosen

    def _access(self) -> str:
        roll = self.rng.random()
        for name, fraction in (("restricted", self.spec.restricted_fraction),
                               ("files-restricted", self.spec.files_restricted_fraction),
                               ("embargoed", self.spec.embargoed_fraction)):
            if roll < fraction:
                return name
            roll -= fraction
        return "open"

    def _files(self, record_id: int, large_size: int | None, *, hostile: bool) -> list[FileSpec]:
        low, high = self.spec.files_per_record
        count = self.rng.randint(low, max(low, high))
        keys = list(HOSTILE_KEYS) if hostile else [self._key(i) for i in range(count)]
        sizes = [self._size() for _ in keys]
        if large_size is not None:
            keys.append(f"large_{large_size}.bin")
            sizes.append(large_size)
        files = []
        for key, size in zip(keys, sizes, strict=True):
            extension = key.rsplit(".", 1)[-1]
            files.append(FileSpec(
                key=key, size=size, offset=ContentSource.offset_for(f"{record_id}/{key}", self.spec.seed),
                mimetype=MIMETYPES.get(extension, "application/octet-stream"),
                file_id=f"{self.rng.getrandbits(128):032x}"))
        return files

    def _key(self, index: int) -> str:
        extension = self.rng.choice(EXTENSIONS)
        name = f"{self.rng.choice(WORDS)}_{index}.{extension}"
        return f"data/{name}" if self.rng.random() < 0.15 else name

    def _size(self) -> int:
        low, high = self.spec.file_size
        if high <= low:
            return low
        # log-uniform: many small files, a few large ones
        return round(low * (high / low) ** self.rng.random()) if low > 0 else self.rng.randint(0, high)

    def _stats(self) -> dict[str, int]:
        views = self.rng.randint(0, 5000)
        downloads = self.rng.randint(0, views)
        return {"downloads": downloads, "unique_downloads": downloads * 2 // 3, "views": views,
                "unique_views": views * 3 // 4, "version_downloads": downloads // 2,
                "version_unique_downloads": downloads // 3, "version_views": views // 2,
                "version_unique_views": views // 3}


def _record_from_json(item: dict[str, Any], *, seed: int) -> RecordSpec:
    record_id = int(item["id"])
    created = datetime.fromisoformat(str(item.get("created", "2020-01-01T00:00:00+00:00")))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    files: list[FileSpec] = []
    for f in item.get("files", []):
        content: bytes | None = None
        if "content" in f:
            content = str(f["content"]).encode()
        elif "content_base64" in f:
            content = base64.b64decode(f["content_base64"])
        size = len(content) if content is not None else int(f["size"])
        kind = str(f.get("checksum", "md5"))
        if kind not in get_args(ChecksumKind):
            raise ValueError(f"record {record_id}, file {f['key']!r}: checksum must be one of "
                             f"{', '.join(get_args(ChecksumKind))}, not {kind!r}")
        files.append(FileSpec(key=str(f["key"]), size=size, content=content,
                              offset=ContentSource.offset_for(f"{record_id}/{f['key']}", seed),
                              mimetype=str(f.get("mimetype", "application/octet-stream")),
                              file_id=str(f.get("id", f"{record_id:016x}{len(files):016x}")),
                              checksum_kind=cast(ChecksumKind, kind), status=str(f.get("status", "completed")),
                              part_size=int(f.get("part_size", MULTIPART_PART_SIZE))))
    return RecordSpec(
        id=record_id, conceptrecid=int(item.get("conceptrecid", record_id - 1)),
        title=str(item.get("title", f"Record {record_id}")), created=created,
        updated=created, publication_date=str(item.get("publication_date", created.date().isoformat())),
        version_index=int(item.get("version_index", 0)), owners=tuple(str(o) for o in item.get("owners", [])),
        communities=tuple(item.get("communities", [])), files=files, access=str(item.get("access", "open")),
        embargo_date=item.get("embargo_date"), deleted=bool(item.get("deleted", False)),
        description=str(item.get("description", "")), keywords=tuple(item.get("keywords", [])),
        stats={k: int(v) for k, v in item.get("stats", {}).items()})
