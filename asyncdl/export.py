"""Record tables: rows with stats, columns pulled out of titles, grouping, sorting, CSV/JSON/Markdown."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from asyncdl.errors import UsageError
from asyncdl.models import STAT_FIELDS, Record

Row = dict[str, Any]
BASE_COLUMNS = ("id", "title", "doi", "conceptdoi", "created", "url", "files", "bytes")
COLUMNS = (*BASE_COLUMNS, *STAT_FIELDS)
TABLE_COLUMNS = ("id", "title", "doi", "files", "bytes", "downloads", "views")  # what fits a terminal
SUMMED = ("records", "files", "bytes", *STAT_FIELDS)
FORMATS = ("table", "csv", "json", "jsonl", "markdown")


def record_row(record: Record) -> Row:
    """One row of the table for a record."""
    row: Row = {"id": record.id, "title": record.title, "doi": record.doi or "",
                "conceptdoi": record.conceptdoi or "", "created": record.created, "url": record.html_url,
                "files": len(record.files), "bytes": record.total_bytes}
    row.update({name: getattr(record.stats, name) for name in STAT_FIELDS})
    return row


def compile_extract(pattern: str) -> re.Pattern[str]:
    """A title regex whose named groups become columns."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"invalid --extract regex {pattern!r}: {exc}") from exc
    if not compiled.groupindex:
        raise UsageError(f"--extract needs named groups, e.g. 'Expedition (?P<expedition>\\w+)': {pattern!r}")
    return compiled


def extract(rows: Iterable[Row], pattern: re.Pattern[str]) -> list[Row]:
    """Add a column per named group of ``pattern`` matched in the title ("" where it does not match)."""
    out = []
    for row in rows:
        found = pattern.search(str(row.get("title", "")))
        groups = found.groupdict() if found else {}
        out.append({**row, **{name: (groups.get(name) or "").strip() for name in pattern.groupindex}})
    return out


def group(rows: Iterable[Row], column: str) -> list[Row]:
    """One row per value of ``column``: the number of records and the sums of files, bytes and stats."""
    totals: dict[Any, Row] = {}
    for row in rows:
        if column not in row:
            raise UsageError(f"cannot group by unknown column {column!r}")
        bucket = totals.setdefault(row[column], {column: row[column], **dict.fromkeys(SUMMED, 0)})
        bucket["records"] += 1
        for name in SUMMED[1:]:
            bucket[name] += int(row.get(name) or 0)
    return list(totals.values())


def sort(rows: list[Row], spec: str) -> list[Row]:
    """Sort by comma-separated columns; ``-name`` sorts descending. Empty values go last."""
    for part in reversed([p.strip() for p in spec.split(",") if p.strip()]):
        descending = part.startswith("-")
        name = part.lstrip("-")
        if rows and name not in rows[0]:
            raise UsageError(f"cannot sort by unknown column {name!r}; columns: {', '.join(rows[0])}")
        present = [r for r in rows if r.get(name) not in (None, "")]
        missing = [r for r in rows if r.get(name) in (None, "")]
        present.sort(key=lambda r: _sort_key(r[name]), reverse=descending)
        rows = present + missing
    return rows


def _sort_key(value: Any) -> tuple[tuple[int, Any], ...]:
    """Numbers by value; text in natural order ("372A" before "374", "9" before "10")."""
    if isinstance(value, int | float):
        return ((0, value),)
    parts = re.findall(r"\d+|\D+", str(value).lower())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def choose_columns(rows: Sequence[Row], wanted: str | None, *, table: bool = False) -> list[str]:
    """The columns to show: those asked for (comma-separated; ``all``: every one), else every column of the
    rows, or on a terminal table the readable few (TABLE_COLUMNS, and any made by --extract or --group-by)."""
    available = list(rows[0]) if rows else list(COLUMNS)
    if wanted and wanted.strip() == "all":
        return available
    if not wanted:
        if table:
            return [c for c in available if c in TABLE_COLUMNS or c not in COLUMNS]
        return available
    names = [c.strip() for c in wanted.split(",") if c.strip()]
    unknown = [n for n in names if rows and n not in available]
    if unknown:
        raise UsageError(f"unknown column(s) {', '.join(unknown)}; columns: {', '.join(available)}")
    return names


def render(rows: Sequence[Row], columns: Sequence[str], fmt: str) -> str:
    """Rows as CSV, JSON, JSON lines or a Markdown table."""
    picked = [{c: row.get(c, "") for c in columns} for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(picked)
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps(picked, indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in picked)
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in columns) + " |" for r in picked]
        return "\n".join(lines) + "\n"
    raise UsageError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def format_for_path(path: str) -> str | None:
    """The format a file name implies (``.csv``, ``.json``, ``.jsonl``, ``.md``), if any."""
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".json", "json"), (".md", "markdown")):
        if path.lower().endswith(suffix):
            return fmt
    return None
