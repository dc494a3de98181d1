"""Shared parts of the benchmarks: an emulator in its own process, timing, machine facts, result rows."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable


@dataclass
class Row:
    """One measured tool in one scenario."""

    scenario: str
    tool: str
    seconds: float | None
    command: str
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Emulator:
    url: str
    pid: int

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=30) as reply:
            return dict(json.load(reply))

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_emulator/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()


@contextmanager
def emulator(*args: str) -> Iterator[Emulator]:
    """``asyncdl emulate ARGS`` on a free port in its own process (its own core, like a real server)."""
    command = [PYTHON, "-m", "asyncdl", "emulate", "--port", "0", *args]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"the emulator exited: {' '.join(command)}")
            found = re.search(r"at (https?://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        if url is None:
            raise RuntimeError("the emulator did not start")
        yield Emulator(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def timed(command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900,
          cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command; wall seconds and its result (the run fails loudly if the command does)."""
    began = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed, result


def show(command: Sequence[str]) -> str:
    """A command as a user would type it (the interpreter path shortened to 'python')."""
    return shlex.join(["python" if c == PYTHON else c for c in command])


def machine() -> dict[str, Any]:
    """Facts about this machine and the software measured."""
    memory = ""
    if Path("/proc/meminfo").exists():
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    from asyncdl import __version__

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory": memory, "asyncdl": __version__, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
