"""Progress displays: each shows the run's :class:`~asyncdl.accounting.Accounting` (which the run feeds)
and the events that need saying. Each is a context manager: it starts showing on entry, stops on exit.

- RichProgress: live bars on a terminal (overall, the run's counters, the active files), one status line for
  what holds the run up, notices above them.
- LogProgress: plain timestamped lines at a steady interval, for servers and log files; no control codes.
- JsonProgress: one JSON object per event, for scripts.
- NoticesOnly (`--progress none`): warnings only. NullSink (events.py, for `-q`): nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group
from rich.live import Live
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TaskID
from rich.table import Column, Table
from rich.text import Text

from asyncdl.accounting import FILE_BUCKET, Accounting, RunSummary
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


def describe_retry(event: FaultMet, waited: float = 0.0) -> str:
    """``retrying 3/8 in 4 s: DETAIL`` (the wait left after ``waited`` seconds; once it is over, the try is
    under way: ``retrying 3/8: DETAIL``); ``fault met: DETAIL`` for a fault no retry budget answers."""
    if not event.retry:
        return f"fault met: {event.detail}"
    left = event.wait - waited
    wait = "" if left <= 0 else f" in {left:.1f} s" if left < 1 else f" in {math.ceil(left)} s"
    return f"retrying {event.retry}/{event.retries}{wait}: {event.detail}"


def shows_retry(event: FaultMet, verbose: bool) -> bool:
    """Every retried fault is shown at -v; a connection that cannot be made always (it is often a wrong
    --base-url, and otherwise the run would be silent while it retries)."""
    return verbose or event.kind == "connect"


def format_eta(seconds: float | None) -> str:
    """Time left as H:MM:SS, ``-:--:--`` when it cannot be told."""
    if seconds is None:
        return "-:--:--"
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def files_done(acc: Accounting) -> str:
    """``files 12/40``, with a ``+`` while the total may still grow (the plan is not final)."""
    return f"files {acc.finished}/{acc.queued}{'' if acc.plan_final else '+'}"


def status_line(acc: Accounting) -> str:
    """One line for logs: files, bytes, speed, ETA, crawl."""
    eta = acc.eta()
    crawl = "done" if acc.crawl_done else f"{acc.pages}/{acc.pages_planned or '?'} pages"
    linked = f"linked {acc.outcomes['linked']}, " if acc.outcomes["linked"] else ""
    return (f"{files_done(acc)} (ok {acc.outcomes['ok']}, skipped {acc.outcomes['skipped']}, {linked}failed "
            f"{acc.outcomes['failed']}) | {format_size(acc.done_bytes)}/{format_size(acc.queued_bytes)} at "
            f"{format_size(acc.speed())}/s{'' if eta is None else f', ETA {format_eta(eta)}'} | crawl {crawl}, "
            f"{acc.records_found} records")


def counters(acc: Accounting) -> list[tuple[int, str]]:
    """The run's counters as (rank, words): the crawl, requests, each host's request budget left, faults, files
    failed, checked (there already, or linked) and transferred; the lower the rank, the longer it is kept."""
    s, counts = acc.summary, acc.outcomes
    if not acc.crawl_done:
        crawl = f"crawl {acc.pages}/{acc.pages_planned or '?'} pages, {acc.records_found} records"
    else:
        planning = "" if acc.plan_final else f" ({s.records} planned)"
        crawl = f"crawl done, {acc.records_found} records{planning}"
    checks = counts["skipped"] + counts["linked"]
    parts = [(0, crawl), (4, f"requests {s.requests}")]
    parts += [(2, f"budget {budget}") for budget in budgets(acc)]
    faults = sum(n for kind, n in s.faults.items() if kind != "429")
    parts += [(5, f"faults {faults}")] + ([(5, f"429s {s.rate_limited}")] if s.rate_limited else [])
    parts += [(1, f"failed {counts['failed']}")] if counts["failed"] else []
    parts += [(6, f"checks {checks}")] if checks else []
    plus = "" if acc.plan_final else "+"
    return [*parts, (3, f"transfers {counts['ok'] + counts['failed']}/{acc.queued - checks}{plus}")]


def budgets(acc: Accounting) -> list[str]:
    """Each host's request budget left of its limit, the files' bucket first (the others, such as searches',
    only while the crawl goes on): ``zenodo.org 87/133, search 20/30``."""
    try:
        hosts = acc.governors()
    except RuntimeError:  # the run added a bucket as this thread read them: the next frame shows them
        return []
    shown = []
    for host, stats in sorted(hosts.items()):
        buckets = sorted(stats.buckets.items(), key=lambda item: item[0] != FILE_BUCKET)
        left = [f"{'?' if b.remaining is None else b.remaining}/{b.limit}{'' if name == FILE_BUCKET else ' ' + name}"
                for name, b in buckets if b.limit is not None and (name == FILE_BUCKET or not acc.crawl_done)]
        if left:
            shown.append(f"{host.removesuffix(':443').removesuffix(':80')} {', '.join(left)}")
    return shown


class Counters:
    """The counters' line: as many of them as the width takes, the least telling left out first (and an
    ellipsis says so); a number is never cut."""

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        parts = counters(self.accounting)
        dropped = False
        while len(parts) > 1 and cell_len(" · ".join(p for _, p in parts) + (" …" if dropped else "")) \
                > options.max_width:
            parts.remove(max(parts, key=lambda part: part[0]))
            dropped = True
        line = " · ".join(p for _, p in parts) + (" …" if dropped else "")
        yield Text(line, style="cyan", no_wrap=True, overflow="ellipsis")


class SpeedColumn(ProgressColumn):
    """A task's speed in the units of the summary (KiB, MiB: powers of 1024), never below zero."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{format_size(max(0.0, speed))}/s", style="progress.data.speed")


