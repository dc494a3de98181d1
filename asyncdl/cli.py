"""The command line: argument parsing, output and exit codes; the work is done elsewhere.

Exit codes: 0 all done, 1 some work failed, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from asyncdl import bag, export, invenio, settings
from asyncdl._version import __version__
from asyncdl.accounting import Accounting, RunSummary
from asyncdl.config import DEFAULT_BASE_URL, Config
from asyncdl.crawl import crawl_records
from asyncdl.errors import (
    EXIT_EMPTY,
    EXIT_FAILED,
    EXIT_INACCESSIBLE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    AsyncdlError,
    ConfigError,
    LocalError,
    ShortCrawlError,
    UsageError,
    describe_faults,
    unwrap,
)
from asyncdl.events import Display, Event, Fanout, Notice, NullSink, PageFetched, ProgressSink
from asyncdl.invenio import Selection
from asyncdl.logfile import LogFile
from asyncdl.metrics import MetricsExport, RunMetrics
from asyncdl.models import Record
from asyncdl.pipeline import Run
from asyncdl.plan import PlannedFile, check_template
from asyncdl.progress import describe_archives, make_sink, summary_record, summary_table
from asyncdl.shard import Shard, resolve
from asyncdl.status import Status, read_status, verify
from asyncdl.store.journal import JournalView
from asyncdl.store.names import MANIFEST, PART_SUFFIX, STATE_DIR, journal_path
from asyncdl.transfer.prior import holds
from asyncdl.units import format_size, plural
from asyncdl.watch import watch

T = TypeVar("T")
stderr = Console(stderr=True, soft_wrap=True)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; turn asyncdl errors into a one-line message and an exit code."""
    try:
        return anyio.run(work)
    except AsyncdlError as exc:
        fail(exc)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)


def fail(error: AsyncdlError) -> NoReturn:
    """Report an error in one line and exit: 2 for usage, 3 for a local problem (disk full, journal
    unusable, destination locked: nothing lost, fix it and run again), 1 otherwise."""
    stderr.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
    sys.exit(error.exit_code)


def selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that takes a selection (the settings' flags come from
    :mod:`asyncdl.settings`)."""
    decorators = [
        click.argument("identifiers", nargs=-1, metavar="[RECORD]..."),
        click.option("--community", metavar="SLUG", help="Every record of a community (its records endpoint)."),
        click.option("--owner", metavar="ID", help="Every public record of a user id (e.g. 88403)."),
        click.option("--query", "query", metavar="Q",
                     help='A search query, passed on as is (e.g. \'title:"Alkalinity"\').'),
        click.option("-i", "--input", "input_file", type=click.File("r", encoding="utf-8"), metavar="FILE",
                     help="Read RECORD ids, URLs or DOIs from FILE, one a line ('-': standard input; blank lines "
                          "and lines starting with # are skipped)."),
        click.option("--all-versions", is_flag=True, help="Every version, not only the latest."),
        click.option("--title-regex", metavar="RE", help="Keep only records whose title matches RE."),
        click.option("--token", envvar="ZENODO_TOKEN", show_envvar=True,
                     help="Personal access token (sent as a Bearer header; never logged). Raises the page "
                          "size from 25 to 100."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Settings from this TOML file (see config.example.toml); flags and ASYNCDL_* "
                          "variables override it, it overrides the user config file."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def build_selection(options: dict[str, Any]) -> Selection:
    identifiers = tuple(options["identifiers"]) + identifiers_from(options.get("input_file"))
    selection = Selection(identifiers=identifiers, community=options["community"],
                          owner=options["owner"], query=options["query"], all_versions=options["all_versions"],
                          title_regex=options["title_regex"])
    if not (selection.identifiers or selection.community or selection.owner or selection.query):
        dest = options.get("dest")
        if dest is not None and _names_a_record(str(dest)):
            raise click.UsageError(f"DEST is missing: {dest} was taken as the destination; name the records, then "
                                   f"where they go, e.g. asyncdl mirror {dest} ./mirror")
        raise click.UsageError("name what to select: RECORD ids/URLs/DOIs, --community, --owner or --query")
    return selection


def identifiers_from(source: IO[str] | None) -> tuple[str, ...]:
    """The identifiers of an ``-i`` file: one a line, blank lines and ``#`` comments skipped, each checked
    (a line that names no record is a usage error with its line number, before anything is sent)."""
    if source is None:
        return ()
    found = []
    for number, line in enumerate(source, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            invenio.parse_identifier(text)
        except UsageError as exc:
            raise click.UsageError(f"{source.name}, line {number}: {exc}") from None
        found.append(text)
    if not found:
        raise click.UsageError(f"{source.name} names no record (one id, URL or DOI a line)")
    return tuple(found)


def _names_a_record(text: str) -> bool:
    """Whether ``text`` reads as a record id, record URL or DOI (and is no existing folder)."""
    if Path(text).is_dir():
        return False
    try:
        invenio.parse_identifier(text)
    except UsageError:
        return False
    return True


def check_output_options(options: dict[str, Any]) -> None:
    """-q with -v, and an -o whose extension names no format, are refused before anything is sent."""
    if options.get("quiet") and options.get("verbose"):
        raise click.UsageError("-q (only errors and the final line) and -v (every file) contradict each other: "
                               "choose one")
    output = options.get("output")
    if output is not None and not options.get("fmt") and Path(str(output)).suffix \
            and export.format_for_path(str(output)) is None:
        raise click.UsageError(f"cannot tell a format from the extension of {output}: name it .csv, .json, "
                               ".jsonl, .md or .parquet, or give --format")


def layered_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Every setting as the layers give it: files and ASYNCDL_* variables, then the flags given; the token
    from --token (or ZENODO_TOKEN), else from the token_env or token_file a config names."""
    try:
        layers = settings.layered(options.get("config_file"), os.environ)
        layers.update(settings.given_flags(options))
        layers["token"] = options.get("token") or settings.resolve_token(
            {"token_env": settings.value(layers, "token_env"), **layers}, os.environ)
        layers["host_token_values"] = settings.resolve_host_tokens(layers, os.environ)
    except ConfigError as exc:
        fail(exc)
    return layers


