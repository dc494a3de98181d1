"""One writer for a download's disk work: a thread of its own, fed through a bounded queue.

The event loop receives; the writer thread writes and hashes, in the order the work was handed over.
``submit`` returns at once while fewer than ``depth`` jobs wait; past that it waits on an event that the
thread sets when it has caught up (the thread wakes the loop with ``call_soon_threadsafe``, without waiting
for it, and no pool thread is parked waiting for room; aiohttp ties asyncdl to asyncio anyway).
A job's error (disk full) is kept: later jobs are skipped and the next ``submit`` or ``flush`` raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from types import TracebackType

import anyio

Job = Callable[[], object]


class DiskWriter:
    """``async with DiskWriter(depth=2) as writer: await writer.submit(job)``; leaving it waits for every job."""

    def __init__(self, *, depth: int) -> None:
        self.depth = depth
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0  # jobs handed over and not yet done
        self._caught_up: anyio.Event | None = None  # set by the thread when a job is done and someone waits
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="asyncdl-writer", daemon=True)

    async def __aenter__(self) -> DiskWriter:
        self._thread.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        with anyio.CancelScope(shield=True):  # whatever was handed over is written before anything else
            await self._wait(lambda: self._pending == 0)
        self._jobs.put(None)
        self._thread.join()  # at once: the queue is empty and the thread is waiting on it
        if kind is None:
            self._raise()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # handed to the event loop by submit() or flush()
                    self._error = exc
            with self._lock:
                self._pending -= 1
                waiting, self._caught_up = self._caught_up, None
            if waiting is not None:
                with contextlib.suppress(RuntimeError):  # the event loop has ended: nobody waits any more
                    self._loop.call_soon_threadsafe(waiting.set)

    @property
    def failed(self) -> bool:
        """A job raised: later ones are skipped (read from any thread)."""
        return self._error is not None

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if ready():
                    return
                if self._caught_up is None:
                    self._caught_up = anyio.Event()
                event = self._caught_up
            await event.wait()

    async def submit(self, job: Job) -> None:
        """Hand a job to the thread; waits while ``depth`` jobs are waiting already."""
        self._raise()
        await self._wait(lambda: self._pending < self.depth)
        with self._lock:
            self._pending += 1
        self._jobs.put(job)

    async def flush(self) -> None:
        """Wait until every job handed over is done; raise a job's error."""
        await self._wait(lambda: self._pending == 0)
        self._raise()
