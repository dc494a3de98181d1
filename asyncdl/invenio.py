"""Pure helpers for the Zenodo / InvenioRDM REST API: parse its JSON, build its URLs and queries.

Nothing here does I/O. Three record shapes are read:

* legacy (Zenodo's default serializer): ``files`` is a list of ``{key, size, checksum: "md5:..."}``;
* native InvenioRDM (``application/vnd.inveniordm.v1+json``): ``files`` is ``{enabled, count, entries}``;
* the short-lived post-migration variant (Oct 2023): ``{filename, filesize, checksum: <bare md5>}``.

File URLs are always built here from the record id and the quoted key, never taken from the
response: Zenodo did not quote keys in its links before 2026-03.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit

from asyncdl.errors import BadResponseError, UsageError
from asyncdl.models import Checksum, FileEntry, Record, RecordStats
from asyncdl.redact import redact

RESULT_WINDOW = 10_000
"""Deepest hit a search can reach: ``page * size`` must stay within it."""

# --------------------------------------------------------------------------- URLs


def api_base(base_url: str) -> str:
    """``https://zenodo.org/`` -> ``https://zenodo.org/api``."""
    return f"{base_url.rstrip('/')}/api"


def base_of(api_url: str) -> str:
    """``https://zenodo.org/api/records/1`` -> ``https://zenodo.org`` ("" when it is no API URL)."""
    return api_url.split("/api/", 1)[0] if "/api/" in api_url else ""


def quote_key(key: str) -> str:
    """Percent-encode a file key for a URL path, keeping ``/`` (keys may name sub-folders).

    ``.`` and ``..`` segments are encoded too (``%2E``), so no URL library folds them away and the
    server receives the key as it is.
    """
    segments = quote(key, safe="/").split("/")
    return "/".join(s.replace(".", "%2E") if s in (".", "..") else s for s in segments)


def _quote_id(record_id: str) -> str:
    return quote(str(record_id), safe="")


def record_url(base_url: str, record_id: str) -> str:
    """API URL of a record: ``{base}/api/records/{id}``."""
    return f"{api_base(base_url)}/records/{_quote_id(record_id)}"


def html_url(base_url: str, record_id: str) -> str:
    """Landing page of a record: ``{base}/records/{id}``."""
    return f"{base_url.rstrip('/')}/records/{_quote_id(record_id)}"


def files_url(base_url: str, record_id: str) -> str:
    """API URL of a record's file listing: ``{base}/api/records/{id}/files``."""
    return f"{record_url(base_url, record_id)}/files"


def content_url(*, base_url: str, record_id: str, key: str) -> str:
    """API URL of a file's bytes: ``{base}/api/records/{id}/files/{quoted key}/content``."""
    return f"{files_url(base_url, record_id)}/{quote_key(key)}/content"


def download_url(*, base_url: str, record_id: str, key: str) -> str:
    """UI download URL of a file (where Range requests are reported to work)."""
    return f"{html_url(base_url, record_id)}/files/{quote_key(key)}?download=1"


# --------------------------------------------------------------------------- JSON helpers


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dig(data: Mapping[str, Any], *path: str) -> object:
    value: object = data
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _text(value: object) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _ident(value: object) -> str | None:
    """An identifier given as an int or a non-empty string, as a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _as_list(value: object) -> list[Any]:
    """A list as is, a single object as a one-item list, anything else as empty."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, Mapping) else []


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# --------------------------------------------------------------------------- files


def _bad_file(record_id: str, key: str | None, problem: str, *, base_url: str) -> BadResponseError:
    where = f"record {record_id}" if key is None else f"record {record_id}, file {key!r}"
    return BadResponseError(f"{where}: {problem}", url=record_url(base_url, record_id))


def _file_key(entry: Mapping[str, Any], fallback: str | None) -> str | None:
    for candidate in (entry.get("key"), entry.get("filename"), fallback):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _file_size(entry: Mapping[str, Any], *, record_id: str, key: str, base_url: str) -> int | None:
    raw = entry["size"] if "size" in entry else entry.get("filesize")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _bad_file(record_id, key, f"size is not an integer: {raw!r}", base_url=base_url)
    if raw < 0:
        raise _bad_file(record_id, key, f"size is negative: {raw}", base_url=base_url)
    return raw


