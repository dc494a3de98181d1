"""The plain progress (``--progress plain``, for logs): a status line every interval, also while the run
waits for the server's rate limit and nothing else happens, saying so and until when."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, RunningEmulator
from tests.datasets import record

Start = Callable[..., RunningEmulator]
STATUS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d files \d+/\d+\+? \(ok \d+.*")
HELD = re.compile(r"\| (paced by the server's rate limit: \d+/6 left \(default\), next request in \d+ s"
                  r"|paused by the server's rate limit: \d+/6 left \(default\), resumes \d\d:\d\d:\d\d)$")


def test_status_lines_keep_coming_while_the_run_is_paced(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(minute=4.0, guest_per_minute=6, search_per_minute=30),
                         dataset=Dataset([record(100 + i, files={"f.bin": 500}) for i in range(15)]))
    result = subprocess.run([sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*",
                             str(tmp_path), "--archive", "never", "--progress", "plain", "-j", "2"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ASYNCDL_PROGRESS_INTERVAL": "0.5"})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    status = [line for line in lines if STATUS.fullmatch(line)]
    held = [line for line in status if HELD.search(line)]
    assert len(held) >= 8, "\n".join(lines)  # the waits for the budget are seconds long, the interval half of one
    longest = run = 0  # status lines in a row that say the run is held up: a wait for the budget is seconds
    for line in lines:  # without an event, in which only the timer writes a line every interval
        run = run + 1 if line in held else 0
        longest = max(longest, run)
    assert longest >= 4, "\n".join(lines)
