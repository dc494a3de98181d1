"""Run the benchmarks: ``python -m benchmarks [--quick] [--long] [--only S5,...] [--json FILE]``.

Each scenario runs asyncdl and its peers side by side against the same local server, prints a
table with the commands used, and (full runs) writes benchmarks/results/ and the table in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from benchmarks import (
    s1_small_files,
    s2_rate_limited,
    s3_large_file,
    s4_segments,
    s5_crawl,
    s6_resume,
    s7_memory,
    s8_soak,
    s9_shards,
    s10_versions,
    s12_adaptive,
)
from benchmarks.common import ROOT, Row, machine

SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "S1": s1_small_files.run, "S2": s2_rate_limited.run, "S3": s3_large_file.run, "S4": s4_segments.run,
    "S5": s5_crawl.run, "S6": s6_resume.run, "S7": s7_memory.run, "S9": s9_shards.run,
    "S10": s10_versions.run, "S12": s12_adaptive.run,
}
LONG: dict[str, Callable[[bool], list[Row]]] = {"S8": s8_soak.run}  # nightly: only with --long or --only
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    parser.add_argument("--long", action="store_true", help="add the long scenarios (S8, a fault soak of hours)")
    parser.add_argument("--only", help="comma-separated scenario names (default: all but the long ones)")
    parser.add_argument("--json", dest="json_path", metavar="FILE", help="also write every row to FILE as JSON")
    args = parser.parse_args(argv)
    every = {**SCENARIOS, **LONG}
    names = ([n.strip().upper() for n in args.only.split(",")] if args.only
             else list(SCENARIOS) + (list(LONG) if args.long else []))
    console = Console()
    rows: list[Row] = []
    for name in names:
        console.print(f"[bold]{name}[/bold] {every[name].__module__}")
        began = time.perf_counter()
        rows += every[name](args.quick)
        console.print(f"  done in {time.perf_counter() - began:.1f} s")
    console.print(table(rows))
    for row in rows:
        console.print(f"[dim]{row.scenario} {row.tool}:[/dim] {row.command}", highlight=False, soft_wrap=True)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as stream:
            json.dump([r.to_json() for r in rows], stream, indent=2)
    if not args.quick:
        save(rows)
    return 0


def table(rows: list[Row]) -> Table:
    view = Table("scenario", "tool", "seconds", "figures", "note", title="asyncdl benchmarks")
    for row in rows:
        figures = ", ".join(f"{k}={_short(v)}" for k, v in row.metrics.items())
        view.add_row(row.scenario, row.tool, "-" if row.seconds is None else f"{row.seconds:.2f}", figures, row.note)
    return view


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def save(rows: list[Row]) -> None:
    """Each scenario's rows as results/<scenario>.json (with machine facts and commands); then the table in
    benchmarks/README.md, rebuilt from every saved scenario so a partial run keeps the others."""
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    facts = machine()
    for scenario in sorted({r.scenario for r in rows}):
        document = {"machine": facts, "rows": [r.to_json() for r in rows if r.scenario == scenario]}
        (results / f"{scenario}.json").write_text(json.dumps(document, indent=2) + "\n")
    write_readme_table()


def write_readme_table() -> None:
    """The Markdown results table in benchmarks/README.md, from results/*.json."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END)
    lines = ["", "", "| scenario | tool | seconds | figures | note | measured |", "|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "results").glob("S*.json")):
        document = json.loads(path.read_text())
        when = f"{document['machine']['date']}, {document['machine']['cpus']} CPUs"
        for raw in document["rows"]:
            row = Row(**raw)
            figures = ", ".join(f"{k}={_short(v)}" for k, v in row.metrics.items())
            seconds = "-" if row.seconds is None else f"{row.seconds:.2f}"
            cells = [row.scenario, row.tool, seconds, figures, row.note, when]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    readme.write_text(text[: start + len(README_START)] + "\n".join(lines) + text[end:])
