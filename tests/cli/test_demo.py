"""`asyncdl demo` as a user runs it: piped (plain log, no control codes) and on a pseudo-terminal (live bars)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_demo_piped_verifies_every_file(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "asyncdl", "demo", str(tmp_path / "demo")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stderr + result.stdout
    assert "0 failed" in result.stderr or "failed                  │ 0" in result.stderr
    files = [p for p in (tmp_path / "demo").rglob("*") if p.is_file() and ".asyncdl" not in p.parts]
    assert len(files) > 50 and any(p.stat().st_size == 300_000_000 for p in files)
    assert "md5-verified" in result.stderr and "asyncdl mirror --owner 88403" in result.stderr


def test_demo_on_a_terminal_draws_live_bars(tmp_path: Path) -> None:
    parent, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "asyncdl", "demo", str(tmp_path / "demo")],
                               stdin=child, stdout=child, stderr=child, env={**os.environ, "COLUMNS": "120"})
    os.close(child)
    output = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(parent, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(parent)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-2000:]
    assert "\x1b[" in text  # a live display, with cursor movement and colours
    assert "files" in text and "asyncdl summary" in text
    bars = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text.split("asyncdl summary")[0])
    assert "MiB/s" in bars and not re.search(r"\d MB\b|MB/s", bars)  # the bars' units are the summary's (MiB)
    assert not re.search(r"-\d[\d.,]* ?\w*B/s", bars)  # never a negative speed


def test_without_dest_the_demo_writes_to_the_temporary_folder_and_says_so(tmp_path: Path) -> None:
    work, temporary = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "asyncdl", "demo", "--progress", "plain"], cwd=work,
                               env={**os.environ, "TMPDIR": str(temporary)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = ""
        for line in process.stderr:
            if line.startswith("mirroring "):
                break
        assert line.rstrip().endswith(f"into {temporary / 'asyncdl-demo'}/"), line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert list(work.iterdir()) == []  # nothing in the folder it was run from
