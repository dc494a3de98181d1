"""Progress displays: each shows the run's :class:`~asyncdl.accounting.Accounting` (which the run feeds)
and the events that need saying. Each is a context manager: it starts showing on entry, stops on exit.

- RichProgress: live bars on a terminal (overall, crawl state, the active files), notices above them.
- LogProgress: plain timestamped lines at a steady interval, for servers and log files; no control codes.
- JsonProgress: one JSON object per event, for scripts.
- NoticesOnly (`--progress none`): warnings only. NullSink (events.py, for `-q`): nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from asyncdl.accounting import Accounting, RunSummary
from asyncdl.errors import describe_faults
from asyncdl.events import (
    Display,
    Event,
    FaultMet,
    FileAdvanced,
    FileFinished,
    FileStarted,
    Notice,
    PathNote,
    RateLimitPaused,
    RatePaced,
)
from asyncdl.units import format_size, plural

MODES = ("auto", "rich", "plain", "json", "none")


def describe_pause(event: RateLimitPaused) -> str:
    limit = "?" if event.limit is None else str(event.limit)
    return f"paused {event.seconds:.0f} s: rate limit, {event.remaining}/{limit} left ({event.bucket})"


def shows_retry(event: FaultMet, verbose: bool) -> bool:
    """Every retried fault is shown at -v; a connection that cannot be made always (it is often a wrong
    --base-url, and otherwise the run would be silent while it retries)."""
    return verbose or event.kind == "connect"


def status_line(acc: Accounting) -> str:
    """One line for logs: files, bytes, speed, ETA, crawl."""
    eta = acc.eta()
    crawl = "done" if acc.crawl_done else f"{acc.pages}/{acc.pages_planned or '?'} pages"
    linked = f"linked {acc.outcomes['linked']}, " if acc.outcomes["linked"] else ""
    return (f"files {acc.finished}/{acc.queued}{'' if acc.crawl_done else '+'} (ok {acc.outcomes['ok']}, "
            f"skipped {acc.outcomes['skipped']}, {linked}failed {acc.outcomes['failed']}) | "
            f"{format_size(acc.done_bytes)}/{format_size(acc.queued_bytes)} at {format_size(acc.speed())}/s"
            f"{'' if eta is None else f', ETA {eta:.0f} s'} | crawl {crawl}, {acc.records_found} records")


class SpeedColumn(ProgressColumn):
    """A task's speed in the units of the summary (KiB, MiB: powers of 1024), never below zero."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{format_size(max(0.0, speed))}/s", style="progress.data.speed")


class NoticesOnly(Display):
    """``--progress none``: no progress, but warnings (a fallback, a shortfall, a lock refused) still shown."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def emit(self, event: Event) -> None:
        if isinstance(event, Notice) and event.level != "info":
            self.console.print(f"{event.level}: {event.message}", highlight=False, markup=False)


class LogProgress(Display):
    """Plain log lines: failures, pauses and notices at once, a status line every ``interval`` seconds."""

    def __init__(self, stream: IO[str], accounting: Accounting, *, interval: float = 10.0, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.interval, self.verbose, self.clock = stream, interval, verbose, clock
        self.accounting = accounting
        self._last = clock()

    def _line(self, text: str) -> None:
        self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self.stream.flush()

    def emit(self, event: Event) -> None:
        if isinstance(event, FileFinished) and event.outcome == "failed":
            self._line(f"FAILED {event.path}: {event.reason}")
        elif isinstance(event, FileFinished) and self.verbose:
            self._line(f"{event.outcome} {event.path}{': ' + event.reason if event.reason else ''}")
        elif isinstance(event, RateLimitPaused):
            self._line(describe_pause(event))
        elif isinstance(event, FaultMet) and shows_retry(event, self.verbose):
            self._line(f"retrying: {event.detail}")
        elif isinstance(event, Notice) and (event.level != "info" or self.verbose):
            self._line(f"{event.level}: {event.message}")
        elif isinstance(event, PathNote) and self.verbose:
            self._line(f"info: {event.note}")
        if self.clock() - self._last >= self.interval:
            self._last = self.clock()
            self._line(status_line(self.accounting))

    def __exit__(self, *exc: object) -> None:
        if self.accounting.queued or self.accounting.records_found:
            self._line(status_line(self.accounting))


class JsonProgress(Display):
    """One JSON object per event: ``{"event": "FileFinished", "path": ..., "time": ...}``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        record: dict[str, Any] = {"event": type(event).__name__, "time": round(time.time(), 3)}
        record.update(dataclasses.asdict(event))
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class StatusLine:
    """The line under the bars that says what holds the run up, updated in place: the governor's pause
    (with when it resumes) while it lasts, else the latest connection retry (for ``SHOWN`` seconds), and how
    many files in flight have no row of their own."""

    SHOWN = 10.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pause: tuple[str, float] | None = None  # what, until when (monotonic)
        self.retry: tuple[str, float] | None = None  # what, since when
        self.hidden = 0

    def paused(self, event: RateLimitPaused) -> None:
        resumes = time.strftime("%H:%M:%S", time.localtime(time.time() + event.seconds))
        limit = "?" if event.limit is None else str(event.limit)
        self.pause = (f"paused by the server's rate limit: {event.remaining}/{limit} left ({event.bucket}), "
                      f"resumes {resumes}", self.clock() + event.seconds)

    def paced(self, event: RatePaced) -> None:
        limit = "?" if event.limit is None else str(event.limit)
        self.pause = (f"paced by the server's rate limit: {event.remaining}/{limit} left ({event.bucket}), next "
                      f"request in {event.seconds:.0f} s", self.clock() + event.seconds)

    def retried(self, detail: str) -> None:
        self.retry = (f"retrying: {detail}", self.clock())

    def __rich__(self) -> Text:
        now, parts = self.clock(), []
        if self.pause is not None and self.pause[1] > now:
            parts.append(self.pause[0])
        elif self.retry is not None and now - self.retry[1] < self.SHOWN:
            parts.append(self.retry[0])
        if self.hidden:
            parts.append(f"{plural(self.hidden, 'more file')} in flight")
        return Text(" | ".join(parts), style="yellow", overflow="ellipsis", no_wrap=True)


