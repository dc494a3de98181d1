"""`asyncdl status DEST --watch` against a real mirror in a subprocess: plain lines whose counts move and end
at the run's own summary, a run SIGKILLed under it (the watcher ends, saying so), nothing to watch, and the
live rich view in a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.datasets import record

Start = Callable[..., RunningEmulator]
LINE = re.compile(r"files (\d+)/(\d+) done, (\d+) in flight, (\d+) failed \| .* \| (a run is active|no run active)")


def slow(start_emulator: Start, files: int = 16) -> RunningEmulator:
    return start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=600_000)),
                          dataset=Dataset([record(100 + i, files={"f.bin": 300_000}) for i in range(files)]))


def mirror(emu: RunningEmulator, dest: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--query", "*",
                                str(dest), "--archive", "never", "-j", "2", "--progress", "plain"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (dest / ".asyncdl" / "journal.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def watcher(dest: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "asyncdl", "status", str(dest), "--watch", "--interval", "0.3",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_watch_follows_a_run_to_its_end(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow(start_emulator)
    run = mirror(emu, tmp_path)
    time.sleep(0.5)
    watching = watcher(tmp_path)
    out, err = watching.communicate(timeout=120)
    _, run_err = run.communicate(timeout=60)
    assert watching.returncode == 0 and run.returncode == 0, err + run_err
    lines = [LINE.search(line) for line in out.splitlines()]
    counts = [(int(m[1]), int(m[3])) for m in lines if m is not None]
    assert len(counts) >= 3 and counts[0][0] < counts[-1][0] and any(flying == 2 for _, flying in counts)
    done = [d for d, _ in counts]
    assert done == sorted(done)
    assert out.splitlines()[-2].endswith("| no run active") and "files 16/16 done, 0 in flight, 0 failed" in out
    assert out.splitlines()[-1] == "the run ended: complete" and "done: 16 ok" in run_err


def test_watch_survives_the_run_being_killed(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow(start_emulator)
    run = mirror(emu, tmp_path)
    time.sleep(0.5)
    watching = watcher(tmp_path)
    time.sleep(1.5)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    out, err = watching.communicate(timeout=60)
    assert watching.returncode == 0, err
    assert "Traceback" not in err
    assert out.splitlines()[-1] == "the run ended: ended without a word (killed or lost)"


def test_nothing_to_watch_is_said_at_once(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow(start_emulator, files=2)
    finished = mirror(emu, tmp_path)
    finished.communicate(timeout=60)
    out, _ = watcher(tmp_path).communicate(timeout=30)
    assert out.startswith(f"no run active in {tmp_path}: files 2/2 done")
    alone = subprocess.run([sys.executable, "-m", "asyncdl", "status", str(tmp_path), "--follow"],
                           capture_output=True, text=True, timeout=30)
    assert alone.returncode == 2 and "--follow goes with --watch" in alone.stderr


def test_the_live_view_in_a_terminal(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow(start_emulator)
    run = mirror(emu, tmp_path)
    time.sleep(0.5)
    leader, follower = pty.openpty()
    watching = subprocess.Popen([sys.executable, "-m", "asyncdl", "status", str(tmp_path), "--watch",
                                 "--interval", "0.3"], stdout=follower, stderr=follower, stdin=follower,
                                env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"})
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the watcher ended: its side of the terminal is gone
            break
        if not chunk:
            break
        seen += chunk
    watching.wait(timeout=30)
    os.close(leader)
    run.communicate(timeout=60)
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen).decode(errors="replace")
    assert watching.returncode == 0
    assert f"asyncdl status of {tmp_path}" in text and "in flight" in text and "f.bin" in text
    assert "the run ended: complete" in text
