"""The live display as a person sees it: asyncdl in a real terminal (tmux), its screen read with
``tmux capture-pane`` while it runs and after. Pauses of the server's rate limit are one status line that
updates in place (with when the run resumes), never a line per pause; files in flight beyond the rows shown
are counted; the time left and the counters (requests, the budget left) are shown; at 60 columns the
numbers stay whole and no frame is left behind; a refused connection is told with its retry's number."""

from __future__ import annotations

import os
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
from tests.http_helpers import free_port

Start = Callable[..., RunningEmulator]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Terminal:
    """A command in a detached tmux session of its own (its own server socket), 100 x 30 unless told."""

    def __init__(self, command: list[str], width: int = 100) -> None:
        self.socket = f"asyncdl-test-{uuid.uuid4().hex[:8]}"
        line = f"{shlex.join(command)}; echo EXITED $?; sleep 30"
        # the environment os.environ holds: the process's own may have a COLUMNS (80) set for pytest's terminal,
        # which rich would take for the pane's width
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "t", "-x", str(width), "-y", "30",
                        line], check=True, env=dict(os.environ))

    def screen(self, history: int = 0) -> str:
        """What the terminal shows; a line the terminal wrapped is joined again (-J), so it reads as written."""
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-J", "-t", "t", "-S",
                               str(-history)], capture_output=True, text=True, check=True).stdout

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
    running = screens[:-1]
    assert any(re.search(r"^files \d+/24 .* \d:\d\d:\d\d *$", s, re.M) for s in running)  # the time left
    counters = [line for s in running for line in s.splitlines() if line.startswith("crawl ")]
    assert any(re.search(r" · requests \d+ · ", line) for line in counters), counters[-1]
    assert any(re.search(r" · budget 127\.0\.0\.1:\d+ \d+/8\b", line) for line in counters), counters[-1]


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


SIZES = r"\d+(\.\d)?/(\d+(\.\d)?|\?) (bytes|KiB|MiB)"  # as rich's DownloadColumn writes them: 0.2/6.9 MiB
SPEED = r"\d+(\.\d\d)? (B|KiB|MiB)/s"  # as format_size writes it: 0 B/s, 1.90 MiB/s


def test_at_60_columns_the_numbers_stay_whole_and_no_frame_is_left_behind(start_emulator: Start,
                                                                         tmp_path: Path) -> None:
    name = "a_rather_long_file_name_that_a_narrow_terminal_cannot_show_{}.bin"
    emu = start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=300_000)),
                         dataset=Dataset([record(100 + i, files={name.format(i): 600_000}) for i in range(12)]))
    terminal = Terminal(mirror(emu, tmp_path, "-j", "4", "--segments", "1"), width=60)
    try:
        screens = watch(terminal)
    finally:
        terminal.close()
    assert "EXITED 0" in screens[-1], screens[-1]
    running = [s for s in screens[:-1] if "asyncdl summary" not in s and "EXITED" not in s and "files " in s]
    assert len(running) >= 5
    for screen in running:
        lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
        assert all(len(line) <= 60 for line in lines), screen  # nothing the terminal had to wrap
        overall = [line for line in lines if re.match(r"files \d+/\d+\+? ", line)]
        assert len(overall) == 1, screen  # one frame: none left behind
        assert re.search(rf" {SIZES} {SPEED} (\d:\d\d:\d\d|-:--:--)$", overall[0]), overall[0]  # all whole
        assert not any(re.search(r"\d…", line) for line in lines), screen  # no number cut short
    rows = [line for s in running for line in s.splitlines() if "━" in line and not line.startswith("files ")]
    assert any(re.match(r"…\S*_\d+\.bin +\S*━", row) for row in rows), rows[:3]  # the paths gave way
    assert all(re.search(rf" {SIZES} +({SPEED}|\?)$", row.rstrip()) for row in rows), rows


def test_a_refused_connection_is_told_at_once_with_its_retry_and_the_wait(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "asyncdl", "mirror", "--base-url", f"http://127.0.0.1:{port}", "--query", "*",
               str(tmp_path / "m"), "--progress", "rich"]
    terminal = Terminal(command)
    told = rf"retrying [123]/3( in \d+(\.\d)? s)?: cannot connect to 127\.0\.0\.1:{port}: connection refused"
    try:
        screens = watch(terminal, seconds=60)
    finally:
        terminal.close()
    assert "EXITED 1" in screens[-1], screens[-1]
    while_retrying = [s for s in screens[:-1] if "EXITED" not in s and "error:" not in s]
    assert any(re.search(told, s) for s in while_retrying), screens  # on the status line while it retries
    assert re.search(rf"retrying 1/3 in \d+(\.\d)? s: cannot connect to 127\.0\.0\.1:{port}",
                     "\n".join(while_retrying)) or re.search(r"retrying [23]/3", "\n".join(while_retrying))


def test_inaccessible_records_are_one_line_after_the_rich_summary(start_emulator: Start, tmp_path: Path) -> None:
    records = [record(11, concept=10, files={"a.csv": b"a\n"})]
    records += [record(21 + 2 * i, concept=20 + 2 * i, access="files-restricted") for i in range(7)]
    emu = start_emulator(EmulatorConfig(rate_limits=False), dataset=Dataset(records))
    terminal = Terminal(mirror(emu, tmp_path))
    try:
        screen = watch(terminal)[-1]
    finally:
        terminal.close()
    assert "EXITED 5" in screen, screen
    assert re.search(r"records not accessible +│ 7 ", screen), screen
    told = [line.rstrip() for line in screen.splitlines() if line.startswith("not downloaded: ")]
    assert len(told) == 1 and re.fullmatch(r"not downloaded: 7 records: files not accessible \(restricted\): "
                                           r"(\d+, ){5}\.\.\. \(-v for all\)", told[0]), told
