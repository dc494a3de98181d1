"""A small Lucene-style query language over emulator records, and the sort options.

Supported: free text, ``field:value``, ``field:"a phrase"``, ranges ``field:[A TO B]``
(``{``/``}`` for exclusive bounds, ``*`` for open ends), ``AND``/``OR``/``NOT``/``-``,
parentheses; juxtaposed terms are ANDed. Fields, with Zenodo's legacy names rewritten
to InvenioRDM ones as Zenodo does: title, description, keywords, owners, communities,
doi, conceptdoi, recid/id, conceptrecid/parent.id, created, updated, publication_date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asyncdl.emulator.dataset import RecordSpec
from asyncdl.emulator.flavor import ZENODO, Flavor

FIELD_ALIASES = {
    "metadata.title": "title", "pids.doi.identifier": "doi", "parent.pids.doi.identifier": "conceptdoi",
    "id": "recid", "parent.id": "conceptrecid", "parent.access.owned_by.user": "owners",
    "metadata.publication_date": "publication_date", "metadata.description": "description",
    "metadata.subjects.subject": "keywords", "keywords": "keywords",
}
NATIVE_FIELDS = {**{k: v for k, v in FIELD_ALIASES.items() if "." in k or k == "id"},
                 "created": "created", "updated": "updated",
                 "doi": "doi"}  # what a stock instance reads (doi: is recorded at rogue-scholar.org)
TEXT_FIELDS = ("title", "description", "keywords")
_TOKEN = re.compile(
    r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([\[{][^\]}]*[\]}])|([\w.\-]+:(?=[\[{"]))|([^\s()"]+))'
)


class QueryError(ValueError):
    """The query string cannot be parsed."""


Predicate = Callable[[RecordSpec], bool]


@dataclass(frozen=True)
class Query:
    """A parsed query: a predicate and the free-text terms used for bestmatch scoring."""

    match: Predicate
    terms: tuple[str, ...]

    def score(self, record: RecordSpec) -> int:
        text = _text(record)
        return sum(text.count(term) for term in self.terms)


def parse_query(text: str, flavor: Flavor = ZENODO) -> Query:
    """Parse ``text`` as ``flavor``'s server reads it; an empty query matches everything."""
    tokens = _tokenize(text)
    if not tokens:
        return Query(lambda r: True, ())
    parser = _Parser(tokens, flavor)
    predicate = parser.parse_or()
    if parser.position != len(tokens):
        raise QueryError(f"unexpected {tokens[parser.position]!r}")
    return Query(predicate, tuple(parser.terms))


def _tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if not found or found.end() == position:
            raise QueryError(f"cannot read the query at {text[position:]!r}")
        tokens.append(found.group(0).strip())
        position = found.end()
    return [t for t in tokens if t]


class _Parser:
    def __init__(self, tokens: list[str], flavor: Flavor) -> None:
        self.tokens = tokens
        self.flavor = flavor
        self.position = 0
        self.terms: list[str] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends too early")
        self.position += 1
        return token

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while (token := self.peek()) is not None and token not in ("OR", ")"):
            if token == "AND":
                self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def parse_not(self) -> Predicate:
        token = self.peek()
        if token == "NOT" or (token is not None and token.startswith("-") and len(token) > 1):
            if token == "NOT":
                self.take()
            else:
                self.tokens[self.position] = token[1:]
            inner = self.parse_not()
            return lambda r: not inner(r)
        return self.parse_primary()

    def parse_primary(self) -> Predicate:
        token = self.take()
        if token == "(":
            inner = self.parse_or()
            if self.take() != ")":
                raise QueryError("missing ')'")
            return inner
        if token == ")":
            raise QueryError("unbalanced ')'")
        name, sep, value = token.partition(":")
        if sep and name and not name.startswith('"') and re.fullmatch(r"[\w.\-]+", name):
            if not value:  # field:"phrase" or field:[range] come as the next token
                value = self.take()
            return _field_predicate(self._field(name), value, self.flavor)
        return self._free_text(token)

    def _field(self, name: str) -> str:
        """The field a name stands for; on a stock instance, Zenodo's legacy names stand for none."""
        if self.flavor.legacy_query_fields:
            return FIELD_ALIASES.get(name, name)
        return NATIVE_FIELDS.get(name, "")

    def _free_text(self, token: str) -> Predicate:
        phrase = _unquote(token).lower()
        if phrase == "*":
            return lambda r: True
        self.terms.append(phrase)
        return lambda r: phrase in _text(r)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value.replace("\\", "")