class RichProgress(Display):
    """Live bars on a terminal: overall bytes and files, the crawl, up to ``max_bars`` active files (and how
    many more), and one status line for pauses and retries that updates in place."""

    def __init__(self, console: Console, accounting: Accounting, *, max_bars: int = 8,
                 verbose: bool = False) -> None:
        self.console, self.max_bars, self.verbose = console, max_bars, verbose
        self.accounting = accounting
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True), SpeedColumn(),
                   TimeRemainingColumn())
        self.overall = Progress(*columns, console=console)
        self.files = Progress(TextColumn("  {task.description}", style="dim"), BarColumn(),
                              DownloadColumn(binary_units=True), SpeedColumn(), console=console)
        self.total_task = self.overall.add_task("all files", total=None)
        self.bars: dict[str, TaskID] = {}
        self.crawl_text = "crawling..."
        self.status = StatusLine()
        self.live = Live(Group(self.overall, self.files, self.status), console=console, refresh_per_second=8,
                         transient=False)

    def __enter__(self) -> RichProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def emit(self, event: Event) -> None:
        acc = self.accounting
        if isinstance(event, FileStarted) and event.path in self.bars:  # started again: its row starts again
            self.files.reset(self.bars[event.path], total=event.size, completed=event.offset)
        elif isinstance(event, FileStarted) and len(self.bars) < self.max_bars:
            name = event.path if len(event.path) <= 48 else "…" + event.path[-47:]
            self.bars[event.path] = self.files.add_task(name, total=event.size, completed=event.offset)
        elif isinstance(event, FileAdvanced) and event.path in self.bars:
            self.files.advance(self.bars[event.path], event.nbytes)
        elif isinstance(event, FileFinished):
            task = self.bars.pop(event.path, None)
            if task is not None:
                self.files.remove_task(task)
            if event.outcome == "failed":
                self.console.print(f"[red]failed[/red] {escape(event.path)}: {escape(event.reason)}", highlight=False)
        elif isinstance(event, RateLimitPaused):
            self.status.paused(event)
        elif isinstance(event, RatePaced):
            self.status.paced(event)
        elif isinstance(event, FaultMet):
            self.status.retried(event.detail)  # every retry, in place; at -v each is kept as a line too
            if self.verbose:
                self.console.print(f"[yellow]retrying:[/yellow] {escape(event.detail)}", highlight=False)
        elif isinstance(event, Notice) and (event.level != "info" or self.verbose):
            self.console.print(f"[yellow]{event.level}:[/yellow] {escape(event.message)}", highlight=False)
        elif isinstance(event, PathNote) and self.verbose:
            self.console.print(f"[yellow]info:[/yellow] {escape(event.note)}", highlight=False)
        crawl = "crawl done" if acc.crawl_done else f"crawl {acc.pages}/{acc.pages_planned or '?'} pages"
        description = (f"files {acc.finished}/{acc.queued}{'' if acc.crawl_done else '+'} "
                       f"({crawl}, {acc.records_found} records)")
        self.overall.update(self.total_task, description=description, completed=acc.done_bytes,
                            total=acc.queued_bytes if acc.crawl_done else None)
        self.status.hidden = max(0, len(acc.active) - len(self.bars))

