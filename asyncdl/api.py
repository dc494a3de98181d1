"""The Python API's synchronous forms. Each works in a plain script and inside a running event loop too (a
Jupyter cell, where ``anyio.run`` would refuse): there the work runs on an event loop of its own in a worker
thread (anyio's blocking portal), and the caller's thread waits for it; an interrupt (the kernel's stop
button) cancels the work. The async forms (``crawl_records``, ``mirror``, ``records_table_async``) are
for ``await``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.from_thread

from asyncdl.accounting import RunSummary
from asyncdl.config import Config
from asyncdl.crawl import crawl_records
from asyncdl.events import ProgressSink
from asyncdl.export import RecordsTable, make_table
from asyncdl.invenio import Selection
from asyncdl.models import Record
from asyncdl.options import RunOptions
from asyncdl.pipeline import mirror
from asyncdl.plan import PlannedFile

T = TypeVar("T")


def run_sync(function: Callable[[], Awaitable[T]]) -> T:
    """Run ``function()`` to its end: on this thread when no event loop runs here, else on a loop of its own
    in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(function)
    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(function)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise


def list_records(selection: Selection, config: Config | None = None) -> list[Record]:
    """Every record of ``selection`` (the synchronous form of :func:`~asyncdl.crawl.crawl_records`)."""
    return run_sync(functools.partial(crawl_records, selection, config or Config()))


async def records_table_async(selection: Selection, config: Config | None = None, *, extract: str | None = None,
                              group_by: str | None = None, sort: str | None = None,
                              columns: str | None = None) -> RecordsTable:
    """The table ``asyncdl list`` makes of ``selection``: a column per named group of the ``extract`` regex
    in the titles, one row per value of ``group_by`` (records counted; files, bytes and statistics summed),
    sorted by ``sort`` ("expedition,-downloads", natural order), with ``columns`` ("id,title", "all")."""
    records = await crawl_records(selection, config or Config())
    return make_table(records, extract_pattern=extract, group_by=group_by, sort_spec=sort, columns=columns)


def records_table(selection: Selection, config: Config | None = None, *, extract: str | None = None,
                  group_by: str | None = None, sort: str | None = None, columns: str | None = None) -> RecordsTable:
    """The synchronous form of :func:`records_table_async`; ``.to_pandas()`` on the result is a DataFrame."""
    return run_sync(functools.partial(records_table_async, selection, config, extract=extract, group_by=group_by,
                                      sort=sort, columns=columns))


def mirror_sync(selection: Selection, dest: str | Path, config: Config | None = None,
                options: RunOptions | None = None, *, sink: ProgressSink | None = None,
                on_plan: Callable[[PlannedFile], None] | None = None) -> RunSummary:
    """The synchronous form of :func:`~asyncdl.pipeline.mirror` (same parameters)."""
    return run_sync(functools.partial(mirror, selection, dest, config, options, sink=sink, on_plan=on_plan))