def _text(record: RecordSpec) -> str:
    return " ".join((record.title, record.description, " ".join(record.keywords))).lower()


def _field_predicate(name: str, raw: str, flavor: Flavor) -> Predicate:
    if raw[:1] in "[{":
        return _range_predicate(name, raw)
    value = _unquote(raw)
    lowered = value.lower()
    if name in TEXT_FIELDS:
        def text_of(r: RecordSpec) -> str:
            return {"title": r.title, "description": r.description, "keywords": " ".join(r.keywords)}[name]
        if "*" in lowered:
            pattern = re.compile(re.escape(lowered).replace(r"\*", r"\S*"))
            return lambda r: bool(pattern.search(text_of(r).lower()))
        return lambda r: lowered in text_of(r).lower()
    if name == "owners":
        return lambda r: value in r.owners
    if name == "communities":
        return lambda r: value in r.communities
    if name == "recid":
        return lambda r: flavor.public_id(r.id) == value
    if name == "conceptrecid":
        return lambda r: flavor.public_id(r.conceptrecid) == value
    if name == "doi":
        return lambda r: flavor.doi(r.id) == lowered
    if name == "conceptdoi":
        return lambda r: flavor.doi(r.conceptrecid) == lowered
    if name in ("created", "updated", "publication_date"):
        return _range_predicate(name, f"[{raw} TO {raw}]")
    return lambda r: False  # unknown fields match nothing, as in Elasticsearch


def _range_predicate(name: str, raw: str) -> Predicate:
    inner = raw[1:-1]
    parts = re.split(r"\s+TO\s+", inner.strip())
    if len(parts) != 2:
        raise QueryError(f"bad range {raw!r}")
    low = _bound(_unquote(parts[0]), upper=False, inclusive=raw[0] == "[")
    high = _bound(_unquote(parts[1]), upper=True, inclusive=raw[-1] == "]")

    def value_of(r: RecordSpec) -> datetime:
        if name == "created":
            return r.created
        if name == "updated":
            return r.updated
        if name == "publication_date":
            return _parse_when(r.publication_date)
        raise QueryError(f"field {name!r} does not take a range")

    def predicate(r: RecordSpec) -> bool:
        when = value_of(r)
        return (low is None or when >= low) and (high is None or when < high)

    return predicate


def _bound(text: str, *, upper: bool, inclusive: bool) -> datetime | None:
    """A half-open bound: lower bounds are >=, upper bounds are <."""
    if text == "*":
        return None
    when = _parse_when(text)
    date_only = len(text) <= 10
    step = timedelta(days=1) if date_only else timedelta(seconds=1 if "." not in text else 0)
    if upper and inclusive:
        return when + (step or timedelta(microseconds=1))
    if not upper and not inclusive:
        return when + (step or timedelta(microseconds=1))
    return when


def _parse_when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"not a date: {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


SORTS: dict[str, tuple[Callable[[RecordSpec], object], bool]] = {
    "newest": (lambda r: r.created, True),
    "mostrecent": (lambda r: r.created, True),
    "oldest": (lambda r: r.created, False),
    "-mostrecent": (lambda r: r.created, False),
    "mostdownloaded": (lambda r: r.stats.get("downloads", 0), True),
    "mostviewed": (lambda r: r.stats.get("views", 0), True),
    "version": (lambda r: r.version_index, True),
    "publication-desc": (lambda r: r.publication_date, True),
    "publication-asc": (lambda r: r.publication_date, False),
    "updated-desc": (lambda r: r.updated, True),
    "updated-asc": (lambda r: r.updated, False),
}
SORT_OPTIONS = ("bestmatch", *SORTS)


def sort_records(records: list[RecordSpec], sort: str, query: Query) -> list[RecordSpec]:
    """Order hits; ties broken by id so pages never shift between requests."""
    if sort == "bestmatch":
        return sorted(records, key=lambda r: (-query.score(r), -r.created.timestamp(), -r.id))
    key, descending = SORTS[sort]
    ordered = sorted(records, key=lambda r: r.id, reverse=descending)
    return sorted(ordered, key=key, reverse=descending)  # type: ignore[arg-type]
