"""Prometheus metrics of a real run in a subprocess: /metrics served while it runs (values move), the
textfile rewritten and matching the final summary, still a whole file after the run is SIGKILLed; a busy
port or a bad one is one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from asyncdl.emulator import Dataset, EmulatorConfig, FaultConfig, RunningEmulator
from tests.cli.test_inputs import asyncdl, one_line
from tests.datasets import record
from tests.http_helpers import free_port

Start = Callable[..., RunningEmulator]


def samples(text: str) -> dict[str, float]:
    """name{labels} -> value, parsed by the Prometheus client's own parser (a torn file fails here)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def slow_emulator(start_emulator: Start, files: int = 24) -> RunningEmulator:
    return start_emulator(EmulatorConfig(rate_limits=False, faults=FaultConfig(bandwidth=400_000)),
                          dataset=Dataset([record(100 + i, owners=("5",), files={"f.bin": 200_000})
                                           for i in range(files)]))


def test_metrics_are_served_while_the_run_lasts_and_match_its_summary(start_emulator: Start,
                                                                      tmp_path: Path) -> None:
    emu = slow_emulator(start_emulator)
    port, prom = free_port(), tmp_path / "asyncdl.prom"
    run = subprocess.Popen([sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--owner", "5",
                            str(tmp_path / "m"), "--archive", "never", "-j", "2", "--segments", "1",
                            "--metrics-port", str(port), "--metrics-file", str(prom), "--progress", "plain"],
                           stderr=subprocess.PIPE, text=True)
    scraped: list[dict[str, float]] = []
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                scraped.append(samples(reply.read().decode()))
        except OSError:
            pass  # not listening yet, or already gone
        time.sleep(0.5)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    received = [s.get("asyncdl_received_bytes_total", 0) for s in scraped]
    assert len(scraped) >= 3 and received == sorted(received) and received[0] < received[-1]  # it moved
    assert any(s.get("asyncdl_files_in_flight") == 2 for s in scraped)
    final = samples(prom.read_text())
    summary = re.search(r"done: (\d+) ok.*?(\d+) requests", stderr)
    assert summary is not None, stderr
    assert final['asyncdl_files_total{outcome=ok}'] == int(summary[1]) == 24
    assert sum(v for k, v in final.items() if k.startswith("asyncdl_requests_total")) == int(summary[2])
    assert final["asyncdl_received_bytes_total"] == 24 * 200_000
    assert final["asyncdl_files_queued"] == 0 and final["asyncdl_concurrency"] == 2
    host = emu.url.split("//")[1]
    assert final[f"asyncdl_requests_total{{host={host},kind=file}}"] == 24
    with socket.socket() as probe:  # the server went with the run
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_metrics_file_stays_whole_when_the_run_is_killed(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow_emulator(start_emulator, files=40)
    prom = tmp_path / "asyncdl.prom"
    config = tmp_path / "asyncdl.toml"
    config.write_text("[metrics]\ninterval = 0.2\n", encoding="utf-8")
    run = subprocess.Popen([sys.executable, "-m", "asyncdl", "mirror", "--base-url", emu.url, "--owner", "5",
                            str(tmp_path / "m"), "--archive", "never", "-j", "2", "--config", str(config),
                            "--metrics-file", str(prom), "-q"])
    seen: list[float] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(seen) < 8:
        if prom.exists():
            seen.append(samples(prom.read_text())["asyncdl_received_bytes_total"])
        time.sleep(0.25)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert seen[-1] > seen[0]  # rewritten as the run went
    last = samples(prom.read_text())  # whole, parseable: written beside, then renamed
    assert last["asyncdl_received_bytes_total"] >= seen[-1]


def test_a_busy_or_bad_metrics_port_is_one_line(start_emulator: Start, tmp_path: Path) -> None:
    emu = slow_emulator(start_emulator, files=2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "a"), "--metrics-port",
                        str(port))
    assert taken.returncode == 3
    assert one_line(taken).startswith(f"error: cannot serve metrics on 127.0.0.1:{port}: ")
    assert not (tmp_path / "a").exists()  # refused before anything was written
    nowhere = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "a"), "--metrics-port",
                      str(port), "--metrics-address", "nowhere.invalid")
    assert nowhere.returncode == 3 and "cannot serve metrics on nowhere.invalid:" in one_line(nowhere)
    assert "Unknown error" not in one_line(nowhere) and not (tmp_path / "a").exists()
    bad = asyncdl("mirror", "--base-url", emu.url, "--owner", "5", str(tmp_path / "b"), "--metrics-port", "70000")
    assert bad.returncode == 2 and "a TCP port, 0 to 65535" in one_line(bad)
    assert not (tmp_path / "b").exists()
