"""The live display as a person sees it: asyncdl in a real terminal (tmux), its screen read with
``tmux capture-pane`` while it runs and after. Pauses of the server's rate limit are one status line that
updates in place (with when the run resumes), never a line per pause; files in flight beyond the rows shown
are counted."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.datasets import record

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Terminal:
    """A command in a detached tmux session of its own (its own server socket), 100 x 30."""

    def __init__(self, command: list[str]) -> None:
        self.socket = f"asyncdl-test-{uuid.uuid4().hex[:8]}"
        line = f"{shlex.join(command)}; echo EXITED $?; sleep 30"
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "t", "-x", "100", "-y", "30", line],
                       check=True)

    def screen(self, history: int = 0) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "t", "-S", str(-history)],
                              capture_output=True, text=True, check=True).stdout

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def watch(terminal: Terminal, seconds: float = 90) -> list[str]:
    """Screens every 0.2 s until the command has exited; the last one with the whole history."""
    screens, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        screen = terminal.screen()
        screens.append(screen)
        if "EXITED" in screen:
            break
        time.sleep(0.2)
    screens.append(terminal.screen(history=2000))
    return screens


def mirror(emu: RunningEmulator, dest: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*", str(dest),
            "--archive", "never", "--progress", "rich", *extra]


def test_rate_limit_pauses_are_one_line_updated_in_place(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(minute=2.0, guest_per_minute=8, search_per_minute=5),
                         dataset=Dataset([record(100 + i, files={"f.bin": 2000}) for i in range(24)]))
    terminal = Terminal(mirror(emu, tmp_path, "-j", "4"))
    try:
        screens = watch(terminal)
    finally:
        terminal.close()
    assert "EXITED 0" in screens[-1], screens[-1]
    shown = [s for s in screens[:-1] if "by the server's rate limit" in s]
    assert shown, screens[len(screens) // 2]  # seen while the run waited for the budget
    assert re.search(r"(paced|paused) by the server's rate limit: \d+/\d+ left \(\w+\), (next request in \d+ s"
                     r"|resumes \d\d:\d\d:\d\d)", shown[0]), shown[0]
    assert all(s.count("by the server's rate limit") <= 1 for s in screens)  # one line in place, never one per wait
    assert "done" in screens[-1] or "asyncdl summary" in screens[-1]


def test_files_in_flight_beyond_the_rows_are_counted(start_emulator: Start, tmp_path: Path) -> None:
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=200_000)),
                         dataset=Dataset([record(100 + i, files={"f.bin": 300_000}) for i in range(24)]))
    terminal = Terminal(mirror(emu, tmp_path, "-j", "12", "--segments", "1"))
    try:
        screens = watch(terminal)
    finally:
        terminal.close()
    assert "EXITED 0" in screens[-1], screens[-1]
    assert any("4 more files in flight" in s for s in screens), screens[len(screens) // 2]