class RunColumn(ProgressColumn):
    """A column of the overall row, read from the accounting (so the rich and the plain lines agree)."""

    def __init__(self, accounting: Accounting, show: Callable[[Accounting], str], style: str) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.accounting, self.show, self.style = accounting, show, style

    def render(self, task: Task) -> Text:
        return Text(self.show(self.accounting), style=self.style)


class PathName:
    """A file's path in the width there is: whole, else its end after an ellipsis (the name tells most)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = options.max_width
        shown = self.path if cell_len(self.path) <= width else "…" + self.path[len(self.path) - width + 1:]
        yield Text(shown, style="dim", no_wrap=True, overflow="crop")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(8, cell_len(self.path)), cell_len(self.path))


class PathColumn(ProgressColumn):
    """The file's path, the column that gives way first when the terminal is narrow."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(ratio=1))

    def render(self, task: Task) -> PathName:
        return PathName(task.description)


class NoticesOnly(Display):
    """``--progress none``: no progress, but warnings (a fallback, a shortfall, a lock refused) still shown."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def emit(self, event: Event) -> None:
        if isinstance(event, Notice) and event.level != "info":
            self.console.print(f"{event.level}: {event.message}", highlight=False, markup=False)


class StatusLine:
    """What holds the run up, in words: the governor's pause or pacing while it lasts (with when it resumes),
    else the latest retry (for ``SHOWN`` seconds, with the wait before it), and how many files in flight have
    no row of their own. The rich display shows it under the bars, updated in place; the plain one appends it
    to its status lines."""

    SHOWN = 10.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pause: tuple[RateLimitPaused | RatePaced, float, str] | None = None  # what, until (clock), resumes at
        self.retry: tuple[FaultMet, float] | None = None  # what, since when
        self.hidden = 0

    def paused(self, event: RateLimitPaused | RatePaced) -> None:
        resumes = time.strftime("%H:%M:%S", time.localtime(time.time() + event.seconds))
        self.pause = (event, self.clock() + event.seconds, resumes)

    def retried(self, event: FaultMet) -> None:
        self.retry = (event, self.clock())

    def text(self) -> str:
        now, parts = self.clock(), []
        if self.pause is not None and self.pause[1] > now:
            event, until, resumes = self.pause
            left = f"{event.remaining}/{'?' if event.limit is None else event.limit} left ({event.bucket})"
            if isinstance(event, RatePaced):
                parts.append(f"paced by the server's rate limit: {left}, next request in {math.ceil(until - now)} s")
            else:
                parts.append(f"paused by the server's rate limit: {left}, resumes {resumes}")
        elif self.retry is not None and now - self.retry[1] < self.SHOWN:
            parts.append(describe_retry(self.retry[0], now - self.retry[1]))
        if self.hidden:
            parts.append(f"{plural(self.hidden, 'more file')} in flight")
        return " | ".join(parts)

    def __rich__(self) -> Text:
        return Text(self.text(), style="yellow", overflow="ellipsis", no_wrap=True)


class LogProgress(Display):
    """Plain log lines: failures, pauses and notices at once; a status line every ``interval`` seconds, also
    while nothing happens (a timer thread writes it then), with what holds the run up (a pause, until when)."""

    def __init__(self, stream: IO[str], accounting: Accounting, *, interval: float = 10.0, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.interval, self.verbose, self.clock = stream, interval, verbose, clock
        self.accounting = accounting
        self.status = StatusLine(clock)
        self._last = clock()
        self._lock = threading.Lock()  # one line at a time: the run's events and the timer both write
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def _line(self, text: str) -> None:
        with self._lock:
            self._write(text)

    def _write(self, text: str) -> None:
        self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self.stream.flush()

    def _status(self) -> str:
        held = self.status.text()
        return status_line(self.accounting) + (f" | {held}" if held else "")

    def _status_when_due(self) -> None:
        with self._lock:
            if self.clock() - self._last >= self.interval:
                self._last = self.clock()
                self._write(self._status())

    def _tick(self) -> None:
        while not self._stop.wait(max(0.01, self._last + self.interval - self.clock())):
            self._status_when_due()

    def __enter__(self) -> LogProgress:
        self._timer = threading.Thread(target=self._tick, name="asyncdl-progress", daemon=True)
        self._timer.start()
        return self

    def emit(self, event: Event) -> None:
        if isinstance(event, FileFinished) and event.outcome == "failed":
            self._line(f"FAILED {event.path}: {event.reason}")
        elif isinstance(event, FileFinished) and self.verbose:
            self._line(f"{event.outcome} {event.path}{': ' + event.reason if event.reason else ''}")
        elif isinstance(event, RateLimitPaused):
            self.status.paused(event)
            self._line(describe_pause(event))
        elif isinstance(event, RatePaced):
            self.status.paused(event)
        elif isinstance(event, FaultMet):
            self.status.retried(event)
            if shows_retry(event, self.verbose):
                self._line(describe_retry(event))
        elif isinstance(event, Notice) and (event.level != "info" or self.verbose):
            self._line(f"{event.level}: {event.message}")
        elif isinstance(event, PathNote) and self.verbose:
            self._line(f"info: {event.note}")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        if self.accounting.queued or self.accounting.records_found:
            self._line(self._status())


class JsonProgress(Display):
    """One JSON object per event: ``{"event": "FileFinished", "path": ..., "time": ...}``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        record: dict[str, Any] = {"event": type(event).__name__, "time": round(time.time(), 3)}
        record.update(dataclasses.asdict(event))
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class RichProgress(Display):
    """Live bars on a terminal: overall bytes and files with the speed and time left the accounting tells,
    the run's counters in one line, up to ``max_bars`` active files (and how many more), and one status line
    for pauses and retries that updates in place. At a narrow terminal the paths and the bars give way, the
    numbers stay whole."""

    def __init__(self, console: Console, accounting: Accounting, *, max_bars: int = 8,
                 verbose: bool = False) -> None:
        self.console, self.max_bars, self.verbose = console, max_bars, verbose
        self.accounting = accounting
        number = Column(no_wrap=True)
        self.overall = Progress(RunColumn(accounting, files_done, "bold"), BarColumn(),
                                DownloadColumn(binary_units=True, table_column=number),
                                RunColumn(accounting, lambda acc: f"{format_size(acc.speed())}/s",
                                          "progress.data.speed"),
                                RunColumn(accounting, lambda acc: format_eta(acc.eta()), "progress.remaining"),
                                console=console)
        self.files = Progress(PathColumn(), BarColumn(), DownloadColumn(binary_units=True, table_column=number),
                              SpeedColumn(), console=console)
        self.total_task = self.overall.add_task("all files", total=None)
        self.bars: dict[str, TaskID] = {}
        self.status = StatusLine()
        self.live = Live(Group(self.overall, Counters(accounting), self.files, self.status), console=console,
                         refresh_per_second=8, transient=False)

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
            self.bars[event.path] = self.files.add_task(event.path, total=event.size, completed=event.offset)
        elif isinstance(event, FileAdvanced) and event.path in self.bars:
            self.files.advance(self.bars[event.path], event.nbytes)
        elif isinstance(event, FileFinished):
            task = self.bars.pop(event.path, None)
            if task is not None:
                self.files.remove_task(task)
            if event.outcome == "failed":
                self.console.print(f"[red]failed[/red] {escape(event.path)}: {escape(event.reason)}", highlight=False)
        elif isinstance(event, RateLimitPaused | RatePaced):
            self.status.paused(event)
        elif isinstance(event, FaultMet):
            self.status.retried(event)  # every retry, in place; at -v each is kept as a line too
            if self.verbose:
                self.console.print(f"[yellow]{escape(describe_retry(event))}[/yellow]", highlight=False)
        elif isinstance(event, Notice) and (event.level != "info" or self.verbose):
            self.console.print(f"[yellow]{event.level}:[/yellow] {escape(event.message)}", highlight=False)
        elif isinstance(event, PathNote) and self.verbose:
            self.console.print(f"[yellow]info:[/yellow] {escape(event.note)}", highlight=False)
        self.overall.update(self.total_task, completed=acc.done_bytes,
                            total=acc.queued_bytes if acc.plan_final else None)
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
