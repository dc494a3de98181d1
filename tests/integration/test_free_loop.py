"""Nothing blocking runs on the event loop: a watchdog task beside a mirror of 3,000 files (and a no-op re-run
of it, every record read back from the journal) wakes every 10 ms and measures the CPU time the event loop's
thread spent between two of its wake-ups: the time the loop was held by work of its own. (Wall-clock lateness
would count the 2 cores being busy with the emulator and the worker threads too.) The emulator runs in a
process of its own; the objects the test session made before are frozen out of the garbage collector, so its
pauses are asyncdl's own."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from asyncdl import Config, RunOptions, Selection
from asyncdl.pipeline import mirror

pytestmark = pytest.mark.anyio
TICK = 0.01
LATE = 0.1  # the bound: the loop never held for more than 100 ms
FLAT = ["--restricted-fraction", "0", "--files-restricted-fraction", "0", "--embargoed-fraction", "0",
        "--deleted-fraction", "0", "--multi-version-fraction", "0"]


@pytest.fixture
def emulator_process() -> Iterator[str]:
    command = [sys.executable, "-m", "asyncdl", "emulate", "--port", "0", "--records", "30", "--files-per-record",
               "100-100", "--file-size", "100-4000", "--no-rate-limits", *FLAT]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            found = re.findall(r"https?://127\.0\.0\.1:\d+", process.stderr.readline())
            url = found[-1] if found else None
        assert url is not None, "the emulator did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


async def watched(run: object) -> tuple[object, float, int]:
    """Await ``run`` beside a watchdog; (its result, the most CPU seconds the loop's thread spent between two
    wake-ups of the watchdog, wake-ups measured)."""
    late: list[float] = []
    result: list[object] = []

    async def watchdog() -> None:
        while True:
            before = time.thread_time()
            await anyio.sleep(TICK)
            late.append(time.thread_time() - before)

    async def job() -> None:
        result.append(await run)  # type: ignore[misc]
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watchdog)
        group.start_soon(job)
    return result[0], max(late), len(late)


async def test_the_loop_is_never_held_during_a_mirror_or_its_no_op_rerun(emulator_process: str,
                                                                         tmp_path: Path) -> None:
    config = Config(base_url=emulator_process, concurrency=16)
    options = RunOptions(archive="never")
    gc.freeze()
    try:
        first, first_late, ticks = await watched(mirror(Selection(query="*"), tmp_path, config, options))
        again, again_late, _ = await watched(mirror(Selection(query="*"), tmp_path, config, options))
    finally:
        gc.unfreeze()
    assert first.counts["ok"] == 3000 and ticks > 10  # type: ignore[attr-defined]
    assert again.counts["skipped"] == 3000 and again.requests == 0  # type: ignore[attr-defined]
    print(f"loop held at most: first run {first_late * 1000:.1f} ms, re-run {again_late * 1000:.1f} ms")
    assert first_late < LATE, f"the loop was held {first_late * 1000:.0f} ms during the first run"
    assert again_late < LATE, f"the loop was held {again_late * 1000:.0f} ms during the no-op re-run"