def make_sink(mode: str, accounting: Accounting, *, console: Console, json_stream: IO[str], verbose: bool = False,
              interval: float = 10.0) -> Display:
    """The display for ``--progress MODE`` (auto: rich on a terminal, plain log lines otherwise), showing
    ``accounting`` (which the run feeds); enter it to start showing."""
    if mode == "auto":
        mode = "rich" if console.is_terminal else "plain"
    if mode == "rich":
        return RichProgress(console, accounting, verbose=verbose)
    if mode == "plain":
        return LogProgress(console.file, accounting, interval=interval, verbose=verbose)
    if mode == "json":
        return JsonProgress(json_stream)
    return NoticesOnly(console)


def summary_table(summary: RunSummary) -> Table:
    """The end-of-run table: ok, skipped, failed with reasons, bytes, time, speed, requests, 429s."""
    table = Table(title="asyncdl summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    elapsed = max(summary.elapsed, 1e-6)
    counts = summary.counts
    table.add_row("files ok", str(counts["ok"]))
    moved = f" ({counts['moved']} moved to the new layout)" if counts["moved"] else ""
    table.add_row("skipped (already there)", f"{counts['skipped']}{moved}")
    if counts["linked"]:
        table.add_row("linked (a file fetched once)", describe_links(summary))
    table.add_row("filtered out", str(counts["filtered"]))
    table.add_row("failed", str(counts["failed"]))
    for result in summary.failed[:20]:
        table.add_row("", f"{result.path}: {result.reason}")
    if counts["failed"] > 20:
        table.add_row("", f"... and {counts['failed'] - 20} more")
    if summary.inaccessible:  # named once each, below the table
        table.add_row("records not accessible", str(len(summary.inaccessible)))
    for unavailable in summary.unavailable[:10]:
        table.add_row("file not available", f"{unavailable.path}: {unavailable.reason}")
    table.add_row("records", str(summary.records))
    table.add_row("downloaded", f"{format_size(summary.bytes_received)} in {elapsed:.1f} s "
                                f"({format_size(summary.bytes_received / elapsed)}/s)")
    table.add_row("requests", f"{summary.requests} ({summary.rate_limited} answered 429)")
    if summary.concurrency:
        table.add_row("files at once (auto)", describe_concurrency(summary.concurrency))
    if summary.archives or summary.requests_saved:
        table.add_row("archives", describe_archives(summary))
    table.add_row("faults met", describe_faults(summary.faults, leave_out=("429",)))
    return table


def describe_concurrency(levels: list[tuple[float, int]], shown: int = 8) -> str:
    """The levels ``-j auto`` chose, in turn (the first and last few when there were many), and the most."""
    chosen = [str(files) for _, files in levels]
    if len(chosen) > shown:
        chosen = [*chosen[: shown // 2], "…", *chosen[-shown // 2:]]
    return f"{' → '.join(chosen)} (most {max(files for _, files in levels)}, {levels[-1][1]} at the end)"


def describe_links(summary: RunSummary) -> str:
    """How many files were linked from another copy of the same stored file, and the bytes not fetched."""
    saved = sum(r.size or 0 for r in summary.linked)
    return f"{summary.counts['linked']} files ({format_size(saved)}) from another file of DEST"


def describe_archives(summary: RunSummary) -> str:
    """How many records came as one archive request, and what that saved."""
    return (f"{plural(summary.archives, 'record')} as archives ({plural(summary.archive_files, 'file')}), "
            f"{plural(summary.requests_saved, 'request')} saved")


def summary_record(summary: RunSummary) -> dict[str, Any]:
    """The end-of-run summary as one JSON object (the last line of ``--progress json``)."""
    counts = summary.counts
    return {"event": "RunSummary", "time": round(time.time(), 3), "ok": counts["ok"], "skipped": counts["skipped"],
            "linked": counts["linked"], "moved": counts["moved"], "filtered": counts["filtered"],
            "failed": counts["failed"],
            "failures": [{"path": r.path, "reason": r.reason} for r in summary.failed],
            "inaccessible": [{"record": rid, "reason": why} for rid, why in summary.inaccessible],
            "unavailable": [{"path": u.path, "record": u.record_id, "key": u.key, "reason": u.reason}
                            for u in summary.unavailable],
            "shortfalls": [{"part": s.part, "stated": s.stated, "reached": s.reached, "now": s.now,
                            "detail": s.detail} for s in summary.shortfalls],
            "records": summary.records, "bytes_received": summary.bytes_received,
            "seconds": round(summary.elapsed, 3), "requests": summary.requests,
            "rate_limited": summary.rate_limited, "faults": dict(summary.faults),
            "archives": summary.archives, "archive_files": summary.archive_files,
            "requests_saved": summary.requests_saved, "interrupted": summary.interrupted,
            "concurrency": [[seconds, files] for seconds, files in summary.concurrency],
            "exit_code": summary.exit_code}
