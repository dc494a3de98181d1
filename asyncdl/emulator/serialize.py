"""JSON bodies in Zenodo's shapes: the legacy default, the native InvenioRDM one, file listings."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from asyncdl.emulator.dataset import Dataset, FileSpec, RecordSpec
from asyncdl.emulator.flavor import ZENODO, Flavor

NATIVE_MEDIA_TYPE = "application/vnd.inveniordm.v1+json"
STAT_NAMES = ("downloads", "unique_downloads", "views", "unique_views", "version_downloads",
              "version_unique_downloads", "version_unique_views", "version_views")


def quote_key(key: str) -> str:
    """A file key as it appears in a URL path ("/" kept, as Zenodo does since 2026-03; dot segments encoded)."""
    segments = quote(key, safe="/").split("/")
    return "/".join(s.replace(".", "%2E") if s in (".", "..") else s for s in segments)


def iso(record_time: Any) -> str:
    return str(record_time.isoformat())


def record_links(base: str, record: RecordSpec, flavor: Flavor = ZENODO) -> dict[str, str]:
    """The ``links`` object of a record, absolute, as recorded in 2026."""
    rid, parent = flavor.public_id(record.id), flavor.public_id(record.conceptrecid)
    api, doi, parent_doi = f"{base}/api/records/{rid}", flavor.doi(record.id), flavor.doi(record.conceptrecid)
    return {
        "self": api, "self_html": f"{base}/records/{rid}", "preview_html": f"{base}/records/{rid}?preview=1",
        "doi": f"https://doi.org/{doi}", "self_doi": f"https://doi.org/{doi}",
        "self_doi_html": f"{base}/doi/{doi}", "reserve_doi": f"{api}/draft/pids/doi",
        "parent": f"{base}/api/records/{parent}", "parent_html": f"{base}/records/{parent}",
        "parent_doi": f"https://doi.org/{parent_doi}", "parent_doi_html": f"{base}/doi/{parent_doi}",
        "self_iiif_manifest": f"{base}/api/iiif/record:{rid}/manifest",
        "self_iiif_sequence": f"{base}/api/iiif/record:{rid}/sequence/default",
        "files": f"{api}/files", "media_files": f"{api}/media-files", "archive": f"{api}/files-archive",
        "archive_media": f"{api}/media-files-archive", "latest": f"{api}/versions/latest",
        "latest_html": f"{base}/records/{rid}/latest", "versions": f"{api}/versions", "draft": f"{api}/draft",
        "access_links": f"{api}/access/links", "access_grants": f"{api}/access/grants",
        "access_users": f"{api}/access/users", "access_request": f"{api}/access/request",
        "access": f"{api}/access", "communities": f"{api}/communities",
        "communities-suggestions": f"{api}/communities-suggestions",
        "request_deletion": f"{api}/request-deletion", "file_modification": f"{api}/file-modification",
        "requests": f"{api}/requests",
    } | ({"access_groups": f"{api}/access/groups", "quota_increase": f"{api}/quota-increase"}
         if flavor.name == "invenio" else {})  # recorded at rogue-scholar.org, not at zenodo.org


def file_content_url(base: str, record: RecordSpec, spec: FileSpec, flavor: Flavor = ZENODO) -> str:
    return f"{base}/api/records/{flavor.public_id(record.id)}/files/{quote_key(spec.key)}/content"


def access_right(record: RecordSpec) -> str:
    return {"files-restricted": "restricted", "restricted": "restricted"}.get(record.access, record.access)


def legacy_record(dataset: Dataset, base: str, record: RecordSpec, *, with_files: bool = True) -> dict[str, Any]:
    """Zenodo's default (legacy-compatible) record JSON."""
    doi, parent_doi = ZENODO.doi(record.id), ZENODO.doi(record.conceptrecid)
    metadata: dict[str, Any] = {
        "title": record.title, "doi": doi, "publication_date": record.publication_date,
        "description": record.description, "access_right": access_right(record),
        "creators": [{"name": "Emulator, Asyncdl", "affiliation": None}],
        "keywords": list(record.keywords),
        "resource_type": {"title": "Dataset", "type": "dataset"}, "license": {"id": "cc-by-4.0"},
        "relations": {"version": [{"index": record.version_index, "is_last": record.is_latest,
                                   "parent": {"pid_type": "recid", "pid_value": str(record.conceptrecid)}}]},
        "version": f"v{record.version_index + 1}",
    }
    if record.communities:
        metadata["communities"] = [{"id": c} for c in record.communities]
    if record.embargo_date:
        metadata["embargo_date"] = record.embargo_date
    body: dict[str, Any] = {
        "created": iso(record.created), "modified": iso(record.updated), "id": record.id,
        "conceptrecid": str(record.conceptrecid), "doi": doi, "conceptdoi": parent_doi,
        "doi_url": f"https://doi.org/{doi}", "metadata": metadata, "title": record.title,
        "links": record_links(base, record), "updated": iso(record.updated), "recid": str(record.id),
        "revision": 4,
    }
    if with_files:
        files = record.files if record.files_public else []
        body["files"] = [{"id": f.file_id, "key": f.key, "size": f.size,
                          "checksum": dataset.stated_checksum(f),
                          "links": {"self": file_content_url(base, record, f)}} for f in files]
    body.update({"swh": None, "owners": [{"id": o} for o in record.owners], "status": "published",
                 "stats": {name: record.stats.get(name, 0) for name in STAT_NAMES}, "state": "done",
                 "submitted": True})
    return body