def _file_checksum(entry: Mapping[str, Any], *, record_id: str, key: str, base_url: str) -> Checksum | None:
    raw = entry.get("checksum")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _bad_file(record_id, key, f"checksum is not a string: {raw!r}", base_url=base_url)
    try:
        return Checksum.parse(raw)
    except ValueError as exc:
        raise _bad_file(record_id, key, str(exc), base_url=base_url) from exc


def _parse_file(entry: object, *, fallback_key: str | None, record_id: str, base_url: str) -> FileEntry:
    if not isinstance(entry, Mapping):
        raise _bad_file(record_id, fallback_key, f"file entry is not an object: {entry!r}", base_url=base_url)
    key = _file_key(entry, fallback_key)
    if key is None:
        raise _bad_file(record_id, None, "file entry has no key or filename", base_url=base_url)
    return FileEntry(
        key=key,
        size=_file_size(entry, record_id=record_id, key=key, base_url=base_url),
        checksum=_file_checksum(entry, record_id=record_id, key=key, base_url=base_url),
        url=content_url(base_url=base_url, record_id=record_id, key=key),
        file_id=_ident(entry.get("id")) or _ident(entry.get("file_id")),
        mimetype=_text(entry.get("mimetype")),
        status=_text(entry.get("status")),
    )


def _parse_entries(entries: object, *, record_id: str, base_url: str) -> tuple[FileEntry, ...]:
    """Read file entries given as a list or as a key -> entry object."""
    if isinstance(entries, Mapping):
        pairs: list[tuple[str | None, object]] = list(entries.items())
    elif isinstance(entries, list):
        pairs = [(None, entry) for entry in entries]
    else:
        raise _bad_file(record_id, None, "file entries are neither a list nor an object", base_url=base_url)
    return tuple(
        _parse_file(entry, fallback_key=key, record_id=record_id, base_url=base_url) for key, entry in pairs
    )


def _native_files(
    files: Mapping[str, Any], *, record_id: str, base_url: str
) -> tuple[tuple[FileEntry, ...], bool]:
    if files.get("enabled") is False:
        return (), True
    entries = files.get("entries")
    if entries is None:
        return (), False
    parsed = _parse_entries(entries, record_id=record_id, base_url=base_url)
    count = files.get("count")
    complete = not (isinstance(count, int) and count > len(parsed))
    return parsed, complete


def _record_files(
    data: Mapping[str, Any], *, record_id: str, base_url: str, access_right: str | None
) -> tuple[tuple[FileEntry, ...], bool]:
    """The files of a record and whether that list can be trusted to be complete."""
    raw = data.get("files")
    if raw is None:
        return (), False
    if isinstance(raw, Mapping):
        return _native_files(raw, record_id=record_id, base_url=base_url)
    if isinstance(raw, list):
        parsed = _parse_entries(raw, record_id=record_id, base_url=base_url)
        return parsed, bool(parsed) or access_right == "open"
    raise _bad_file(record_id, None, "'files' is neither a list nor an object", base_url=base_url)


