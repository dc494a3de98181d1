"""Record tables: rows with stats, columns pulled out of titles, grouping, sorting, CSV/JSON/Markdown/Parquet;
:class:`RecordsTable` is the one table ``asyncdl list`` prints and the Python API returns (``.to_pandas()``)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncdl.errors import UsageError
from asyncdl.models import STAT_FIELDS, Record

Row = dict[str, Any]
BASE_COLUMNS = ("id", "title", "doi", "conceptdoi", "created", "url", "files", "bytes")
COLUMNS = (*BASE_COLUMNS, *STAT_FIELDS)
TABLE_COLUMNS = ("id", "title", "doi", "files", "bytes", "downloads", "views")  # what fits a terminal
SUMMED = ("records", "files", "bytes", *STAT_FIELDS)
FORMATS = ("table", "csv", "json", "jsonl", "markdown", "parquet")

if TYPE_CHECKING:
    import pandas


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
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".json", "json"), (".md", "markdown"),
                        (".parquet", "parquet")):
        if path.lower().endswith(suffix):
            return fmt
    return None


def need_pyarrow() -> None:
    """Parquet needs pyarrow: a UsageError saying how to get it when it is not installed."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'asyncdl[parquet]'") from None


@dataclass(frozen=True)
class RecordsTable:
    """Rows and the columns to show, in order: what ``asyncdl list`` prints, for Python and notebooks."""

    rows: tuple[Row, ...]
    columns: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.picked())

    def picked(self) -> list[Row]:
        """Each row with the shown columns only, in order."""
        return [{c: row.get(c, "") for c in self.columns} for row in self.rows]

    def render(self, fmt: str) -> str:
        """The table as CSV, JSON, JSON lines or Markdown (the text ``asyncdl list --format FMT`` writes)."""
        return render(self.rows, self.columns, fmt)

    def to_csv(self) -> str:
        return self.render("csv")

    def to_pandas(self) -> pandas.DataFrame:
        """A pandas DataFrame of the shown columns (pandas comes with ``pip install 'asyncdl[pandas]'``)."""
        try:
            import pandas
        except ImportError:
            raise UsageError("a DataFrame needs pandas: pip install 'asyncdl[pandas]'") from None
        return pandas.DataFrame(self.picked(), columns=list(self.columns))

    def to_parquet(self, path: str | Path) -> None:
        """Write the table as a Parquet file (pyarrow comes with ``pip install 'asyncdl[parquet]'``)."""
        need_pyarrow()
        import pyarrow
        import pyarrow.parquet

        columns = {c: [row.get(c, "") for row in self.rows] for c in self.columns}
        pyarrow.parquet.write_table(pyarrow.table(columns), str(path))

    def _repr_markdown_(self) -> str:
        """How a notebook shows the table."""
        return self.render("markdown")


def make_table(records: Iterable[Record], *, extract_pattern: str | None = None, group_by: str | None = None,
               sort_spec: str | None = None, columns: str | None = None, terminal: bool = False) -> RecordsTable:
    """The table of ``records``: a column per named group of ``extract_pattern`` in the titles, then one row
    per value of ``group_by`` (sums), sorted by ``sort_spec`` ("expedition,-downloads"), with ``columns``
    ("id,title" or "all"; default every column, or the readable few on a ``terminal``). Bad names or
    patterns raise UsageError."""
    rows = [record_row(r) for r in records]
    if extract_pattern:
        rows = extract(rows, compile_extract(extract_pattern))
    if group_by:
        rows = group(rows, group_by)
    if sort_spec:
        rows = sort(rows, sort_spec)
    return RecordsTable(tuple(rows), tuple(choose_columns(rows, columns, table=terminal)))
