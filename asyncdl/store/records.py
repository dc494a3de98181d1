"""The crawl store's format: what the journal keeps of a record, enough to plan its files again without a
request (and, for ``--save-metadata``, the record's JSON as the API gave it)."""

from __future__ import annotations

from typing import Any

from asyncdl.models import Checksum, FileEntry, Record, RecordStats


def record_to_json(record: Record) -> dict[str, Any]:
    """What the journal keeps of a record: enough to plan its files again without a request."""
    return {
        "id": record.id, "title": record.title, "conceptrecid": record.conceptrecid, "doi": record.doi,
        "conceptdoi": record.conceptdoi, "created": record.created, "updated": record.updated,
        "publication_date": record.publication_date, "version": record.version,
        "access_right": record.access_right, "html_url": record.html_url, "api_url": record.api_url,
        "files_listed": record.files_listed, "owners": list(record.owners), "communities": list(record.communities),
        "stats": {name: getattr(record.stats, name) for name in RecordStats.__slots__},
        "files": [{"key": f.key, "size": f.size, "checksum": str(f.checksum) if f.checksum else None,
                   "url": f.url, "file_id": f.file_id, "mimetype": f.mimetype, "status": f.status}
                  for f in record.files],
        "raw": dict(record.metadata),
    }


def record_from_json(data: dict[str, Any]) -> Record:
    files = tuple(FileEntry(key=f["key"], size=f["size"], url=f["url"], file_id=f.get("file_id"),
                            mimetype=f.get("mimetype"), status=f.get("status"),
                            checksum=Checksum.parse(f["checksum"]) if f.get("checksum") else None)
                  for f in data["files"])
    return Record(id=data["id"], title=data["title"], conceptrecid=data["conceptrecid"], doi=data["doi"],
                  conceptdoi=data["conceptdoi"], created=data["created"], updated=data["updated"],
                  publication_date=data["publication_date"], version=data["version"],
                  access_right=data["access_right"], html_url=data["html_url"], api_url=data["api_url"],
                  files=files, files_listed=data["files_listed"], stats=RecordStats(**data["stats"]),
                  owners=tuple(data["owners"]), communities=tuple(data["communities"]), metadata=data.get("raw", {}))
