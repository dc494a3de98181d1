"""--log-file and --log-level: a run's lines in a file, the retries at debug, never the token; a file that
cannot be written or a level that does not exist is one line before anything is downloaded."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.cli.test_inputs import asyncdl, one_line
from tests.datasets import record

Start = Callable[..., RunningEmulator]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) .+$")


def faulty(start_emulator: Start) -> RunningEmulator:
    """Every first request answered 5xx: the search page and each file are retried once."""
    return start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(error_5xx=1.0, first_attempts=1)),
                          dataset=Dataset([record(100 + i, owners=("5",), files={"f.bin": 3000}) for i in range(6)]))


def test_debug_logs_every_request_and_retry_and_never_the_token(start_emulator: Start, tmp_path: Path) -> None:
    emu = faulty(start_emulator)
    log = tmp_path / "run.log"
    result = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "m"), "--archive", "never",
                     "--token", "emulator-token", "--log-file", str(log), "--log-level", "debug", "-q",
                     env={"ASYNCDL_BACKOFF_BASE": "0.01"})
    assert result.returncode == 0, result.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    assert all(LINE.match(line) for line in lines), lines
    requests = [line for line in lines if " DEBUG request " in line]
    faults = [line for line in lines if " DEBUG fault 5xx: " in line]
    assert len(requests) == sum(emu.stats.requests.values()) and len(faults) == 7  # the page's and each file's
    assert sum(" INFO ok " in line for line in lines) == 6
    assert lines[-1].endswith("done: 6 ok, 0 already there, 0 failed; 17.58 KiB in " + lines[-1].split(" in ")[1])
    assert "exit 0" in lines[-1]
    assert "emulator-token" not in log.read_text(encoding="utf-8")
    again = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "m"), "--log-file", str(log),
                    "-q")  # appended, at info: no request or fault lines
    assert again.returncode == 0
    added = log.read_text(encoding="utf-8").splitlines()[len(lines):]
    assert added and not [line for line in added if " DEBUG " in line]
    assert sum(" INFO skipped " in line for line in added) == 6


def test_a_log_file_that_cannot_be_written_or_a_bad_level_is_one_line(start_emulator: Start,
                                                                      tmp_path: Path) -> None:
    emu = faulty(start_emulator)
    unwritable = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "a"), "--log-file",
                         str(tmp_path / "no" / "such" / "run.log"))
    assert unwritable.returncode == 3
    assert one_line(unwritable).startswith(f"error: cannot write the log file {tmp_path}/no/such/run.log: ")
    loud = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "b"), "--log-level", "loud")
    assert loud.returncode == 2 and "must be one of debug, info, warning, not 'loud'" in one_line(loud)
    from_env = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "c"),
                       env={"ASYNCDL_LOG_LEVEL": "loud"})
    assert from_env.returncode == 2 and "ASYNCDL_LOG_LEVEL" in one_line(from_env)
    assert not any((tmp_path / name).exists() for name in "abc") and sum(emu.stats.requests.values()) == 0