def config_of(layers: dict[str, Any]) -> Config:
    return settings.config_from(layers, token=layers["token"] or None)


class StatusSink:
    """Shows the crawl's progress on a terminal (stderr), and notices everywhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("crawling...") if console.is_terminal else None

    def emit(self, event: Event) -> None:
        if isinstance(event, PageFetched) and self.status is not None:
            self.status.update(f"crawling: {event.pages_done}/{max(event.pages_planned, event.pages_done)} pages, "
                               f"{event.total_hits if event.total_hits is not None else '?'} hits")
        elif isinstance(event, Notice) and event.level != "info":
            self.console.print(f"[yellow]{event.level}:[/yellow] {escape(event.message)}", highlight=False)


class AsyncdlGroup(click.Group):
    """The command group: an asyncdl error or a refused file operation that escapes a command is one line
    and its exit code (2 usage, 3 local), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AsyncdlError as exc:
            fail(exc)
        except BrokenPipeError:  # the reader went away (| head): end quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except OSError as exc:  # e.g. a destination that cannot be made or written
            where = f" {exc.filename}" if exc.filename else ""
            fail(LocalError(f"cannot use{where}: {exc.strerror or exc}"))


@click.group(cls=AsyncdlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="asyncdl")
def main() -> None:
    """Mirror files from Zenodo and other InvenioRDM repositories: fast, resumable, checksum-verified."""


LIST_EPILOG = """\b
Examples:
  asyncdl list 10206227                                 # one record
  asyncdl list --owner 88403 --extract \\
      'Expedition\\s(?P<expedition>[A-Z]?\\d{3}[A-Z]?)\\s(?P<analysis>.+)' \\
      --columns id,expedition,analysis,title,doi,conceptdoi --sort expedition,conceptdoi
  asyncdl list --owner 88403 --extract '...(?P<analysis>.+)' --group-by analysis
  asyncdl list --community nfdi4bioimage --columns url,downloads --sort -downloads -o downloads.csv
"""


@main.command("list", epilog=LIST_EPILOG)
@selection_options
@settings.flags_for("list")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS),
              help="Output format [default: table on a terminal, else csv; or from -o's extension].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option("--columns", metavar="A,B,...", help=f"Columns to show, in order, or 'all' (default: all of "
                                                    f"{', '.join(export.COLUMNS)} and extracted ones; on a "
                                                    f"terminal table {', '.join(export.TABLE_COLUMNS)}).")
@click.option("--extract", "extract_pattern", metavar="REGEX",
              help="Add a column per named group of REGEX matched in each title.")
@click.option("--group-by", metavar="COLUMN", help="One row per value of COLUMN, summing files, bytes and stats.")
@click.option("--sort", "sort_spec", metavar="A,-B", help="Sort by columns; '-' before a name sorts descending.")
def list_command(**options: Any) -> None:
    """List the records of a selection as a table, with DOIs and download statistics.

    RECORD is a record id, a record URL, a DOI or a DOI URL; a concept id or concept DOI means its
    latest version (every version with --all-versions).
    """
    check_output_options(options)
    layers = layered_settings(options)
    selection = build_selection(options)
    config = config_of(layers)
    if options["extract_pattern"]:
        export.compile_extract(options["extract_pattern"])  # a bad pattern is refused before anything is sent
    output: Path | None = options["output"]
    fmt = options["fmt"] or (export.format_for_path(str(output)) if output else None)
    fmt = fmt or ("table" if output is None and sys.stdout.isatty() else "csv")
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a file: give -o FILE.parquet")
    if fmt == "parquet":
        try:
            export.need_pyarrow()
        except UsageError as exc:
            raise click.UsageError(str(exc)) from exc
    records, short = run(functools.partial(crawl_keeping_short, selection, config))
    try:
        table = export.make_table(records, extract_pattern=options["extract_pattern"], group_by=options["group_by"],
                                  sort_spec=options["sort_spec"], columns=options["columns"],
                                  terminal=fmt == "table")
        if fmt == "parquet":
            assert output is not None  # refused above
            table.to_parquet(output)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if fmt == "table":
        write_table(list(table.rows), list(table.columns), output)
    elif fmt != "parquet":
        text = table.render(fmt)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    stderr.print(plural(len(table), "row") + (f" written to {output}" if output else ""), highlight=False)
    if short is not None:
        fail(short)
    if not records:
        stderr.print("nothing: the selection matched no records", highlight=False)
        sys.exit(EXIT_EMPTY)


