"""Small hand-made datasets for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from asyncdl.emulator import Dataset, FileSpec, RecordSpec
from asyncdl.emulator.content import ContentSource


def record(record_id: int, *, concept: int | None = None, title: str = "", created: str = "2020-01-01",
           files: dict[str, bytes | int] | None = None, version: int = 0, owners: tuple[str, ...] = ("42",),
           communities: tuple[str, ...] = (), **extra: Any) -> RecordSpec:
    """A record; files map key -> literal bytes or a generated size."""
    when = datetime.fromisoformat(created).replace(tzinfo=UTC)
    specs = []
    for key, value in (files if files is not None else {"data.bin": 1000}).items():
        if isinstance(value, bytes):
            specs.append(FileSpec(key=key, size=len(value), content=value, file_id=f"f{record_id}-{key}"))
        else:
            specs.append(FileSpec(key=key, size=value, offset=ContentSource.offset_for(f"{record_id}/{key}", 0),
                                  file_id=f"f{record_id}-{key}"))
    return RecordSpec(id=record_id, conceptrecid=concept if concept is not None else record_id - 1,
                      title=title or f"Record {record_id}", created=when, updated=when + timedelta(hours=1),
                      publication_date=when.date().isoformat(), version_index=version,
                      owners=owners, communities=communities, files=specs, **extra)


def many(count: int, *, start: datetime = datetime(2016, 1, 1, tzinfo=UTC), step_hours: float = 5.0,
         owner: str = "7") -> Dataset:
    """``count`` single-version records with one small file each, created ``step_hours`` apart."""
    records = []
    for i in range(count):
        rid = 100_000 + 2 * i + 1
        when = start + timedelta(hours=step_hours * i)
        records.append(RecordSpec(id=rid, conceptrecid=rid - 1, title=f"Bulk record {i}", created=when,
                                  updated=when, publication_date=when.date().isoformat(), version_index=0,
                                  owners=(owner,), communities=("bulk",),
                                  files=[FileSpec(key=f"f{i}.txt", size=64, offset=i)],
                                  stats={"downloads": i % 97, "views": i % 89}))
    return Dataset(records)