def _files_count(files: object) -> int | None:
    """The ``count`` a native files object states, if any."""
    count = files.get("count") if isinstance(files, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def parse_files_listing(data: object, *, base_url: str, record_id: str) -> tuple[FileEntry, ...]:
    """Read the body of ``GET /api/records/{id}/files``; disabled or absent entries give ()."""
    if not isinstance(data, Mapping):
        raise _bad_file(record_id, None, "file listing is not a JSON object", base_url=base_url)
    if data.get("enabled") is False or data.get("entries") is None:
        return ()
    return _parse_entries(data["entries"], record_id=record_id, base_url=base_url)


# --------------------------------------------------------------------------- records


def _record_id(data: Mapping[str, Any]) -> str:
    record_id = _ident(data.get("id")) or _ident(data.get("recid"))
    if record_id is None:
        raise BadResponseError(f"record has no id (keys: {sorted(data)[:12]})")
    return record_id


def _title(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    return _text(metadata.get("title")) or _text(data.get("title")) or ""


def _doi(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
    legacy = _text(data.get("doi")) or _text(metadata.get("doi"))
    return legacy or _text(_dig(data, "pids", "doi", "identifier"))


def _access_right(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> str | None:
    """Legacy ``metadata.access_right``, else the native ``access.status`` (or derived from access)."""
    legacy = _text(metadata.get("access_right"))
    if legacy:
        return legacy
    access = _mapping(data.get("access"))
    status = _text(access.get("status"))
    if status:
        return status
    if _dig(access, "embargo", "active") is True:
        return "embargoed"
    if "record" not in access and "files" not in access:
        return None
    return "open" if access.get("record") == "public" and access.get("files") == "public" else "restricted"


def _stats(raw: object) -> RecordStats:
    """Legacy flat stats, or native ``{all_versions: {...}, this_version: {...}}``."""
    stats = _mapping(raw)
    if "all_versions" not in stats and "this_version" not in stats:
        return RecordStats.from_json(stats)
    flat: dict[str, Any] = dict(_mapping(stats.get("all_versions")))
    for name, value in _mapping(stats.get("this_version")).items():
        flat[f"version_{name}"] = value
    return RecordStats.from_json(flat)


def _owners(data: Mapping[str, Any], parent: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str | None] = []
    for owner in _as_list(data.get("owners")):
        found.append(_ident(owner.get("id")) if isinstance(owner, Mapping) else _ident(owner))
    for owner in _as_list(_dig(parent, "access", "owned_by")):
        if isinstance(owner, Mapping):
            found.append(_ident(owner.get("user")))
    return _unique(found)


def _communities(metadata: Mapping[str, Any], parent: Mapping[str, Any]) -> tuple[str, ...]:
    """Legacy ``metadata.communities[].id``; native slugs of ``parent.communities.entries``, else ids."""
    found: list[str | None] = []
    legacy = metadata.get("communities")
    for item in legacy if isinstance(legacy, list) else []:
        found.append(_ident(item.get("id")) if isinstance(item, Mapping) else _ident(item))
    native = _mapping(parent.get("communities"))
    entries = native.get("entries")
    if isinstance(entries, list) and entries:
        found.extend(_ident(entry.get("slug")) for entry in entries if isinstance(entry, Mapping))
    else:
        ids = native.get("ids")
        found.extend(_ident(i) for i in (ids if isinstance(ids, list) else []))
    return _unique(found)


def parse_record(data: Mapping[str, Any], *, base_url: str) -> Record:
    """Read one record (a search hit or ``GET /api/records/{id}``) in any of the three shapes."""
    if not isinstance(data, Mapping):
        raise BadResponseError(f"record is not a JSON object but {type(data).__name__}")
    record_id = _record_id(data)
    metadata = _mapping(data.get("metadata"))
    parent = _mapping(data.get("parent"))
    access_right = _access_right(data, metadata)
    files, listed = _record_files(data, record_id=record_id, base_url=base_url, access_right=access_right)
    return Record(
        id=record_id,
        title=_title(data, metadata),
        conceptrecid=_ident(data.get("conceptrecid")) or _ident(parent.get("id")),
        doi=_doi(data, metadata),
        conceptdoi=_text(data.get("conceptdoi")) or _text(_dig(parent, "pids", "doi", "identifier")),
        created=_text(data.get("created")) or "",
        updated=_text(data.get("updated")) or _text(data.get("modified")) or "",
        publication_date=_text(metadata.get("publication_date")),
        version=_text(metadata.get("version")),
        access_right=access_right,
        html_url=html_url(base_url, record_id),
        api_url=record_url(base_url, record_id),
        files=files,
        files_listed=listed,
        files_stated=_files_count(data.get("files")),
        stats=_stats(data.get("stats")),
        owners=_owners(data, parent),
        communities=_communities(metadata, parent),
        metadata=data,
    )


# --------------------------------------------------------------------------- search pages


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results."""

    records: tuple[Record, ...]
    total: int | None
    next_url: str | None


def _total(raw: object) -> int | None:
    """``hits.total`` as an int; the Elasticsearch ``{"value": n}`` form is tolerated."""
    if isinstance(raw, Mapping):
        raw = raw.get("value")
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    return None


STOCK_PAGE_SIZE = 100
"""Records per page asked of a stock InvenioRDM instance, which caps pages only by the 10,000-hit window."""


def is_stock_search(data: object) -> bool:
    """Whether a search answer comes from a stock InvenioRDM instance rather than Zenodo: stock answers carry
    ``sortBy`` (the sort applied); Zenodo's default serializer leaves it out (recorded in both)."""
    return isinstance(data, Mapping) and "sortBy" in data


def parse_search_page(data: object, *, base_url: str) -> SearchPage:
    """Read the body of a search (``/api/records`` or a community's records)."""
    if not isinstance(data, Mapping):
        raise BadResponseError(f"search response is not a JSON object but {type(data).__name__}")
    hits = _mapping(data.get("hits"))
    items = hits.get("hits")
    if not isinstance(items, list):
        raise BadResponseError("search response has no hits.hits list")
    return SearchPage(
        records=tuple(parse_record(item, base_url=base_url) for item in items),
        total=_total(hits.get("total")),
        next_url=_text(_dig(data, "links", "next")),
    )


# --------------------------------------------------------------------------- identifiers


@dataclass(frozen=True, slots=True)
class Identifier:
    """A record named by the user: a record id, or a DOI that is not a Zenodo one. ``base_url``: the instance
    a URL named (its scheme and host), None for a bare id or DOI (the configured instance, the resolver)."""

    kind: Literal["recid", "doi"]
    value: str
    base_url: str | None = None


ACCEPTED_IDENTIFIERS = (
    "accepted forms: a record id (123, abcde-12345) or one file of it (123/data.csv); a record URL on any "
    "InvenioRDM instance (https://zenodo.org/records/123, https://zenodo.org/records/123/files/x?download=1, "
    "/record/123, /api/records/123, https://zenodo.org/doi/10.5281/zenodo.123); a DOI (10.5281/zenodo.123, "
    "doi:10.1234/abc, https://doi.org/10.1234/abc)"
)

_RECID = re.compile(r"\d+|[0-9a-z]{5}-[0-9a-z]{5}")
_DOI = re.compile(r"(10\.\d{4,9}(?:\.\d+)*)/(\S+)", re.IGNORECASE)
# 10.5072 is the test prefix that sandbox.zenodo.org mints with.
_ZENODO_DOI = re.compile(r"10\.(?:5281|5072)/zenodo\.(\d+)", re.IGNORECASE)
_RECORD_PATH = re.compile(r"/(?:api/)?records?/([^/]+)(?:/.*)?")
_DOI_HOSTS = frozenset({"doi.org", "dx.doi.org", "www.doi.org"})
_BARE_HOST = re.compile(r"[\w.-]+(?::\d+)?/")
_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def _doi_identifier(text: str, base_url: str | None = None) -> Identifier | None:
    doi = _DOI.fullmatch(text)
    if doi is None:
        return None
    zenodo = _ZENODO_DOI.fullmatch(text)
    if zenodo is not None:
        return Identifier("recid", zenodo[1], base_url)
    return Identifier("doi", f"{doi[1].lower()}/{doi[2]}", base_url)


def _bare_identifier(text: str) -> Identifier | None:
    if _RECID.fullmatch(text):
        return Identifier("recid", text)
    if (record_key := _RECORD_KEY.fullmatch(text)) is not None:
        return Identifier("recid", record_key[1])
    if text[:4].lower() == "doi:":
        return _doi_identifier(text[4:].strip())
    return _doi_identifier(text)


def _url_identifier(text: str) -> Identifier | None:
    if not text.startswith("/") and "://" not in text:
        if not _BARE_HOST.match(text):
            return None
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("", "http", "https"):
        return None
    if (parts.hostname or "") in _DOI_HOSTS:
        return _doi_identifier(unquote(parts.path).lstrip("/"))
    base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
    if parts.path.startswith("/doi/"):
        return _doi_identifier(unquote(parts.path[len("/doi/") :]), base)
    record = _RECORD_PATH.fullmatch(parts.path)
    if record is not None and _RECID.fullmatch(record[1]):
        return Identifier("recid", record[1], base)
    return None


_FILE_PATH = re.compile(r"/(?:api/)?records?/([^/]+)/files/(.+?)(?:/content)?")
_RECORD_KEY = re.compile(r"(\d+|[0-9a-z]{5}-[0-9a-z]{5})/(.+)")  # RECORD/KEY: that file of the record


def named_file(text: str) -> tuple[str, str] | None:
    """(record id, file key) of a file URL (``/records/ID/files/KEY``, ``/api/records/ID/files/KEY/content``),
    or ``RECORD/KEY``, which names that file alone; None for anything else."""
    if (record_key := _RECORD_KEY.fullmatch(text.strip())) is not None:
        return record_key[1], record_key[2]
    parts = urlsplit(text.strip())
    found = _FILE_PATH.fullmatch(parts.path) if "://" in text or text.startswith("/") else None
    if found is None or not _RECID.fullmatch(found[1]):
        return None
    return found[1], unquote(found[2])


def parse_identifier(text: str) -> Identifier:
    """Read a record id, record URL or DOI; a Zenodo DOI becomes its record id; a URL keeps its instance."""
    cleaned = text.strip()
    found = (_bare_identifier(cleaned) or _url_identifier(cleaned)) if cleaned else None
    if found is None:
        raise UsageError(f"not a record id, record URL or DOI: {redact(text)!r}; {ACCEPTED_IDENTIFIERS}")
    return found


def record_at(url: str) -> Identifier | None:
    """The record an absolute URL is the page (or API document) of, on the URL's own instance, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    record = _RECORD_PATH.fullmatch(parts.path)
    if record is None or not _RECID.fullmatch(record[1]):
        return None
    return Identifier("recid", record[1], f"{parts.scheme}://{parts.netloc}")


def linkset_record(link_header: str, *, page_url: str) -> Identifier | None:
    """The record a Signposting ``Link: <.../api/records/ID>; rel="linkset"`` header names (InvenioRDM
    landing pages and downloads carry one), else None."""
    for target, params in _LINK.findall(link_header):
        rels = re.search(r'rel\s*=\s*"?([^";]+)"?', params)
        if rels and "linkset" in rels[1].split():
            found = record_at(urljoin(page_url, target))
            if found is not None:
                return found
    return None


def doi_url(resolver: str, doi: str) -> str:
    """Where a resolver (``https://doi.org``, or an instance's ``{base}/doi``) answers for a DOI."""
    return f"{resolver.rstrip('/')}/{quote(doi, safe='/')}"


# --------------------------------------------------------------------------- selections and search


@dataclass(frozen=True, slots=True)
class Selection:
    """What the user asked to download."""

    identifiers: tuple[str, ...] = ()
    community: str | None = None
    owner: str | None = None
    query: str | None = None
    all_versions: bool = False
    title_regex: str | None = None

    def __post_init__(self) -> None:
        if self.title_regex is not None:
            try:
                re.compile(self.title_regex)
            except re.error as exc:
                raise UsageError(f"invalid title regex {self.title_regex!r}: {exc}") from exc


def combine_query(base_query: str, clause: str) -> str:
    """``(base) AND clause``, or just the clause when there is no base query."""
    base = base_query.strip()
    return f"({base}) AND {clause}" if base else clause


OWNER_FIELD = "parent.access.owned_by.user"
# Field names that Zenodo rewrites to native ones and a stock instance does not know, with what to use there.
ZENODO_ONLY_FIELDS = {"owners": f"{OWNER_FIELD}: or --owner", "communities": "--community",
                      "recid": "id:", "conceptrecid": "parent.id:", "conceptdoi": "parent.pids.doi.identifier:"}
_FIELD_NAME = re.compile(r"(?<![\w.])([A-Za-z_]+):")


def zenodo_only_fields(query: str) -> list[str]:
    """The Zenodo-only field names ``query`` uses, in order of first use."""
    found = [name for name in _FIELD_NAME.findall(query) if name in ZENODO_ONLY_FIELDS]
    return list(dict.fromkeys(found))
"""The native field of a record's owner: every InvenioRDM instance reads it (Zenodo rewrites its legacy
``owners:`` to it; stock instances know no ``owners:`` and would match nothing)."""


def selection_query(selection: Selection) -> str:
    """The ``q`` for ``/api/records``: the user's query, restricted to the owner if one is given."""
    query = (selection.query or "").strip()
    owner = (selection.owner or "").strip()
    return combine_query(query, f"{OWNER_FIELD}:{owner}") if owner else query


def search_params(*, query: str, page: int, size: int, sort: str, all_versions: bool) -> dict[str, str]:
    """Query arguments of a search request; ``q`` is left out when empty."""
    if page < 1 or size < 1:
        raise ValueError(f"page and size must be positive, got page={page} size={size}")
    params: dict[str, str] = {}
    if query.strip():
        params["q"] = query.strip()
    if sort:
        params["sort"] = sort
    params["page"] = str(page)
    params["size"] = str(size)
    if all_versions:
        params["allversions"] = "true"
    return params


def search_url(*, base_url: str, community: str | None = None) -> str:
    """``{base}/api/records`` or ``{base}/api/communities/{slug}/records`` (no trailing slash)."""
    if community:
        return f"{api_base(base_url)}/communities/{quote(community, safe='')}/records"
    return f"{api_base(base_url)}/records"


# --------------------------------------------------------------------------- result window


def last_reachable_page(*, total: int, size: int, window: int = RESULT_WINDOW) -> int:
    """The last page worth asking for: within the window and not past the last hit (at least 1)."""
    if size < 1 or total < 0:
        raise ValueError(f"need size >= 1 and total >= 0, got size={size} total={total}")
    last_with_hits = -(-total // size)
    return max(1, min(window // size, last_with_hits))


def fits_window(total: int, window: int = RESULT_WINDOW, *, size: int = 1) -> bool:
    """Whether all ``total`` hits can be paged through with pages of ``size``."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return total <= (window // size) * size


# --------------------------------------------------------------------------- date slicing


def parse_datetime(text: str) -> datetime:
    """Read an ISO date or datetime as Zenodo writes it; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO date or datetime: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TimeSlice:
    """A half-open ``[start, end)`` range of ``created`` times, whole seconds, stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            moment: datetime = getattr(self, name)
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ValueError(f"TimeSlice.{name} must be timezone-aware: {moment!r}")
            if moment.microsecond:
                raise ValueError(f"TimeSlice.{name} must be a whole second: {moment.isoformat()}")
            object.__setattr__(self, name, moment.astimezone(UTC))
        if self.start >= self.end:
            raise ValueError(f"empty time slice: {self.start.isoformat()} >= {self.end.isoformat()}")

    @property
    def duration(self) -> timedelta:
        """Length of the slice."""
        return self.end - self.start


def _is_midnight(moment: datetime) -> bool:
    return moment.time() == time()


def _clause_bound(moment: datetime, *, date_only: bool) -> str:
    if date_only:
        return moment.date().isoformat()
    return f'"{moment.replace(tzinfo=None).isoformat(timespec="seconds")}"'


def created_clause(piece: TimeSlice) -> str:
    """Query clause for a slice: ``created:[2020-01-01 TO 2020-02-01}`` or quoted datetimes."""
    date_only = _is_midnight(piece.start) and _is_midnight(piece.end)
    start = _clause_bound(piece.start, date_only=date_only)
    end = _clause_bound(piece.end, date_only=date_only)
    return f"created:[{start} TO {end}}}"


def split_slice(piece: TimeSlice) -> tuple[TimeSlice, TimeSlice]:
    """Halve a slice at its midpoint, floored to a day when it spans over 2 days, else to a second."""
    span = piece.duration
    if span <= timedelta(seconds=1):
        raise ValueError(f"cannot split a one-second slice starting {piece.start.isoformat()}")
    middle = piece.start + span / 2
    if span > timedelta(days=2):
        middle = datetime.combine(middle.date(), time(), tzinfo=UTC)
    else:
        middle = middle.replace(microsecond=0)
    return TimeSlice(piece.start, middle), TimeSlice(middle, piece.end)


def request_kind(path: str) -> str:
    """What a request's path asks for, for the metrics: "search" (a page of records), "archive" (a
    record's files-archive), "file" (a file's bytes), "record" (one record), else "other"."""
    path = path.rstrip("/")
    if path.endswith("/files-archive"):
        return "archive"
    if "/files/" in path:
        return "file"
    if path.endswith("/records") or path.endswith("/api/records"):
        return "search"
    if _RECORD_PATH.fullmatch(path):
        return "record"
    return "other"