async def crawl_keeping_short(selection: Selection, config: Config) -> tuple[list[Record], ShortCrawlError | None]:
    """The records of a listing, and the shortfall, if any, that must fail the command once they are written."""
    try:
        return await crawl_records(selection, config, sink=StatusSink(stderr)), None
    except ShortCrawlError as short:
        return short.records, short


def write_table(rows: list[export.Row], columns: list[str], output: Path | None) -> None:
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    if output is None:
        Console().print(table)
    else:
        with output.open("w", encoding="utf-8") as stream:
            Console(file=stream, width=200).print(table)


def transfer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the commands that download, beside their settings' flags."""
    decorators = [
        click.option("--dry-run", is_flag=True, help="Show what would be downloaded, and where; fetch nothing."),
        click.option("--refresh", is_flag=True,
                     help="Crawl the selection again although the journal in DEST knows its records."),
        click.option("--since-last", is_flag=True,
                     help="Crawl only records updated since the last complete crawl of this selection."),
        click.option("--relayout", is_flag=True,
                     help="Move the files DEST holds to a changed --layout (renamed, nothing downloaded)."),
        click.option("-v", "--verbose", is_flag=True, help="Report every file and every notice."),
        click.option("-q", "--quiet", is_flag=True, help="Only errors and the final line."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def choose_shard(options: dict[str, Any], layers: dict[str, Any]) -> Shard | None:
    """The shard of a mirror (--shard, else the scheduler's variables; see asyncdl.shard); with one, the
    rate share defaults to 1/N unless a flag, a variable or a config file set it."""
    try:
        shard = resolve(options.get("shard"), layers.get("shard_count") or None, os.environ,
                        count_flagged=options.get("shard_count") is not None)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if shard is not None and "rate_share" not in layers:
        layers["rate_share"] = 1 / shard.count
    return shard


def download(selection: Selection, dest: Path, options: dict[str, Any], *, sharded: bool = False,
             layout: str | None = None) -> None:
    """Run a mirror with progress and a summary; exit with its code. ``sharded``: the command takes --shard
    (and the scheduler's variables); ``layout``: the layout when no setting names one. A DEST this run made
    is removed again when the run ends (not interrupted) without a file in it: a failed ``get 999999``
    leaves no stub folder."""
    made = not dest.exists()
    try:
        _download(selection, dest, options, sharded=sharded, layout=layout)
    except SystemExit as end:
        if made and end.code != EXIT_INTERRUPTED:
            remove_if_bookkeeping_only(dest)
        if not options["dry_run"] and dest.is_dir():
            bag_after_run(dest, end.code, make=options.get("make_bag", False))
        raise


def bag_after_run(dest: Path, code: int | str | None, *, make: bool) -> None:
    """``mirror --bag``: a complete run (exit 0 or 5) makes DEST a bag, an incomplete one says why not in one
    line; without --bag, a run into a bagged DEST that changed its payload says the bag needs bagging again."""
    if not make:
        if bag.bagged(dest) and bag.stale(dest):
            stderr.print(f"note: {dest} is a BagIt bag and this run changed its payload: asyncdl bag {dest} (or "
                         "mirror --bag) brings its manifests up to date", highlight=False, markup=False)
        return
    if code not in (EXIT_OK, EXIT_INACCESSIBLE):
        stderr.print(f"not bagged: a bag is made after a complete run, and this one ended with exit {code}",
                     highlight=False, markup=False)
        return
    try:
        report = bag.bag(dest)
    except AsyncdlError as exc:
        stderr.print(f"[red]error:[/red] not bagged: {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    stderr.print(bag.describe(report, dest), highlight=False, markup=False)


def remove_if_bookkeeping_only(dest: Path) -> None:
    """Remove ``dest`` if it holds nothing but asyncdl's own bookkeeping (its state folder, the manifest)."""
    try:
        if dest.is_dir() and all(p.name in (STATE_DIR, MANIFEST) for p in dest.iterdir()):
            shutil.rmtree(dest)
    except OSError:
        pass  # left as it is: nothing in it is lost either way


def _download(selection: Selection, dest: Path, options: dict[str, Any], *, sharded: bool,
              layout: str | None) -> None:
    check_output_options(options)
    layers = layered_settings(options)
    if layout is not None:
        layers.setdefault("layout", layout)
    run_options = settings.options_from(layers, dry_run=options["dry_run"], refresh=options["refresh"],
                                        since_last=options["since_last"], relayout=options["relayout"])
    # a bagged DEST keeps its files under data/ (asyncdl bag); refused while a bag of it is half done
    run_options = dataclasses.replace(run_options, layout=bag.layout_in(dest, run_options.layout))
    try:
        check_template(run_options.layout)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    shard = choose_shard(options, layers) if sharded else None
    run_options = dataclasses.replace(run_options, shard=shard)
    config = config_of(layers)
    mode = "none" if options["quiet"] else settings.value(layers, "progress_mode")
    accounting = Accounting()
    sink: Display = NullSink() if options["quiet"] else make_sink(
        mode, accounting, console=stderr, json_stream=sys.stdout, verbose=options["verbose"],
        interval=settings.value(layers, "progress_interval"))
    dry = DryRun(dest, relayout=run_options.relayout)
    shown: ProgressSink = sink
    export = metrics_export(layers, accounting)
    if export is not None:
        shown = Fanout(shown, export.metrics)
    log_path = settings.value(layers, "log_file")
    log = LogFile(Path(log_path).expanduser(), settings.value(layers, "log_level")) if log_path else None
    if log is not None:
        shown = Fanout(shown, log)
    try:
        job = Run(selection, dest, config, run_options, sink=shown, accounting=accounting,
                  on_plan=dry if run_options.dry_run else None)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    accounting.governors = job.governors  # the budgets, for the ETA
    if export is not None:
        export.metrics.bind(governors=job.governors, concurrency=lambda: job.concurrency)
    if job.shard is not None and mode != "none":
        stderr.print(f"{job.shard.describe()}: the records whose id falls in this part, journal "
                     f"{journal_path(dest, job.shard.suffix)}, rate share {config.rate_share:.3g}",
                     highlight=False, markup=False)
    try:
        with log or contextlib.nullcontext(), export or contextlib.nullcontext(), sink:  # a live display
            summary = run(functools.partial(execute_with_signals, job, grace=settings.value(layers, "grace"),
                                            max_duration=settings.value(layers, "max_duration")))
            if log is not None:
                word = "interrupted" if summary.interrupted else "done"
                log.line(logging.INFO, f"{final_line(summary, word)}; exit {summary.exit_code}")
    finally:
        dry.close()
    done = f"done (shard {job.shard})" if job.shard else "done"
    if run_options.dry_run:
        stderr.print(f"dry run of {dest}: {plural(summary.counts['planned'], 'file')} planned: {dry.totals()}; "
                     f"{summary.counts['filtered']} filtered out", highlight=False)
        sys.exit(EXIT_OK)
    if mode == "json":
        print(json.dumps(summary_record(summary)), flush=True)
    elif mode == "rich" or (mode == "auto" and stderr.is_terminal):
        stderr.print(summary_table(summary))
    elif mode != "json":
        stderr.print(final_line(summary, done), highlight=False)
        for result in summary.failed:
            stderr.print(f"failed: {result.path}: {result.reason}", highlight=False, markup=False)
    for line in inaccessible_lines(summary.inaccessible, every=options["verbose"]):
        stderr.print(line, highlight=False, markup=False)
    for unavailable in summary.unavailable:
        stderr.print(f"not downloaded: {unavailable.path}: {unavailable.reason}", highlight=False, markup=False)
    for short in summary.shortfalls:
        stderr.print(f"incomplete selection: {short.message}", highlight=False, markup=False)
    if summary.interrupted:
        stderr.print("interrupted: run the same command again to continue where it stopped", highlight=False)
    code = summary.exit_code
    if code == EXIT_OK and job.shard is None and (empty := nothing_selected(summary)):
        stderr.print(f"nothing: {empty}", highlight=False, markup=False)
        code = EXIT_EMPTY
    sys.exit(code)


def final_line(summary: RunSummary, done: str) -> str:
    """The run's last line in plain mode and in the log file: files by outcome, bytes, time, requests."""
    counts = summary.counts
    linked = f"{counts['linked']} linked, " if counts["linked"] else ""
    moved = f" ({counts['moved']} moved to the new layout)" if counts["moved"] else ""
    filtered = f", {counts['filtered']} filtered out" if counts["filtered"] else ""
    archives = f"{describe_archives(summary)}; " if summary.archives or summary.requests_saved else ""
    return (f"{done}: {counts['ok']} ok, {counts['skipped']} already there{moved}, {linked}{counts['failed']} "
            f"failed{filtered}; {format_size(summary.bytes_received)} in {summary.elapsed:.1f} s; "
            f"{plural(summary.requests, 'request')}, {summary.rate_limited} answered 429; {archives}"
            f"faults met: {describe_faults(summary.faults, leave_out=('429',))}")


def metrics_export(layers: dict[str, Any], accounting: Accounting) -> MetricsExport | None:
    """The run's metrics, served and/or written as the settings say (None: neither asked for)."""
    port, file = settings.value(layers, "metrics_port"), settings.value(layers, "metrics_file")
    if not port and not file:
        return None
    return MetricsExport(RunMetrics(accounting), port=port or None, address=settings.value(layers, "metrics_address"),
                         file=Path(file).expanduser() if file else None,
                         interval=settings.value(layers, "metrics_interval"))


def inaccessible_lines(inaccessible: list[tuple[str, str]], *, every: bool, shown: int = 5) -> list[str]:
    """The records whose files could not be had, once each: a line per record, or (more than ``shown`` of one
    reason, without -v) one line per reason with the count and the first few ids."""
    by_reason: dict[str, list[str]] = {}
    for record_id, reason in inaccessible:
        by_reason.setdefault(reason, []).append(record_id)
    lines = []
    for reason, ids in by_reason.items():
        if every or len(ids) <= shown:
            lines += [f"not downloaded: record {record_id}: {reason}" for record_id in ids]
        else:
            lines.append(f"not downloaded: {len(ids)} records: {reason}: {', '.join(ids[:shown])}, ... (-v for all)")
    return lines


def nothing_selected(summary: RunSummary) -> str | None:
    """Why a run that failed nowhere brought nothing: no record matched, or the filters left no file."""
    if summary.records == 0:
        return "the selection matched no records"
    if summary.counts["planned"] == 0 and summary.counts["filtered"]:
        return (f"all {summary.counts['filtered']} files of the selection's {plural(summary.records, 'record')} "
                "were filtered out "
                "(--include, --exclude, --max-file-size)")
    return None


async def execute_with_signals(job: Run, *, grace: float = 0.0, max_duration: float = 0.0) -> RunSummary:
    """Run ``job``; the first SIGINT or SIGTERM (or ``max_duration`` seconds) stops it cleanly: no file
    starts any more, the files in flight may finish for ``grace`` seconds, the state is recorded, the summary
    printed, exit 130. A second signal exits at once (still safe to resume: parts are consistent, the journal
    is reconciled)."""
    try:
        return await _execute_watched(job, grace, max_duration)
    except BaseExceptionGroup as error:
        raise unwrap(error) from None


async def _execute_watched(job: Run, grace: float, max_duration: float) -> RunSummary:
    async with anyio.create_task_group() as group:

        def stop(why: str) -> None:
            waits = f"letting the files in flight finish for up to {grace:g} s" if grace > 0 else "stopping"
            stderr.print(f"{why}: no file starts any more; {waits}, then recording the state (press Ctrl-C "
                         "again to exit at once)", highlight=False)
            job.interrupt(grace)

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    if job.summary.interrupted:
                        stderr.print("interrupted again: exiting now", highlight=False)
                        os._exit(EXIT_INTERRUPTED)
                    stop("interrupted")

        async def deadline() -> None:
            await anyio.sleep(max_duration)
            if not job.summary.interrupted:
                stop(f"--max-duration {max_duration:g} s reached")

        group.start_soon(watch)
        if max_duration > 0:
            group.start_soon(deadline)
        summary = await job.execute()
        group.cancel_scope.cancel()
    return summary


class DryRun:
    """A dry run's lines, as each file is planned: path, size in bytes, notes and what a real run would do
    with it as DEST stands (``download``, ``resume``, ``there``: a file of the record's size is at the name,
    which a real run checks by its checksum), tab-separated; and the totals of each."""

    def __init__(self, dest: Path, *, relayout: bool = False) -> None:
        self.dest = dest
        self.counts: Counter[str] = Counter()
        self.sizes: Counter[str] = Counter()
        self.journal = JournalView(journal_path(dest)) if relayout else None  # what --relayout would move

    def __call__(self, item: PlannedFile) -> None:
        action = self.action(item)
        size = item.entry.size
        self.counts[action] += 1
        self.sizes[action] += size or 0
        sys.stdout.write(f"{item.path}\t{'' if size is None else size}\t{'; '.join(item.notes)}\t{action}\n")

    def action(self, item: PlannedFile) -> str:
        final = self.dest / item.path
        elsewhere = self.journal.placed_elsewhere(item.path, item.record.id, item.entry.key) if self.journal else None
        try:
            if elsewhere is not None and holds(elsewhere, item) and not final.exists() \
                    and (self.dest / elsewhere.path).is_file():  # as the real run decides (transfer.prior)
                return "move"
            if final.is_file() and item.entry.size is not None and final.stat().st_size == item.entry.size:
                return "there"
            if final.with_name(final.name + PART_SUFFIX).is_file():
                return "resume"
        except OSError:
            pass
        return "download"

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def totals(self) -> str:
        def part(action: str, words: str) -> str:
            return f"{self.counts[action]} {words} ({format_size(self.sizes[action])})"
        moves = [part("move", "to move to the new layout")] if self.counts["move"] else []
        return ", ".join([part("download", "to download"), part("resume", "to resume from their part"),
                          part("there", "already there by size"), *moves])


GET_EPILOG = """\b
Examples:
  asyncdl get 10206227                        # into ./10206227/
  asyncdl get https://zenodo.org/records/10206227 10.5281/zenodo.7502011 -o data
  asyncdl get 10206227 --include '*.csv'
"""


@main.command("get", epilog=GET_EPILOG)
@selection_options
@settings.flags_for("get")
@click.option("-o", "--output", "dest", type=click.Path(file_okay=False, path_type=Path),
              help="Destination folder (default: ./RECORD/ for one record, its files at the top).")
@transfer_options
def get_command(**options: Any) -> None:
    """Download every file of the given records, verified, into DEST (default: ./RECORD/).

    RECORD is a record id, a record URL, a DOI or a DOI URL; RECORD/KEY or a file URL is that file alone.
    """
    selection = build_selection(options)
    if options["dest"] is not None:
        download(selection, options["dest"], options)
    else:  # the record's own folder holds its files, the journal and the manifest: nothing at the top of here
        download(selection, record_folder(selection), options, layout="{key}")


def record_folder(selection: Selection) -> Path:
    """Where ``get`` without -o puts one record: ./ID/ (./PREFIX_SUFFIX/ for a DOI of another instance)."""
    count = len(selection.identifiers)
    if count != 1 or selection.community or selection.owner or selection.query:
        what = "a --community, --owner or --query" if count == 0 else f"{count} records"
        raise click.UsageError(f"get of {what} needs -o DEST, the folder for them all (one record alone goes into "
                               "./RECORD/)")
    try:
        found = invenio.parse_identifier(selection.identifiers[0])
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    return Path(found.value.replace("/", "_"))


MIRROR_EPILOG = """\b
Examples:
  asyncdl mirror --community nfdi4bioimage ./nfdi4bioimage
  asyncdl mirror --community nfdi4bioimage /shared/mirror --shard 2/8   # one of eight machines
  asyncdl mirror --owner 88403 --title-regex Alkalinity ./iodp-alkalinity
  asyncdl mirror --query 'title:"Expedition 374"' --include '*.csv' --layout '{year}/{id}/{key}' ./exp374
"""


@main.command("mirror", epilog=MIRROR_EPILOG)
@selection_options
@settings.flags_for("mirror")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@transfer_options
@click.option("--shard", metavar="K/N",
              help="Mirror only shard K of N (1..N): the records whose id hashes to it, with a journal of its own "
                   "in DEST [default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set; 1/1 is all].")
@click.option("--bag", "make_bag", is_flag=True,
              help="After a complete run, make DEST a BagIt bag in place, as 'asyncdl bag DEST' does (an incomplete "
                   "run is not bagged and says why).")
def mirror_command(**options: Any) -> None:
    """Download every file of a selection into DEST: resumable, checksum-verified, rate-limit aware.

    The selection is RECORD ids/URLs/DOIs, --community, --owner and/or --query (see 'asyncdl list').
    Run the same command again to continue after an interruption. Under a Slurm job array or a Kubernetes
    Indexed Job each task mirrors its own shard (see --shard and docs/cluster.md).
    """
    download(build_selection(options), options["dest"], options, sharded=True)


BAG_EPILOG = """\b
Examples:
  asyncdl bag ./iodp                       # ./iodp/data/ holds the files; mirror, status, verify go on working
  asyncdl bag ./iodp --into /archive/iodp  # a bag of hard links (else copies); ./iodp stays as it is
  python -m bagit --validate ./iodp        # the Library of Congress's validator agrees
"""


@main.command("bag", epilog=BAG_EPILOG)
@click.argument("dest", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--into", type=click.Path(file_okay=False, path_type=Path), metavar="NEW",
              help="Make the bag in NEW (new or empty) of hard links to DEST's files (else copies, checked against "
                   "the journal), leaving DEST as it is.")
def bag_command(dest: Path, into: Path | None) -> None:
    """Make the finished mirror in DEST a BagIt bag (RFC 8493), without reading its data: the payload
    manifest (md5) from the journal, bag-info.txt from the records (instance, DOIs, dates, counts, bytes), the
    records' JSON saved by --save-metadata as tag files, and a tag manifest.

    In place (the default) DEST's files are renamed under DEST/data/ and the journal follows them, so
    status, verify and mirror into DEST go on working. Refused, nothing moved, while DEST is not a finished
    mirror (failed or missing files, a run going on) or holds files no journal knows.
    """
    report = bag.bag(dest, into)
    stderr.print(bag.describe(report, dest), highlight=False, markup=False)


@main.command("demo")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path), required=False)
@settings.flags_for("demo")
def demo_command(dest: Path | None, progress_mode: str | None) -> None:
    """Try asyncdl offline: start a local Zenodo-like server in this process and mirror it into DEST
    (default: asyncdl-demo in the system's temporary folder, named at the start): a few records of many
    small files and one of 300 MB, every file md5-verified.

    \b
    Example:
      asyncdl demo            # run it again: nothing is downloaded twice
    """
    from asyncdl.demo import start_demo_server

    dest = dest or Path(tempfile.gettempdir()) / "asyncdl-demo"  # not the working folder: 300 MB land there

    stderr.print("starting a local Zenodo-like server (asyncdl's emulator) ...", highlight=False)
    thread, server = start_demo_server()
    try:
        stderr.print(f"mirroring {server.url} into {dest}/", highlight=False)
        config = Config(base_url=server.url)
        accounting = Accounting()
        with make_sink(progress_mode or "auto", accounting, console=stderr, json_stream=sys.stdout) as sink:
            summary = run(functools.partial(execute_with_signals, Run(Selection(query="*"), dest, config,
                                                                      sink=sink, accounting=accounting)))
        stderr.print(summary_table(summary))
    finally:
        thread.stop()
    verified = sum(1 for r in summary.results if r.verified)
    files = summary.counts["ok"] + summary.counts["skipped"] + summary.counts["linked"]
    stderr.print(f"\n{files} files in {dest.resolve()}/ "
                 f"({verified} md5-verified); the journal and manifest.csv are there too "
                 f"(try: asyncdl status {dest}).", highlight=False, markup=False)
    stderr.print("The same against Zenodo, e.g. the IODP datasets on alkalinity:\n"
                 "  asyncdl mirror --owner 88403 --title-regex Alkalinity ./iodp-alkalinity", highlight=False,
                 markup=False)
    sys.exit(summary.exit_code)


@main.command("config", epilog="\b\nExamples:\n  asyncdl config\n  asyncdl config --config server.toml")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A config file, read after the user's own (as get, mirror and list read it).")
def config_command(config_file: Path | None) -> None:
    """Show the effective settings and where each came from: the default, which config file, which
    ASYNCDL_* variable (flags given to a command come last, over all of these). A token is never shown."""
    try:
        rows = settings.origins(config_file, os.environ)
        values = {s.field: v for s, v, _ in rows}
        token = settings.resolve_token(values, os.environ)
    except ConfigError as exc:
        fail(exc)
    table = Table("setting", "value", "from", title="asyncdl settings")
    for setting, value, origin in rows:
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else settings.shown_value(setting, value)
        table.add_row(f"{setting.section}.{setting.key}", shown, origin)
    Console().print(table)
    where = f"the variable {values['token_env']}" if values.get("token_env") else f"the file {values['token_file']}"
    print(f"token: {'set, from ' + where if token else 'none'} (never shown; --token on a command comes first)")


@main.command("status", epilog="\b\nExamples:\n  asyncdl status ./iodp\n  asyncdl status ./iodp --watch")
@click.argument("dest", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--watch", "watching", is_flag=True,
              help="Watch the run in DEST live (read-only, from another terminal) until it ends.")
@click.option("--follow", is_flag=True, help="With --watch: stay after the run ends, for the next one (Ctrl-C ends).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="With --watch: seconds between two looks at the journals.")
def status_command(dest: Path, fmt: str, watching: bool, follow: bool, interval: float) -> None:
    """What the journal in DEST says: files and bytes by state, failures with reasons, the last runs, and
    an estimate of the time left at the last run's speed; with --watch, live while a run goes on."""
    if follow and not watching:
        raise click.UsageError("--follow goes with --watch")
    if watching:
        try:
            watch(dest, console=Console(stderr=False), interval=interval, follow=follow)
        except (UsageError, LocalError) as exc:
            fail(exc)
        except KeyboardInterrupt:
            pass
        return
    try:
        status = read_status(dest)
    except (UsageError, LocalError) as exc:
        fail(exc)
    if fmt == "json":
        sys.stdout.write(json.dumps({"states": {k: vars(v) for k, v in status.states.items()},
                                     "linked": vars(status.linked),
                                     "failures": status.failures,
                                     "unavailable": [{"record": r, "reason": why} for r, why in status.unavailable],
                                     "runs": status.runs,
                                     "shards": [vars(s) for s in status.shards],
                                     "bytes_left": status.bytes_left, "eta_seconds": status.eta}, indent=2) + "\n")
        return
    console = Console()
    count = sum(1 for s in status.shards if s.started)
    journals = f" ({count} journals)" if count > 1 else ""
    table = Table("state", "files", "bytes", title=f"asyncdl status of {dest}{journals}")
    for state in ("done", "partial", "pending", "failed"):
        if state in status.states:
            table.add_row(state, str(status.states[state].files), format_size(status.states[state].bytes))
        if state == "done" and status.linked.files:
            table.add_row("  of them linked", str(status.linked.files), format_size(status.linked.bytes))
    table.add_row("total", str(sum(c.files for c in status.states.values())),
                  format_size(sum(c.bytes for c in status.states.values())), style="bold")
    console.print(table)
    if any(s.shard for s in status.shards):
        console.print(shards_table(status))
    for path, reason, attempts in status.failures[:50]:
        console.print(f"failed ({plural(attempts, 'attempt')}): {path}: {reason}", highlight=False)
    for record_id, reason in status.unavailable[:50]:
        console.print(f"not downloadable: record {record_id}: {reason}", highlight=False, markup=False)
    if len(status.unavailable) > 50:
        console.print(f"... and {len(status.unavailable) - 50} more records not downloadable", highlight=False)
    eta = status.eta
    idle = [s.shard for s in status.shards if not s.started]
    console.print(f"left: {format_size(status.bytes_left)}" + (f", about {eta:.0f} s at the last run's speed "
                                                                 f"({format_size(status.speed or 0)}/s)"
                                                                 if eta is not None else "")
                  + (f"; not started: shard {', '.join(map(str, idle))} (their files are not counted yet)"
                     if idle else ""), highlight=False)
    runs = Table("run", "started", "outcome", "ok", "failed", "bytes", "what", title="last runs")
    for r in status.runs[:10]:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(str(r["started"] or 0))))
        runs.add_row(str(r["id"]), started, str(r["outcome"]), str(r["ok"]), str(r["failed"]),
                     format_size(float(str(r["bytes"] or 0))), str(r["command"]))
    console.print(runs)