def file_entry(dataset: Dataset, base: str, record: RecordSpec, spec: FileSpec,
               flavor: Flavor = ZENODO) -> dict[str, Any]:
    """One entry of GET /api/records/{id}/files (native shape)."""
    api = f"{base}/api/records/{flavor.public_id(record.id)}/files/{quote_key(spec.key)}"
    stamp = iso(record.created)
    return {
        "key": spec.key, "created": stamp, "updated": stamp, "checksum": dataset.stated_checksum(spec),
        "size": spec.size, "mimetype": spec.mimetype, "storage_class": "L", "status": spec.status,
        "metadata": {}, "access": {"hidden": False}, "file_id": spec.file_id,
        "version_id": spec.file_id[::-1], "bucket_id": f"{record.id:032x}", "transfer": {"type": "L"},
        "links": {"self": api, "content": f"{api}/content"},
    }


def files_listing(dataset: Dataset, base: str, record: RecordSpec, flavor: Flavor = ZENODO) -> dict[str, Any]:
    """GET /api/records/{id}/files."""
    api = f"{base}/api/records/{flavor.public_id(record.id)}"
    return {"enabled": True, "links": {"self": f"{api}/files", "archive": f"{api}/files-archive"},
            "entries": [file_entry(dataset, base, record, f, flavor) for f in record.files],
            "default_preview": None, "order": []}


def native_record(dataset: Dataset, base: str, record: RecordSpec, *, with_files: bool = True,
                  flavor: Flavor = ZENODO) -> dict[str, Any]:
    """The native InvenioRDM record JSON (Accept: application/vnd.inveniordm.v1+json)."""
    files: dict[str, Any] = {"enabled": True, "order": [], "count": len(record.files),
                             "total_bytes": record.total_bytes}
    if with_files and record.files_public:
        files["entries"] = {f.key: file_entry(dataset, base, record, f, flavor) for f in record.files}
    stats = record.stats
    version_stats = {"views": stats.get("version_views", 0), "unique_views": stats.get("version_unique_views", 0),
                     "downloads": stats.get("version_downloads", 0),
                     "unique_downloads": stats.get("version_unique_downloads", 0), "data_volume": 0}
    all_stats = {"views": stats.get("views", 0), "unique_views": stats.get("unique_views", 0),
                 "downloads": stats.get("downloads", 0), "unique_downloads": stats.get("unique_downloads", 0),
                 "data_volume": 0}
    return {
        "id": flavor.public_id(record.id), "created": iso(record.created), "updated": iso(record.updated),
        "links": record_links(base, record, flavor), "revision_id": 4, "is_published": True, "status": "published",
        "pids": {"doi": {"identifier": flavor.doi(record.id), "provider": "datacite"}},
        "parent": {"id": flavor.public_id(record.conceptrecid),
                   "pids": {"doi": {"identifier": flavor.doi(record.conceptrecid), "provider": "datacite"}},
                   "access": {"owned_by": {"user": record.owners[0] if record.owners else None}},
                   "communities": {"ids": list(record.communities)}},
        "versions": {"is_latest": record.is_latest, "index": record.version_index + 1},
        "metadata": {"resource_type": {"id": "dataset", "title": {"en": "Dataset"}}, "title": record.title,
                     "publication_date": record.publication_date, "description": record.description,
                     "creators": [{"person_or_org": {"name": "Emulator, Asyncdl", "type": "personal"}}],
                     "version": f"v{record.version_index + 1}"},
        "access": {"record": "restricted" if record.access == "restricted" else "public",
                   "files": "public" if record.files_public else "restricted",
                   "embargo": {"active": record.access == "embargoed", "until": record.embargo_date}},
        "files": files, "custom_fields": {}, "is_draft": False,
        "media_files": {"enabled": False, "order": [], "count": 0, "total_bytes": 0, "entries": {}},
        "deletion_status": {"is_deleted": False, "status": "P"},
        "stats": {"this_version": version_stats, "all_versions": all_stats},
    }


def aggregations(records: list[RecordSpec]) -> dict[str, Any]:
    """Facet counts as Zenodo returns them beside hits."""
    access: dict[str, int] = {}
    file_types: dict[str, int] = {}
    for record in records:
        status = {"files-restricted": "restricted"}.get(record.access, record.access)
        access[status] = access.get(status, 0) + 1
        for extension in {f.key.rsplit(".", 1)[-1].lower() for f in record.files if "." in f.key}:
            file_types[extension] = file_types.get(extension, 0) + 1

    def buckets(counts: dict[str, int]) -> list[dict[str, Any]]:
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"key": k, "doc_count": n, "label": k.upper() if len(k) <= 4 else k.capitalize(),
                 "is_selected": False} for k, n in ordered[:10]]

    return {
        "access_status": {"buckets": buckets(access), "label": "Access status"},
        "resource_type": {"buckets": [{"key": "dataset", "doc_count": len(records), "label": "Dataset",
                                       "is_selected": False, "inner": {"buckets": []}}] if records else [],
                          "label": "Resource types"},
        "subject": {"buckets": [], "label": "Subjects"},
        "file_type": {"buckets": buckets(file_types), "label": "File type"},
    }