def shards_table(status: Status) -> Table:
    """A line per journal: its shard, files done of all, failed, bytes, and its last run's outcome."""
    table = Table("shard", "done", "failed", "bytes done", "last run", title="shards")
    for s in status.shards:
        table.add_row(s.shard or "whole", f"{s.done}/{s.files}", str(s.failed),
                      f"{format_size(s.done_bytes)}/{format_size(s.bytes)}",
                      s.last_outcome or ("-" if s.started else "not started"))
    return table


@main.command("verify", epilog="\b\nExamples:\n  asyncdl verify ./iodp\n  asyncdl verify ./iodp --repair")
@click.argument("dest", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--repair", is_flag=True, help="Download again every file that is missing or does not match.")
@click.option("--token", envvar="ZENODO_TOKEN", show_envvar=True, help="Token, for --repair of restricted files.")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              help="The instance the token is for; files the journal says came from another are repaired "
                   "without it.")
def verify_command(dest: Path, repair: bool, token: str | None, base_url: str) -> None:
    """Re-hash every finished file in DEST against the checksum in the journal and report mismatches.

    md5, sha256 and the other hashlib algorithms and S3 multipart checksums are verified; a file whose record
    gives no checksum asyncdl can compute has its size checked only, and is listed as such.

    Without --repair, bad files are marked failed in the journal, so the next mirror run fetches them.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bag.check_not_interrupted(dest)
    progress = Progress(TextColumn("verifying"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=stderr, disable=not stderr.is_terminal)
    task = progress.add_task("verify", total=None)
    config = Config(base_url=base_url, token=token or None)
    with progress:
        report = run(functools.partial(verify, dest, config=config, repair=repair,
                                       on_file=lambda _path, size: progress.advance(task, size),
                                       on_total=lambda total: progress.update(task, total=total)))
    for path in report.mismatched:
        how = report.problems.get(path)
        stderr.print(f"mismatch: {path}" + (f": {how}" if how else ""), highlight=False, markup=False)
    for path, reason in report.size_only:
        stderr.print(f"{reason}: {path}", highlight=False, markup=False)
    for path in report.missing:
        stderr.print(f"missing: {path}", highlight=False, markup=False)
    for path in report.repaired:
        stderr.print(f"repaired: {path}", highlight=False, markup=False)
    for path, reason in report.still_bad:
        stderr.print(f"could not repair: {path}: {reason}", highlight=False, markup=False)
    size_only = f" ({len(report.size_only)} by size only)" if report.size_only else ""
    stderr.print(f"verified {report.checked} files: {report.ok} ok{size_only}, {len(report.mismatched)} mismatched, "
                 f"{len(report.missing)} missing" + (f", {len(report.repaired)} repaired" if repair else ""),
                 highlight=False)
    bad = len(report.still_bad) if repair else len(report.mismatched) + len(report.missing)
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


def _register() -> None:
    from asyncdl.emulator.cli import emulate

    main.add_command(emulate)


_register()
